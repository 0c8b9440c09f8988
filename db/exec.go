package db

// Statement execution for the apply engine: transactions with their lock
// and statement timeouts, statements outside a transaction block with their
// catalog checks, the audit trail, and the sampler that sees lock waits.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/plans"
)

// auditEntry is one executed statement, before it is written.
type auditEntry struct {
	statement string
	args      []string
	started   time.Time
	duration  time.Duration
	lockWait  *time.Duration
	blockedBy string
	rows      *int64
	outcome   string // ok, failed, rolled back
	sqlstate  string
	err       string
}

const auditInsertSQL = `INSERT INTO cutover.statements (plan_id, step_id, action, attempt, statement, args, lock_timeout, statement_timeout,
	started_at, duration_ms, lock_wait_ms, blocked_by, rows, outcome, sqlstate, error)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`

// queueAudit adds the audit rows to a batch (one round trip for all).
func (e *Engine) queueAudit(b *pgx.Batch, stepID, action string, attempt int, lockTO, stmtTO string, rows []auditEntry) {
	for _, a := range rows {
		b.Queue(auditInsertSQL, e.planID, nullable(stepID), action, attempt, redactSQL(a.statement), a.args, lockTO, stmtTO,
			a.started, ms(a.duration), msp(a.lockWait), nullable(a.blockedBy), a.rows, a.outcome, nullable(a.sqlstate), nullable(a.err))
	}
}

