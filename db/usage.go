package db

// The usage check runs before a step that removes a name the application
// may still use (plans.Step.Removes): a column, or a table or view. It
// compares the database's own counters with a baseline taken when the
// application release that stopped using the name was confirmed:
//
//   - pg_stat_statements: statements whose calls increased since the
//     baseline, and whose normalized text references the name (parsed with
//     PostgreSQL's parser and walked: a reference to the table, and to the
//     column for a column removal);
//   - pg_stat_user_tables, for a table about to be dropped: seq_scan,
//     idx_scan and n_tup_ins/upd/del deltas since the baseline.
//
// It then blocks until the name has been unused for the whole observation
// window (--observe), reporting "last seen" each time it looks. With a
// window of 0 it looks once: clean goes on, used stops the run.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/plans"
)

// UsageReport is one look at whether a name about to be removed is used.
type UsageReport struct {
	// Removal is what the step removes.
	Removal plans.Removal
	// Since is the baseline: when the application release that stopped
	// using the name was confirmed (or the run started).
	Since time.Time
	// Statements that referenced the name since the baseline.
	Statements []StatementUse
	// Unreadable counts calls since the baseline of statements this role
	// may not read (other users' statements without pg_read_all_stats).
	Unreadable int64
	// Scans and Tuples are the table's counter deltas since the baseline
	// (table removals only).
	Scans, Tuples int64
	// LastSeen is when a use was last seen; nil when none since Since.
	LastSeen *time.Time
	// Window is the observation window; CleanFor how long the name has
	// been unused (since LastSeen, or since Since).
	Window, CleanFor time.Duration
	// Clean is set when CleanFor covers the window.
	Clean bool
}

// StatementUse is a statement that used a name being removed.
type StatementUse struct {
	User     string
	Query    string
	Calls    int64 // since the baseline
	LastSeen time.Time
}

// pgStatStatements returns the qualified name of the pg_stat_statements
// function, "" when the extension is not installed or not loaded.
func pgStatStatements(ctx context.Context, conn *pgx.Conn) (string, error) {
	var fn string
	err := conn.QueryRow(ctx, `SELECT format('%I.pg_stat_statements', n.nspname) FROM pg_catalog.pg_extension e
		JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'`).Scan(&fn)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	// Installed but not in shared_preload_libraries: calling it fails
	// (in a transaction, behind a savepoint).
	inTx := conn.PgConn().TxStatus() != 'I'
	if inTx {
		if _, err := conn.Exec(ctx, `SAVEPOINT cutover_pss`); err != nil {
			return "", err
		}
	}
	if _, err := conn.Exec(ctx, `SELECT 1 FROM `+fn+`(false) LIMIT 1`); err != nil {
		if inTx {
			_, err = conn.Exec(ctx, `ROLLBACK TO SAVEPOINT cutover_pss`)
			return "", err
		}
		return "", nil
	}
	if inTx {
		_, err = conn.Exec(ctx, `RELEASE SAVEPOINT cutover_pss`)
	}
	return fn, err
}

// currentDB is the SQL of the current database's oid.
const currentDB = `(SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())`

// takeBaseline records the statement and table counters as they are now,
// as the baseline of the usage checks after deploy (0: the run's start).
// It runs inside the caller's transaction.
func takeBaseline(ctx context.Context, conn *pgx.Conn, planID string, deploy int) error {
	if _, err := conn.Exec(ctx, `DELETE FROM cutover.usage_baselines WHERE plan_id = $1 AND deploy = $2`, planID, deploy); err != nil {
		return err
	}
	// The mark separates cutover's own statements before the baseline from
	// those after it, which the check subtracts.
	if _, err := conn.Exec(ctx, `INSERT INTO cutover.usage_baselines (plan_id, deploy, kind, audit_mark)
		SELECT $1, $2, 'mark', coalesce(max(id), 0) FROM cutover.statements`, planID, deploy); err != nil {
		return err
	}
	fn, err := pgStatStatements(ctx, conn)
	if err != nil {
		return err
	}
	if fn == "" {
		_, err = conn.Exec(ctx, `INSERT INTO cutover.usage_baselines (plan_id, deploy, kind) VALUES ($1, $2, 'none')`, planID, deploy)
	} else {
		_, err = conn.Exec(ctx, `INSERT INTO cutover.usage_baselines (plan_id, deploy, kind, userid, queryid, calls)
			SELECT $1, $2, 'statement', userid, queryid, sum(calls) FROM `+fn+`(false) WHERE dbid = `+currentDB+` GROUP BY userid, queryid`, planID, deploy)
	}
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `INSERT INTO cutover.usage_baselines (plan_id, deploy, kind, relid, scans, tuples)
		SELECT $1, $2, 'table', relid, coalesce(seq_scan, 0) + coalesce(idx_scan, 0), n_tup_ins + n_tup_upd + n_tup_del
		FROM pg_catalog.pg_stat_user_tables`, planID, deploy)
	return err
}