func (e *Engine) insertAudit(ctx context.Context, stepID, action string, attempt int, lockTO, stmtTO string, rows []auditEntry) error {
	if e.killed() {
		return errKilled
	}
	b := &pgx.Batch{}
	e.queueAudit(b, stepID, action, attempt, lockTO, stmtTO, rows)
	return e.conn.SendBatch(ctx, b).Close()
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func msp(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	v := ms(*d)
	return &v
}

// txWork is one transaction of the engine: statements, then the state
// update (finish), committed together.
type txWork struct {
	stepID           string
	action           string // apply, rollback, batch
	attempt          int
	stmts            []string
	args             [][]any // per statement, may be nil
	statementTimeout time.Duration
	// local holds extra SET LOCAL statements (session_replication_role).
	local []string
	// finish queues the state update that commits with the statements.
	finish func(b *pgx.Batch)
	// after, when set, is called after each statement with its result.
	after func(i int, tag int64) error
	// inTx is the hook point reached before the commit.
	inTx string
	// pre are audit rows of statements run just before the transaction
	// (a batch's bound query), written with it.
	pre []auditEntry
}

// runInTx runs w in one transaction with SET LOCAL lock_timeout and
// statement_timeout. On failure the transaction is rolled back and the
// attempt is still audited (outside it).
func (e *Engine) runInTx(ctx context.Context, w txWork) error {
	lockTO, stmtTO := pgDuration(e.opts.LockTimeout), pgDuration(w.statementTimeout)
	if _, err := e.conn.Exec(ctx, "BEGIN"); err != nil {
		return err
	}
	open := true
	rollback := func() {
		if open && !e.killed() {
			rctx, cancel := stateCtx(ctx)
			e.conn.Exec(rctx, "ROLLBACK")
			cancel()
		}
		open = false
	}
	defer rollback()
	if _, err := e.conn.Exec(ctx, `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`, lockTO, stmtTO); err != nil {
		return err
	}
	for _, l := range w.local {
		if _, err := e.conn.Exec(ctx, l); err != nil {
			return err
		}
	}
	var audit []auditEntry
	for i, st := range w.stmts {
		var args []any
		if i < len(w.args) {
			args = w.args[i]
		}
		a, tag, err := e.execWatched(ctx, st, args...)
		if err != nil {
			rollback()
			for j := range audit {
				audit[j].outcome = "rolled back"
			}
			audit = append(append(w.pre, audit...), a)
			if !e.killed() {
				sctx, cancel := stateCtx(ctx)
				e.insertAudit(sctx, w.stepID, w.action, w.attempt, lockTO, stmtTO, audit)
				cancel()
			}
			return err
		}
		audit = append(audit, a)
		if w.after != nil {
			if err := w.after(i, tag); err != nil {
				return err
			}
		}
	}
	hookPoint := w.inTx
	if hookPoint == "" {
		hookPoint = "in-tx"
	}
	if err := e.hook(ctx, hookPoint, w.stepID, w.attempt); err != nil {
		return err
	}
	b := &pgx.Batch{}
	if w.finish != nil {
		w.finish(b)
	}
	e.queueAudit(b, w.stepID, w.action, w.attempt, lockTO, stmtTO, append(w.pre, audit...))
	b.Queue(`UPDATE cutover.runs SET updated_at = clock_timestamp() WHERE plan_id = $1`, e.planID)
	if err := e.conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	tag, err := e.conn.Exec(ctx, "COMMIT")
	open = false
	if err != nil {
		return err
	}
	if tag.String() != "COMMIT" {
		return fmt.Errorf("the transaction did not commit (%s)", tag.String())
	}
	return nil
}

// execWatched runs one statement while the lock sampler watches it.
func (e *Engine) execWatched(ctx context.Context, sql string, args ...any) (auditEntry, int64, error) {
	stop := e.watchLocks(ctx)
	start := time.Now()
	tag, err := e.conn.Exec(ctx, sql, args...)
	dur := time.Since(start)
	wait, blockers := stop(dur)
	a := auditEntry{statement: sql, started: start, duration: dur, lockWait: wait, blockedBy: blockers, outcome: "ok"}
	for _, v := range args {
		a.args = append(a.args, fmt.Sprint(v))
	}
	e.lastBlockers = blockers
	if err != nil {
		a.outcome, a.sqlstate, a.err = "failed", sqlState(err), oneLine(err.Error())
		if a.sqlstate == "55P03" {
			a.lockWait = &dur
		}
		return a, 0, err
	}
	n := tag.RowsAffected()
	a.rows = &n
	return a, n, nil
}

// lockSampleInterval is how often the sampler looks at a running statement.
const lockSampleInterval = 25 * time.Millisecond

// watchLocks samples, from the second connection, whether the engine's
// statement waits for a lock and who blocks it. stop returns the lock wait
// seen (nil when the statement was too short to be sampled) and the
// blockers, described without their query text (it may hold secrets).
func (e *Engine) watchLocks(ctx context.Context) (stop func(time.Duration) (*time.Duration, string)) {
	if e.watch == nil || e.killed() {
		return func(time.Duration) (*time.Duration, string) { return nil, "" }
	}
	done := make(chan struct{})
	type result struct {
		sampled     bool
		first, last time.Time
		blockers    string
	}
	res := make(chan result, 1)
	go func() {
		var r result
		t := time.NewTicker(lockSampleInterval)
		defer t.Stop()
		broken := false
		for {
			select {
			case <-done:
				res <- r
				return
			case <-t.C:
			}
			if broken {
				continue
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			waiting, who, err := e.sampleLockWait(sctx)
			cancel()
			if err != nil {
				broken = true
				continue
			}
			r.sampled = true
			if waiting {
				now := time.Now()
				if r.first.IsZero() {
					r.first = now
				}
				r.last = now
				if who != "" {
					r.blockers = who
				}
			}
		}
	}()
	return func(dur time.Duration) (*time.Duration, string) {
		close(done)
		r := <-res
		if !r.sampled {
			return nil, r.blockers
		}
		var w time.Duration
		if !r.first.IsZero() {
			w = r.last.Sub(r.first) + lockSampleInterval
			if w > dur {
				w = dur
			}
		}
		return &w, r.blockers
	}
}

// sampleLockWait asks whether the engine's backend waits for a lock, and
// who holds it.
func (e *Engine) sampleLockWait(ctx context.Context) (bool, string, error) {
	var waiting bool
	var blockers []byte
	err := e.watch.QueryRow(ctx, `SELECT coalesce(a.wait_event_type = 'Lock', false),
		CASE WHEN a.wait_event_type = 'Lock' THEN (
			SELECT json_agg(json_build_object('pid', b.pid, 'user', b.usename, 'app', b.application_name,
				'client', coalesce(host(b.client_addr), 'local'), 'state', b.state,
				'xact_secs', extract(epoch FROM clock_timestamp() - b.xact_start)))
			FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(a.pid))) END
		FROM pg_stat_activity a WHERE a.pid = $1`, e.pid).Scan(&waiting, &blockers)
	if err != nil {
		return false, "", err
	}
	return waiting, describeSessions(blockers), nil
}

// describeSessions turns the JSON of pg_stat_activity rows into one line.
func describeSessions(js []byte) string {
	if len(js) == 0 {
		return ""
	}
	var rows []struct {
		PID      int      `json:"pid"`
		User     string   `json:"user"`
		App      string   `json:"app"`
		Client   string   `json:"client"`
		State    string   `json:"state"`
		XactSecs *float64 `json:"xact_secs"`
	}
	if json.Unmarshal(js, &rows) != nil {
		return ""
	}
	var out []string
	for _, r := range rows {
		parts := []string{"user " + r.User}
		if r.App != "" {
			parts = append(parts, "application "+r.App)
		}
		parts = append(parts, "client "+r.Client)
		state := r.State
		if r.XactSecs != nil {
			state += fmt.Sprintf(", transaction open for %s", roundDur(time.Duration(*r.XactSecs*float64(time.Second))))
		}
		if state != "" {
			parts = append(parts, strings.TrimPrefix(state, ", "))
		}
		out = append(out, fmt.Sprintf("pid %d (%s)", r.PID, strings.Join(parts, ", ")))
	}
	return strings.Join(out, "; ")
}

// runOutsideTx runs statements that cannot run in a transaction block, one
// by one, each after its catalog check.
func (e *Engine) runOutsideTx(ctx context.Context, stepID, action string, attempt int, stmts []string, stmtTimeout time.Duration, ref stepRef) error {
	for _, st := range stmts {
		skip, err := e.catalogCheck(ctx, stepID, action, attempt, st, ref)
		if err != nil {
			return err
		}
		if skip {
			continue
		}
		if err := e.execOutside(ctx, stepID, action, attempt, st, stmtTimeout); err != nil {
			return err
		}
	}
	return nil
}

// execOutside runs one statement outside a transaction block: it is
// audited as running before it starts, so an interrupted statement shows.
func (e *Engine) execOutside(ctx context.Context, stepID, action string, attempt int, sql string, stmtTimeout time.Duration) error {
	lockTO, stmtTO := pgDuration(e.opts.LockTimeout), pgDuration(stmtTimeout)
	if _, err := e.conn.Exec(ctx, `SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)`, lockTO, stmtTO); err != nil {
		return err
	}
	var id int64
	if err := e.conn.QueryRow(ctx, `INSERT INTO cutover.statements (plan_id, step_id, action, attempt, statement, lock_timeout, statement_timeout, started_at, outcome)
		VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp(), 'running') RETURNING id`,
		e.planID, nullable(stepID), action, attempt, redactSQL(sql), lockTO, stmtTO).Scan(&id); err != nil {
		return err
	}
	hctx, hdone := context.WithCancel(ctx)
	if e.opts.hook != nil {
		go func() {
			if err := e.opts.hook(hctx, "statement-running", stepID, attempt); errors.Is(err, errKillNow) {
				e.kill()
			}
		}()
	}
	a, _, err := e.execWatched(ctx, sql)
	hdone()
	if e.killed() {
		return errKilled
	}
	sctx, cancel := stateCtx(ctx)
	defer cancel()
	if _, rerr := e.conn.Exec(sctx, `RESET lock_timeout; RESET statement_timeout`); rerr != nil && err == nil {
		err = rerr
	}
	if _, uerr := e.conn.Exec(sctx, `UPDATE cutover.statements SET started_at = $2, duration_ms = $3, lock_wait_ms = $4, blocked_by = $5,
		rows = $6, outcome = $7, sqlstate = $8, error = $9 WHERE id = $1`,
		id, a.started, ms(a.duration), msp(a.lockWait), nullable(a.blockedBy), a.rows, a.outcome, nullable(a.sqlstate), nullable(a.err)); uerr != nil && err == nil {
		err = uerr
	}
	return err
}

// catalogCheck decides whether a statement outside a transaction block
// still has work to do, repairing what an interrupted run left: a valid
// index is kept (skip), an INVALID one is dropped concurrently so it can be
// built again; an index already dropped, or an enum label already present,
// is skipped.
func (e *Engine) catalogCheck(ctx context.Context, stepID, action string, attempt int, sql string, ref stepRef) (bool, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return false, err
	}
	repair := func(msg string) {
		e.emit(ApplyEvent{Kind: EventRepair, StepID: stepID, Phase: ref.phase, Deploy: ref.deploy, Rollback: action == "rollback", Message: msg})
	}
	n := tree.Stmts[0].Stmt
	switch {
	case n.GetIndexStmt() != nil && n.GetIndexStmt().Concurrent && n.GetIndexStmt().Idxname != "":
		is := n.GetIndexStmt()
		var valid bool
		var qname string
		err := e.conn.QueryRow(ctx, `SELECT i.indisvalid, format('%I.%I', n.nspname, c.relname)
			FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE i.indrelid = to_regclass($1) AND c.relname = $2`, rangeVarName(is.Relation), is.Idxname).Scan(&valid, &qname)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if valid {
			repair(fmt.Sprintf("index %s already exists and is valid: not built again", qname))
			return true, nil
		}
		repair(fmt.Sprintf("index %s is INVALID (a concurrent build was interrupted or failed): dropping it concurrently to build it again", qname))
		return false, e.execOutside(ctx, stepID, "repair", attempt, "DROP INDEX CONCURRENTLY IF EXISTS "+qname, 0)
	case n.GetDropStmt() != nil && n.GetDropStmt().Concurrent:
		for _, obj := range n.GetDropStmt().Objects {
			var exists bool
			if err := e.conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, qualifiedList(obj)).Scan(&exists); err != nil {
				return false, err
			}
			if exists {
				return false, nil
			}
		}
		repair("the index is already gone: nothing to drop")
		return true, nil
	case n.GetAlterEnumStmt() != nil && n.GetAlterEnumStmt().NewVal != "" && n.GetAlterEnumStmt().OldVal == "":
		ae := n.GetAlterEnumStmt()
		var names []string
		for _, x := range ae.TypeName {
			names = append(names, x.GetString_().GetSval())
		}
		var present bool
		if err := e.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_enum WHERE enumtypid = to_regtype($1) AND enumlabel = $2)`,
			pgx.Identifier(names).Sanitize(), ae.NewVal).Scan(&present); err != nil {
			return false, err
		}
		if present {
			repair(fmt.Sprintf("enum %s already has the value %q: not added again", strings.Join(names, "."), ae.NewVal))
			return true, nil
		}
	}
	return false, nil
}

func rangeVarName(rv *pg_query.RangeVar) string {
	if rv == nil {
		return ""
	}
	if rv.Schemaname != "" {
		return pgx.Identifier{rv.Schemaname, rv.Relname}.Sanitize()
	}
	return pgx.Identifier{rv.Relname}.Sanitize()
}

func qualifiedList(n *pg_query.Node) string {
	var names []string
	for _, x := range n.GetList().GetItems() {
		names = append(names, x.GetString_().GetSval())
	}
	return pgx.Identifier(names).Sanitize()
}

// splitSQL splits a step's SQL into statements with PostgreSQL's parser.
func splitSQL(sql string) ([]string, error) {
	parts, err := pg_query.SplitWithParser(sql, true)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

func parseOne(sql string) *pg_query.Node {
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return nil
	}
	return tree.Stmts[0].Stmt
}

func controlsTransaction(sql string) bool {
	n := parseOne(sql)
	return n != nil && n.GetTransactionStmt() != nil
}

func isSelect(sql string) bool {
	n := parseOne(sql)
	return n != nil && n.GetSelectStmt() != nil
}

// needsOwnStatement reports whether a statement cannot run inside a
// transaction block.
func needsOwnStatement(sql string) bool {
	n := parseOne(sql)
	if n == nil {
		return false
	}
	switch {
	case n.GetIndexStmt() != nil:
		return n.GetIndexStmt().Concurrent
	case n.GetDropStmt() != nil:
		return n.GetDropStmt().Concurrent
	case n.GetReindexStmt() != nil:
		for _, p := range n.GetReindexStmt().Params {
			if p.GetDefElem().GetDefname() == "concurrently" {
				return true
			}
		}
	case n.GetAlterEnumStmt() != nil:
		return true
	case n.GetVacuumStmt() != nil:
		return true
	}
	return false
}

// isLongStatement reports whether a statement scans or rewrites a table
// (so no short statement_timeout fits it).
func isLongStatement(sql string) bool {
	n := parseOne(sql)
	if n == nil {
		return false
	}
	switch {
	case n.GetIndexStmt() != nil, n.GetCreateTableAsStmt() != nil, n.GetRefreshMatViewStmt() != nil,
		n.GetReindexStmt() != nil, n.GetClusterStmt() != nil, n.GetVacuumStmt() != nil:
		return true
	case n.GetAlterTableStmt() != nil:
		for _, c := range n.GetAlterTableStmt().Cmds {
			switch c.GetAlterTableCmd().GetSubtype() {
			case pg_query.AlterTableType_AT_ValidateConstraint, pg_query.AlterTableType_AT_AlterColumnType,
				pg_query.AlterTableType_AT_SetNotNull, pg_query.AlterTableType_AT_AddConstraint:
				return true
			}
		}
	}
	return false
}

// stepStatementTimeout is the statement_timeout of a step's statements:
// none for scans, rewrites and index builds, CatalogStatementTimeout for
// the rest (catalog-only changes).
func stepStatementTimeout(s *plans.Step, stmts []string) time.Duration {
	if s.Rewrite == plans.ImpactScan || s.Rewrite == plans.ImpactRewrite {
		return 0
	}
	for _, h := range s.Hazards {
		switch h.Type {
		case plans.HazardTableScan, plans.HazardTableRewrite, plans.HazardIndexBuild:
			return 0
		}
	}
	for _, st := range stmts {
		if isLongStatement(st) && !isNotValid(st) {
			return 0
		}
	}
	return CatalogStatementTimeout
}

// isNotValid reports ADD CONSTRAINT ... NOT VALID, which scans nothing.
func isNotValid(sql string) bool {
	n := parseOne(sql)
	if n == nil || n.GetAlterTableStmt() == nil {
		return false
	}
	for _, c := range n.GetAlterTableStmt().Cmds {
		cmd := c.GetAlterTableCmd()
		if cmd.GetSubtype() != pg_query.AlterTableType_AT_AddConstraint {
			return false
		}
		con := cmd.GetDef().GetConstraint()
		if con == nil || !con.SkipValidation {
			return false
		}
	}
	return true
}

// redactSQL hides passwords in a statement (CREATE/ALTER ROLE ... PASSWORD)
// before it is audited or shown.
func redactSQL(sql string) string {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return sql
	}
	found := false
	for _, st := range tree.Stmts {
		walkProto(st.ProtoReflect(), func(m protoreflect.Message) {
			if d, ok := m.Interface().(*pg_query.DefElem); ok && d.Defname == "password" && d.Arg != nil {
				d.Arg = pg_query.MakeStrNode(redacted)
				found = true
			}
		})
	}
	if !found {
		return sql
	}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return "(statement not shown: it sets a password)"
	}
	return out
}

// walkProto calls fn on every message of a parse tree, depth first.
func walkProto(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkProto(l.Get(i).Message(), fn)
			}
		case fd.Message() != nil && !fd.IsMap():
			walkProto(v.Message(), fn)
		}
		return true
	})
}

// shortSQL shortens a statement to one line for messages.
func shortSQL(sql string) string {
	s := oneLine(sql)
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

// hookFunc is the tests' kill switch: called at named points; returning
// errKillNow kills the engine there (its connections are closed abruptly,
// as if the process died).
type hookFunc func(ctx context.Context, point, stepID string, n int) error

var (
	errKillNow = errors.New("kill now")
	errKilled  = errors.New("cutover was killed (test kill switch)")
)

func (e *Engine) hook(ctx context.Context, point, stepID string, n int) error {
	if e.opts.hook == nil {
		return nil
	}
	if err := e.opts.hook(ctx, point, stepID, n); err != nil {
		if errors.Is(err, errKillNow) {
			e.kill()
			return errKilled
		}
		return err
	}
	return nil
}

// kill closes every connection's socket (the engine's, the watcher's,
// the backfill workers') without a goodbye, as a killed process would.
func (e *Engine) kill() {
	if e.killFlag.Swap(true) {
		return
	}
	e.killMu.Lock()
	defer e.killMu.Unlock()
	for _, c := range append([]*pgx.Conn{e.conn, e.watch}, e.killConns...) {
		if c != nil {
			c.PgConn().Conn().Close()
		}
	}
}

// killAlso makes the kill switch close conns too (nil: forget them).
func (e *Engine) killAlso(conns []*pgx.Conn) {
	e.killMu.Lock()
	defer e.killMu.Unlock()
	e.killConns = conns
}

func (e *Engine) killed() bool { return e.killFlag.Load() }