// statsFlushLag bounds how late a session's table counters reach
// pg_stat_user_tables: a busy backend flushes them at most every second, an
// idle one within PGSTAT_IDLE_INTERVAL (10 s). A table removal's window is
// never shorter (except --observe 0, which looks once).
const statsFlushLag = 11 * time.Second

// stmtKey identifies a pg_stat_statements entry; queryid is 0 for the
// entries of other users this role may not read.
type stmtKey struct {
	userid  uint32
	queryid int64
	hidden  bool
}

// usageCheck blocks until the name the step removes has been unused for
// the observation window.
func (e *Engine) usageCheck(ctx context.Context, ref stepRef) error {
	rm := *ref.step.Removes
	what := rm.Table
	if rm.Column != "" {
		what += "." + rm.Column
	}
	deploy := e.baselineDeploy(ref)
	var sincep *time.Time
	var none bool
	var mark int64
	if err := e.conn.QueryRow(ctx, `SELECT min(taken_at), coalesce(bool_or(kind = 'none'), false), coalesce(max(audit_mark), 0)
		FROM cutover.usage_baselines WHERE plan_id = $1 AND deploy = $2`,
		e.planID, deploy).Scan(&sincep, &none, &mark); err != nil {
		return err
	}
	if sincep == nil {
		// No baseline (the release was confirmed by an older cutover):
		// take it now, so the window starts now.
		if err := takeBaseline(ctx, e.conn, e.planID, deploy); err != nil {
			return err
		}
		return e.usageCheck(ctx, ref)
	}
	since := *sincep
	fn, err := pgStatStatements(ctx, e.conn)
	if err != nil {
		return err
	}
	if fn == "" {
		return refused("cannot check that nothing still uses %s before step %s: pg_stat_statements is not available in %s; install it (shared_preload_libraries = 'pg_stat_statements', then CREATE EXTENSION pg_stat_statements) and run apply again, the observation window then starts; or pass --no-usage-check to run the step without the check",
			what, ref.step.ID, e.where)
	}
	if none {
		// Installed since the baseline: a new baseline, the window starts now.
		e.emit(ApplyEvent{Kind: EventNotice, StepID: ref.step.ID, Phase: ref.phase, Deploy: ref.deploy,
			Message: "pg_stat_statements was not available when the release was confirmed: taking the usage baseline now"})
		if err := takeBaseline(ctx, e.conn, e.planID, deploy); err != nil {
			return err
		}
		return e.usageCheck(ctx, ref)
	}
	m, err := e.newUsageMatcher(ctx, rm)
	if err != nil {
		return err
	}

	// The baseline counters.
	prev := map[stmtKey]int64{}
	rows, err := e.conn.Query(ctx, `SELECT userid, coalesce(queryid, 0), queryid IS NULL, calls FROM cutover.usage_baselines
		WHERE plan_id = $1 AND deploy = $2 AND kind = 'statement'`, e.planID, deploy)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k stmtKey
		var calls int64
		if err := rows.Scan(&k.userid, &k.queryid, &k.hidden, &calls); err != nil {
			return err
		}
		prev[k] = calls
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var baseScans, baseTuples int64
	if m.relid != 0 && rm.Column == "" {
		if err := e.conn.QueryRow(ctx, `SELECT coalesce(sum(b.scans), 0)::bigint, coalesce(sum(b.tuples), 0)::bigint FROM cutover.usage_baselines b
			WHERE b.plan_id = $1 AND b.deploy = $2 AND b.kind = 'table'
			AND b.relid IN `+relationsOf("$3::oid::regclass"), e.planID, deploy, m.relid).Scan(&baseScans, &baseTuples); err != nil {
			return err
		}
	}

	window := e.opts.Observe
	if m.relid != 0 && rm.Column == "" && window > 0 && window < statsFlushLag {
		// Other sessions report their table counters with a delay: a
		// clean window shorter than that proves nothing about them.
		window = statsFlushLag
	}
	report := &UsageReport{Removal: rm, Since: since, Window: window}
	var me uint32
	if err := e.conn.QueryRow(ctx, `SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user`).Scan(&me); err != nil {
		return err
	}
	uses := map[stmtKey]*StatementUse{}
	texts := map[stmtKey]string{} // normalized texts read so far
	refs := map[stmtKey]bool{}    // does the statement reference the name?
	mine := map[string]int64{}    // fingerprint -> cutover's executions already subtracted
	var lastScans, lastTuples int64
	poll := min(max(window/20, time.Second), 15*time.Second)
	for {
		now := time.Now()
		cur, users, err := e.statementCalls(ctx, fn)
		if err != nil {
			return err
		}
		deltas := map[stmtKey]int64{}
		var unread []stmtKey
		for k, calls := range cur {
			delta := calls - prev[k]
			if calls < prev[k] { // reset or evicted since: all its calls are new
				delta = calls
			}
			prev[k] = calls
			if delta <= 0 {
				continue
			}
			if k.hidden {
				report.Unreadable += delta
				seen := now
				report.LastSeen = &seen
				continue
			}
			deltas[k] = delta
			if _, ok := texts[k]; !ok {
				unread = append(unread, k)
			}
		}
		if len(unread) > 0 {
			got, err := e.statementTexts(ctx, fn, unread)
			if err != nil {
				return err
			}
			for _, k := range unread {
				texts[k] = got[k]
				refs[k] = got[k] != "" && m.references(got[k])
			}
		}
		ours, err := e.ownExecutions(ctx, mark)
		if err != nil {
			return err
		}
		for k, delta := range deltas {
			if !refs[k] {
				continue
			}
			// cutover's own statements since the baseline (a gate, a
			// detach) are not the application's use.
			if k.userid == me {
				if fp, err := pg_query.Fingerprint(texts[k]); err == nil {
					sub := min(delta, ours[fp]-mine[fp])
					mine[fp] += sub
					delta -= sub
				}
			}
			if delta <= 0 {
				continue
			}
			u := uses[k]
			if u == nil {
				u = &StatementUse{User: users[k.userid], Query: texts[k]}
				uses[k] = u
			}
			u.Calls += delta
			u.LastSeen = now
			seen := now
			report.LastSeen = &seen
		}
		if m.relid != 0 && rm.Column == "" {
			var scans, tuples int64
			if err := e.conn.QueryRow(ctx, `SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::bigint,
				coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_catalog.pg_stat_user_tables
				WHERE relid IN `+relationsOf("$1::oid::regclass"), m.relid).Scan(&scans, &tuples); err != nil {
				return err
			}
			report.Scans, report.Tuples = max(scans-baseScans, 0), max(tuples-baseTuples, 0)
			if report.Scans > lastScans || report.Tuples > lastTuples {
				seen := now
				report.LastSeen = &seen
			}
			lastScans, lastTuples = report.Scans, report.Tuples
		}
		report.Statements = report.Statements[:0]
		for _, u := range uses {
			report.Statements = append(report.Statements, *u)
		}
		sort.Slice(report.Statements, func(i, j int) bool { return report.Statements[i].Calls > report.Statements[j].Calls })
		unusedSince := since
		if report.LastSeen != nil {
			unusedSince = *report.LastSeen
		}
		report.CleanFor = max(now.Sub(unusedSince), 0)
		// Unused since the baseline counts from the baseline; a use seen
		// counts from when it was seen, and with no window it is not clean.
		report.Clean = report.CleanFor >= window && (report.LastSeen == nil || window > 0)
		msg := usageMessage(what, report)
		r := *report
		r.Statements = slices.Clone(report.Statements)
		e.emit(ApplyEvent{Kind: EventUsageCheck, StepID: ref.step.ID, Phase: ref.phase, Deploy: ref.deploy, Message: msg, Usage: &r})
		if report.Clean {
			return e.note(ctx, ref.step.ID, "usage check", msg)
		}
		if window == 0 {
			if report.LastSeen == nil {
				return e.note(ctx, ref.step.ID, "usage check", msg)
			}
			if err := e.note(ctx, ref.step.ID, "usage check", msg); err != nil {
				return err
			}
			return &ApplyError{Kind: Failed, Msg: fmt.Sprintf("step %s not run: %s is still used (%s); with --observe 0 cutover checks once: find what still uses it, or run apply again with an observation window (--observe 10m) to wait until it is unused", ref.step.ID, what, usageSummary(report))}
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ownExecutions counts, by fingerprint, the statements cutover executed
// (in any run on this database) after the audit mark of a baseline; those
// that ran count in pg_stat_statements too.
func (e *Engine) ownExecutions(ctx context.Context, mark int64) (map[string]int64, error) {
	rows, err := e.conn.Query(ctx, `SELECT statement FROM cutover.statements WHERE id > $1 AND outcome IN ('ok', 'rolled back')`, mark)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var sql string
		if err := rows.Scan(&sql); err != nil {
			return nil, err
		}
		if fp, err := pg_query.Fingerprint(sql); err == nil {
			out[fp]++
		}
	}
	return out, rows.Err()
}

// statementCalls reads the calls of every statement of this database.
func (e *Engine) statementCalls(ctx context.Context, fn string) (map[stmtKey]int64, map[uint32]string, error) {
	rows, err := e.conn.Query(ctx, `SELECT s.userid, coalesce(s.queryid, 0), s.queryid IS NULL, sum(s.calls)::bigint, coalesce(r.rolname::text, s.userid::text)
		FROM `+fn+`(false) s LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid
		WHERE s.dbid = `+currentDB+` GROUP BY 1, 2, 3, 5`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	out := map[stmtKey]int64{}
	users := map[uint32]string{}
	for rows.Next() {
		var k stmtKey
		var calls int64
		var user string
		if err := rows.Scan(&k.userid, &k.queryid, &k.hidden, &calls, &user); err != nil {
			return nil, nil, err
		}
		out[k] = calls
		users[k.userid] = user
	}
	return out, users, rows.Err()
}

// statementTexts reads the normalized texts of some statements.
func (e *Engine) statementTexts(ctx context.Context, fn string, keys []stmtKey) (map[stmtKey]string, error) {
	var ids []int64
	for _, k := range keys {
		ids = append(ids, k.queryid)
	}
	rows, err := e.conn.Query(ctx, `SELECT userid, queryid, query FROM `+fn+`(true) WHERE dbid = `+currentDB+` AND queryid = ANY ($1)`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[stmtKey]string{}
	for rows.Next() {
		var k stmtKey
		var q *string
		if err := rows.Scan(&k.userid, &k.queryid, &q); err != nil {
			return nil, err
		}
		if q != nil {
			out[k] = *q
		}
	}
	return out, rows.Err()
}

// usageMatcher decides whether a statement references a removed name.
type usageMatcher struct {
	schema, table, column string
	relid                 uint32 // 0 when the relation is not there (any more)
}

func (e *Engine) newUsageMatcher(ctx context.Context, rm plans.Removal) (*usageMatcher, error) {
	m := &usageMatcher{column: rm.Column}
	err := e.conn.QueryRow(ctx, `SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname || '.' || c.relname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`, rm.Table).Scan(&m.relid, &m.schema, &m.table)
	if errors.Is(err, pgx.ErrNoRows) {
		// Gone already: match by the name as written in the plan.
		m.schema, m.table, _ = strings.Cut(rm.Table, ".")
		return m, nil
	}
	return m, err
}

// references reports whether a (normalized) statement references the
// table, and for a column removal the column: as a column reference, an
// INSERT or UPDATE target, or an INSERT without a column list (which
// depends on every column). SELECT * does not count: it keeps working.
// Text the parser cannot read is checked token by token with its scanner.
func (m *usageMatcher) references(query string) bool {
	tree, err := pg_query.Parse(query)
	if err != nil {
		return m.referencesTokens(query)
	}
	rel, col := false, false
	relMatches := func(rv *pg_query.RangeVar) bool {
		return rv != nil && rv.Relname == m.table && (rv.Schemaname == "" || rv.Schemaname == m.schema)
	}
	targets := func(list []*pg_query.Node) {
		for _, t := range list {
			if t.GetResTarget().GetName() == m.column {
				col = true
			}
		}
	}
	for _, st := range tree.Stmts {
		walkProto(st.ProtoReflect(), func(msg protoreflect.Message) {
			switch n := msg.Interface().(type) {
			case *pg_query.RangeVar:
				if relMatches(n) {
					rel = true
				}
			case *pg_query.ColumnRef:
				if len(n.Fields) > 0 && n.Fields[len(n.Fields)-1].GetString_().GetSval() == m.column {
					col = true
				}
			case *pg_query.InsertStmt:
				if relMatches(n.Relation) {
					if len(n.Cols) == 0 {
						col = true
					}
					targets(n.Cols)
				}
			case *pg_query.UpdateStmt:
				targets(n.TargetList)
			case *pg_query.OnConflictClause:
				targets(n.TargetList)
			}
		})
	}
	if m.column == "" {
		return rel
	}
	return rel && col
}

// referencesTokens is the fallback for text the parser rejects: identifier
// tokens equal to the names.
func (m *usageMatcher) referencesTokens(query string) bool {
	res, err := pg_query.Scan(query)
	if err != nil {
		return false
	}
	rel, col := false, false
	for _, t := range res.Tokens {
		if t.Token != pg_query.Token_IDENT {
			continue
		}
		word := query[t.Start:t.End]
		if strings.HasPrefix(word, `"`) {
			word = strings.ReplaceAll(strings.Trim(word, `"`), `""`, `"`)
		} else {
			word = strings.ToLower(word)
		}
		rel = rel || word == m.table
		col = col || (m.column != "" && word == m.column)
	}
	if m.column == "" {
		return rel
	}
	return rel && col
}

func usageSummary(r *UsageReport) string {
	var parts []string
	for i, s := range r.Statements {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("%d more", len(r.Statements)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("`%s` by %s, %s, last seen %s", shortSQL(s.Query), s.User, plural(s.Calls, "call"), s.LastSeen.Format("15:04:05")))
	}
	if r.Unreadable > 0 {
		parts = append(parts, fmt.Sprintf("%s of other users' statements this role cannot read (grant it pg_read_all_stats)", plural(r.Unreadable, "call")))
	}
	if r.Scans > 0 || r.Tuples > 0 {
		parts = append(parts, fmt.Sprintf("the table was scanned %d times and %s written", r.Scans, plural(r.Tuples, "row")))
	}
	return strings.Join(parts, "; ")
}

func usageMessage(what string, r *UsageReport) string {
	base := fmt.Sprintf("usage check of %s since %s", what, r.Since.Format("15:04:05"))
	if r.LastSeen == nil {
		if r.Clean {
			return fmt.Sprintf("%s: unused for %s (window %s): going on", base, roundDur(r.CleanFor).Round(time.Second), r.Window)
		}
		return fmt.Sprintf("%s: unused for %s; waiting until unused for %s (%s more)", base, roundDur(r.CleanFor).Round(time.Second), r.Window,
			(r.Window - r.CleanFor).Round(time.Second))
	}
	if r.Clean {
		return fmt.Sprintf("%s: last seen %s, unused since for %s (window %s): going on", base, r.LastSeen.Format("15:04:05"), r.CleanFor.Round(time.Second), r.Window)
	}
	if r.Window == 0 {
		return fmt.Sprintf("%s: STILL USED, last seen %s: %s (--observe 0: checked once)", base, r.LastSeen.Format("15:04:05"), usageSummary(r))
	}
	return fmt.Sprintf("%s: STILL USED, last seen %s: %s; waiting until unused for %s", base, r.LastSeen.Format("15:04:05"), usageSummary(r), r.Window)
}
