package db

// The keyed backfill (--backfill-workers N): the key space is split into
// ranges of key tuples, (lo, hi], and N workers, each on its own
// connection, walk the ranges in key order. Each batch is one statement,
// its own transaction (rangeBatch: it finds the batch's upper key, the
// limit-th key after the range's cursor, changes the rows up to it,
// restricted by the plan's Where, so running it twice changes nothing, and
// writes the range's checkpoint, its last key, in the same statement). The
// ranges and their checkpoints are state (cutover.backfill_ranges): a
// resumed run walks the same ranges, each from exactly after its last
// committed batch, whatever its worker count. One worker walks one range.
//
// Why several: one backfill session competing with a busy application
// gets a small share of the CPU (a 2-core server with 8 busy clients gives
// it about a ninth); N sessions get about N times that share. The throttle
// governs all of them together: one pacer decides the batch size of every
// worker; when the application suffers hard (lock waiters, probe timeout,
// replica lag) every worker holds for the pause; when it suffers at all,
// the number of workers allowed to run a batch at once halves (down to
// one), and grows back by one per second of calm.
//
// Why one statement and no other bookkeeping: on a CPU-saturated server
// every round trip waits for the backend, and then for cutover, to be
// scheduled, and every extra row written per batch is work the
// application's queries wait behind. A batch is one round trip; it writes
// its range's checkpoint and nothing else: no audit row (an INSERT with a
// foreign-key check, about 9% of the backfill's time in the benchmark),
// no step totals (a row every worker would update in every batch, which
// serialized the workers); the step's totals are the sums of its ranges'.
// This took the benchmark's whole plan from 17.5 s to 13 s.

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cutover/cutover/plans"
)

// DefaultBackfillWorkers is the default of --backfill-workers; see
// ApplyOptions.BackfillWorkers for why.
const DefaultBackfillWorkers = 6

// MaxBackfillWorkers bounds --backfill-workers (each worker is a session).
const MaxBackfillWorkers = 32

// rangesPerWorker: the key space is cut into this many ranges per worker,
// so that a worker whose ranges are sparse takes over others' ranges
// instead of idling at the end.
const rangesPerWorker = 4

// minRangeRows: ranges smaller than this (estimated) are not worth a
// worker.
const minRangeRows = 1000

// workerCalm is how long the throttle must not have slowed the backfill
// before one more worker may run again; workerCut is the least time
// between two cuts of the worker count.
const (
	workerCalm = time.Second
	workerCut  = 500 * time.Millisecond
)

// workerGovernor is the throttle's concurrency policy (a pure state
// machine, no clock of its own): how many workers may run a batch at once.
type workerGovernor struct {
	max, limit int
	changed    time.Time // the limit's last change
	hurt       time.Time // the last decision on which the application suffered
}

// update applies a throttle decision made at now and returns the limit:
// the application suffering halves it (at most once per workerCut, never
// below one); workerCalm without suffering and since the last change adds
// one back.
func (g *workerGovernor) update(now time.Time, d Decision) int {
	switch {
	case d.Suffering:
		g.hurt = now
		if g.limit > 1 && now.Sub(g.changed) >= workerCut {
			g.limit = max(1, g.limit/2)
			g.changed = now
		}
	case g.limit < g.max && now.Sub(g.hurt) >= workerCalm && now.Sub(g.changed) >= workerCalm:
		g.limit++
		g.changed = now
	}
	return g.limit
}

// rangeBound returns the bound query of a batch within a range: the
// batch's upper key (as text) and how many keys it found (at most the
// limit): $1..$k the cursor (when cursor), then $..: the range's hi (when
// hi), then the limit. (The batch statement has it inside; alone it names
// the key range of a batch that failed.)
func rangeBound(b *plans.Backfill, cursor, hi bool) string {
	r := keyRange(b, cursor, hi)
	// The outer query names the subquery's columns (batch."k"): a bare
	// "k" in its ORDER BY would mean the text output column.
	var text, desc []string
	for _, c := range b.Key {
		text = append(text, "batch."+c+"::text")
		desc = append(desc, "batch."+c+" DESC")
	}
	return fmt.Sprintf("SELECT %s, count(*) OVER () FROM (SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT $%d) AS batch ORDER BY %s LIMIT 1",
		strings.Join(text, ", "), r.keys, b.Table, r.where, r.keys, r.limit, strings.Join(desc, ", "))
}

// rangeBatch returns a batch of a range as one statement, checkpoint
// included (one round trip, one snapshot, one transaction): "batch" finds
// the next limit keys after the cursor (and at most the range's hi),
// "bound" the last of them and how many there are, "changed" is the range
// UPDATE (or DELETE) up to that key, restricted by the plan's Where;
// "result" says whether the range is done (fewer keys than the limit, or
// the range's hi reached) and the batch's upper key (the range's hi when
// done; NULL when no key was found and the range has no hi), and
// "checkpoint" writes it as the range's last key with the counts. It
// returns the upper key (text[]), the rows changed, done, and how many
// checkpoint rows it wrote (1).
//
// Parameters: $1..$k the cursor (when cursor), then the range's hi (when
// hi), then the limit; then the plan id, the step id, the range number,
// the cursor as text[] (NULL without one) and the hi as text[] (NULL
// without one). head is "UPDATE t SET ... WHERE " or "DELETE FROM t WHERE ".
func rangeBatch(b *plans.Backfill, head string, cursor, hi bool) string {
	r := keyRange(b, cursor, hi)
	k := len(b.Key)
	var inBatch, desc, inBound, text []string
	for _, c := range b.Key {
		inBatch = append(inBatch, "batch."+c)
		desc = append(desc, "batch."+c+" DESC")
		inBound = append(inBound, "bound."+c)
		text = append(text, "bound."+c+"::text")
	}
	after := ""
	if r.after != "" {
		after = r.after + " AND "
	}
	p := func(i int) string { return fmt.Sprintf("$%d", r.limit+i) }
	// done: fewer keys than the limit, or the last key is the range's hi.
	done := `o."keys" < ` + p(0)
	upper := `o."upper"`
	if hi {
		var his []string
		first := r.limit - k
		for i := 0; i < k; i++ {
			his = append(his, fmt.Sprintf("$%d", first+i))
		}
		hiTuple := his[0]
		if k > 1 {
			hiTuple = "(" + strings.Join(his, ", ") + ")"
		}
		done += fmt.Sprintf(` OR coalesce(%s = (SELECT %s FROM bound), false)`, hiTuple, strings.Join(inBound, ", "))
		upper = fmt.Sprintf(`CASE WHEN d."done" THEN %s::text[] ELSE o."upper" END`, p(5))
	}
	return fmt.Sprintf(`WITH batch AS (SELECT %[1]s FROM %[2]s WHERE %[3]s ORDER BY %[1]s LIMIT %[4]s), `+
		`bound AS (SELECT %[5]s, count(*) OVER () AS "cutover keys" FROM batch ORDER BY %[6]s LIMIT 1), `+
		`changed AS (%[7]s%[8]s%[9]s <= (SELECT %[10]s FROM bound) AND (%[11]s) RETURNING 1), `+
		`outcome AS (SELECT (SELECT count(*) FROM changed) AS "rows", coalesce((SELECT "cutover keys" FROM bound), 0) AS "keys", `+
		`(SELECT ARRAY[%[12]s] FROM bound) AS "upper"), `+
		`result AS (SELECT o."rows", o."keys", d."done", %[13]s AS "upper" FROM outcome o, LATERAL (SELECT %[14]s AS "done") d), `+
		`checkpoint AS (UPDATE cutover.backfill_ranges r SET last_key = coalesce(result."upper", %[15]s::text[]), `+
		`rows_done = r.rows_done + result."rows", batches = r.batches + 1, done = result."done", updated_at = clock_timestamp() `+
		`FROM result WHERE r.plan_id = %[16]s AND r.step_id = %[17]s AND r.range_no = %[18]s RETURNING 1) `+
		`SELECT result."upper", result."rows", result."done", (SELECT count(*) FROM checkpoint) FROM result`,
		r.keys, b.Table, r.where, p(0),
		strings.Join(inBatch, ", "), strings.Join(desc, ", "),
		head, after, r.tuple, strings.Join(inBound, ", "), b.Where,
		strings.Join(text, ", "), upper, done, p(4),
		p(1), p(2), p(3))
}

// keyRangeSQL is what rangeBound and rangeBatch share: the key columns
// (keys, and tuple: in parentheses when there are several), the predicate
// of the keys after the cursor ($1..$k, when there is one) and up to the
// range's hi (the next k parameters, when there is one), the cursor's part
// of it alone (after, "" without a cursor) and the number of the next
// parameter (limit).
type keyRangeSQL struct {
	keys, tuple, where, after string
	limit                     int
}

func keyRange(b *plans.Backfill, cursor, hi bool) keyRangeSQL {
	k := len(b.Key)
	r := keyRangeSQL{keys: strings.Join(b.Key, ", ")}
	r.tuple = r.keys
	if k > 1 {
		r.tuple = "(" + r.keys + ")"
	}
	n := 1
	params := func() string {
		var p []string
		for i := 0; i < k; i++ {
			p = append(p, fmt.Sprintf("$%d", n))
			n++
		}
		if k == 1 {
			return p[0]
		}
		return "(" + strings.Join(p, ", ") + ")"
	}
	var where []string
	if cursor {
		r.after = r.tuple + " > " + params()
		where = append(where, r.after)
	}
	if hi {
		where = append(where, r.tuple+" <= "+params())
	}
	if len(where) == 0 {
		where = []string{"true"}
	}
	r.where, r.limit = strings.Join(where, " AND "), n
	return r
}

// leadColumn returns the unquoted name of a quoted key column.
func leadColumn(quoted string) (string, error) {
	n := parseOne("SELECT " + quoted)
	if n == nil || len(n.GetSelectStmt().GetTargetList()) != 1 {
		return "", fmt.Errorf("key column %s does not parse", quoted)
	}
	ref := n.GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal().GetColumnRef()
	if ref == nil || len(ref.Fields) != 1 || ref.Fields[0].GetString_() == nil {
		return "", fmt.Errorf("key column %s is not a column name", quoted)
	}
	return ref.Fields[0].GetString_().GetSval(), nil
}

// splitRanges cuts the keys after from (nil: all) into up to n ranges of
// key tuples by the leading key column: integers by min/max, other types
// by the column's histogram (pg_stats). Each bound is a key present now,
// so the ranges tile the key order exactly. It returns fewer than two
// ranges, with the reason, when the table cannot be split.
func (e *Engine) splitRanges(ctx context.Context, b *plans.Backfill, from []string, n int) ([]*BackfillRange, string, error) {
	k := len(b.Key)
	keys := strings.Join(b.Key, ", ")
	tuple := keys
	if k > 1 {
		tuple = "(" + keys + ")"
	}
	// after is the condition "key after from", its params from $base.
	after := func(base int) string {
		if from == nil {
			return "true"
		}
		var p []string
		for i := 0; i < k; i++ {
			p = append(p, fmt.Sprintf("$%d", base+i))
		}
		if k == 1 {
			return tuple + " > " + p[0]
		}
		return tuple + " > (" + strings.Join(p, ", ") + ")"
	}
	lead := b.Key[0]
	var lo, hi *string
	var typ string
	q := fmt.Sprintf(`SELECT min(%[1]s)::text, max(%[1]s)::text, pg_typeof(min(%[1]s))::text FROM %[2]s WHERE %[3]s`, lead, b.Table, after(1))
	if err := e.conn.QueryRow(ctx, q, anys(from)...).Scan(&lo, &hi, &typ); err != nil {
		return nil, "", err
	}
	if lo == nil || hi == nil {
		return nil, "the table has no rows left to backfill", nil
	}
	var points []string
	switch typ {
	case "smallint", "integer", "bigint":
		l, _ := new(big.Int).SetString(*lo, 10)
		h, _ := new(big.Int).SetString(*hi, 10)
		if l == nil || h == nil {
			return nil, "", fmt.Errorf("min/max of %s are not integers (%s, %s)", lead, *lo, *hi)
		}
		span := new(big.Int).Sub(h, l)
		for i := 1; i < n; i++ {
			v := new(big.Int).Mul(span, big.NewInt(int64(i)))
			v.Quo(v, big.NewInt(int64(n)))
			v.Add(v, l)
			points = append(points, v.String())
		}
	default:
		col, err := leadColumn(lead)
		if err != nil {
			return nil, "", err
		}
		var bounds []string
		err = e.conn.QueryRow(ctx, `SELECT s.histogram_bounds::text::text[] FROM pg_catalog.pg_stats s
			JOIN pg_catalog.pg_class c ON c.relname = s.tablename JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace AND ns.nspname = s.schemaname
			WHERE c.oid = $1::regclass AND s.attname = $2 AND s.histogram_bounds IS NOT NULL`, b.Table, col).Scan(&bounds)
		if errors.Is(err, pgx.ErrNoRows) || len(bounds) < 3 {
			return nil, fmt.Sprintf("its leading key column %s is not an integer and has no statistics to split it by (ANALYZE %s)", lead, b.Table), nil
		}
		if err != nil {
			return nil, "", err
		}
		for i := 1; i < n; i++ {
			points = append(points, bounds[i*(len(bounds)-1)/n])
		}
	}
	// Each point becomes the greatest key whose leading column is at most
	// the point (and after from): a key that exists, in key order.
	// The text outputs are named k1..kn: an output named like the key
	// column would make ORDER BY sort the text.
	var text []string
	for i, c := range b.Key {
		text = append(text, fmt.Sprintf("%s::text AS k%d", c, i+1))
	}
	boundSQL := fmt.Sprintf(`SELECT %s FROM %s WHERE %s <= $1 AND %s ORDER BY %s LIMIT 1`,
		strings.Join(text, ", "), b.Table, lead, after(2), strings.Join(descAll(b.Key), ", "))
	var cuts [][]string
	for _, pt := range points {
		row := make([]string, k)
		dest := make([]any, k)
		for i := range row {
			dest[i] = &row[i]
		}
		err := e.conn.QueryRow(ctx, boundSQL, append([]any{pt}, anys(from)...)...).Scan(dest...)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if len(cuts) > 0 && slices.Equal(cuts[len(cuts)-1], row) {
			continue
		}
		cuts = append(cuts, row)
	}
	var out []*BackfillRange
	prev := from
	for i, c := range cuts {
		out = append(out, &BackfillRange{No: i, Lo: prev, Hi: c})
		prev = c
	}
	out = append(out, &BackfillRange{No: len(cuts), Lo: prev})
	if len(out) < 2 {
		return out, "its keys could not be split into several ranges", nil
	}
	return out, "", nil
}

func descAll(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c + " DESC"
	}
	return out
}

// keyText writes a key tuple for messages: 42, or (7, 3).
func keyText(k []string) string {
	if len(k) == 1 {
		return k[0]
	}
	return "(" + strings.Join(k, ", ") + ")"
}

// batchRangeText describes the keys of a batch: (lower, upper].
func batchRangeText(lower, upper []string) string {
	lo := "the start"
	if lower != nil {
		lo = keyText(lower)
	}
	up := "the end"
	if upper != nil {
		up = keyText(upper)
	}
	return fmt.Sprintf("(%s, %s]", lo, up)
}

// dataError turns a batch's data exception (SQLSTATE class 22: a cast or
// an expression that fails on some row; 23514 / 23502: a domain's CHECK or
// NOT NULL the new value breaks) into the operator's one line: which
// table, which batch's key range, what to do.
func dataError(stepID, table string, lower, upper []string, err error) error {
	code := sqlState(err)
	if !strings.HasPrefix(code, "22") && code != "23514" && code != "23502" {
		return err
	}
	return &ApplyError{Kind: Failed, Err: err, Msg: fmt.Sprintf(
		"step %s: a row of %s with key in %s cannot take the new value: %s (SQLSTATE %s); fix the rows in that key range (UPDATE them to values that convert), then run apply again: the backfill resumes from the checkpoint (committed batches are kept); to change the USING expression instead, roll back and plan again",
		stepID, table, batchRangeText(lower, upper), pgMessage(err), code)}
}

// pgMessage is the server's message of err (its detail too).
func pgMessage(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return oneLine(err.Error())
	}
	if pe.Detail != "" {
		return pe.Message + " (" + pe.Detail + ")"
	}
	return pe.Message
}

// rangeOutcome is what one batch of a range did.
type rangeOutcome struct {
	batches int64 // batches committed (0: the range was found empty)
	rows    int64
	upper   []string
	done    bool
	busy    time.Duration // time in batches (the loop's; 0 for one batch)
}

// backfillWorker is one worker's session.
type backfillWorker struct {
	no   int
	conn *pgx.Conn
	loop bool // the session has the server-side loop (backfill_loop.go)
	// gap is the throttle's pause after each batch of the next call of
	// the loop (0: --batch-gap alone).
	gap time.Duration
}

// parallelBackfill is one run of a parallel backfill: the shared pacer,
// the concurrency limit, the pause, and the aggregated progress.
type parallelBackfill struct {
	e       *Engine
	ref     stepRef
	sqls    *backfillStatements
	session []string // statements setting up each worker's session

	mu        sync.Mutex
	pacer     Pacer
	size      int
	hold      time.Time // every worker waits until then (hard throttle)
	gov       workerGovernor
	running   int           // batches in flight
	changed   chan struct{} // closed when running, the limit or hold change
	announced bool          // the manual pause was reported
	reason    string
	pause     time.Duration
	rows      int64 // totals of the step (the parent checkpoint)
	batches   int64
	startRows int64
	start     time.Time
	estimate  int64
	lastKey   []string
	workers   int
	gap       time.Duration // the pacer's first pause: each worker's first gap
	calls     atomic.Int64  // calls of the server-side loop (a test hook's count)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runParallel runs a backfill over its key ranges with up to
// opts.BackfillWorkers workers.
func (e *Engine) runParallel(ctx context.Context, ref stepRef, sqls *backfillStatements, cp *Checkpoint, ranges []*BackfillRange, session []string, estimate int64) error {
	s := ref.step
	p := &parallelBackfill{e: e, ref: ref, sqls: sqls, session: session, pacer: e.opts.Pacer, changed: make(chan struct{}),
		estimate: estimate, start: time.Now()}
	if p.pacer == nil {
		p.pacer = FixedPacer{Size: e.opts.BatchSize}
	}
	if cp != nil {
		p.rows, p.batches, p.startRows = cp.RowsDone, int64(cp.Batches), cp.RowsDone
	}
	var pending []*BackfillRange
	for _, r := range ranges {
		if !r.Done {
			pending = append(pending, r)
		}
	}
	n := min(max(e.opts.BackfillWorkers, 1), len(pending))
	p.workers = n
	p.gov = workerGovernor{max: max(n, 1), limit: max(n, 1), changed: time.Now()}
	if ps := e.opts.Pause; ps != nil {
		ps.enter()
		defer ps.leave()
	}
	if n > 1 {
		e.emit(ApplyEvent{Kind: EventNotice, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy,
			Message: fmt.Sprintf("%s over %d key ranges (%d left) of %s, each range with its own checkpoint; the throttle governs them together",
				plural(int64(n), "worker"), len(ranges), len(pending), s.Backfill.Key[0])})
	}
	if n > 0 {
		size, pause := p.pacer.Next(nil)
		p.size = max(size, 1)
		p.gap = pause
		if err := e.runWorkers(ctx, p, pending, n); err != nil {
			return err
		}
	}
	done := p.progress()
	done.Done = true
	e.emit(ApplyEvent{Kind: EventBackfillProgress, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy,
		Message: fmt.Sprintf("backfill complete: %s changed in %s by %s, %s (%s rows/s)", plural(p.rows, "row"), plural(p.batches, "batch"),
			plural(int64(max(n, 1)), "worker"), roundDur(done.Elapsed), thousands(int64(done.RowsPerSec))),
		Backfill: done})
	_, err := e.conn.Exec(ctx, stepDoneSQL, e.planID, s.ID)
	return err
}

// runWorkers opens the workers' sessions (the first is the engine's) and
// runs them until the ranges are done or one fails (the others then stop
// after rolling back their batch in flight).
func (e *Engine) runWorkers(ctx context.Context, p *parallelBackfill, pending []*BackfillRange, n int) error {
	queue := make(chan *BackfillRange, len(pending))
	for _, r := range pending {
		queue <- r
	}
	close(queue)
	var workers []*backfillWorker
	defer func() {
		if e.killed() {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, w := range workers {
			w.conn.Close(cctx)
		}
	}()
	for i := 1; i <= n; i++ {
		conn, err := e.workerConn(ctx, i, p.session)
		if err != nil {
			return err
		}
		w := &backfillWorker{no: i, conn: conn, gap: p.gap}
		workers = append(workers, w)
		if !e.opts.clientBatches {
			if err := createLoop(ctx, conn, p.sqls); err != nil {
				if i == 1 {
					e.emit(ApplyEvent{Kind: EventNotice, StepID: p.ref.step.ID, Phase: p.ref.phase, Deploy: p.ref.deploy,
						Message: fmt.Sprintf("batches are sent one by one from cutover: the session cannot create its server-side loop in pg_temp (%s)", pgMessage(err))})
				}
			} else {
				w.loop = true
			}
		}
	}
	// The kill switch closes the workers' sessions too.
	var conns []*pgx.Conn
	for _, w := range workers {
		conns = append(conns, w.conn)
	}
	e.killAlso(conns)
	defer e.killAlso(nil)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var first error
	for _, w := range workers {
		wg.Go(func() {
			err := p.work(wctx, w, queue)
			if err == nil {
				return
			}
			if errors.Is(err, errKilled) || e.killed() {
				e.kill()
			}
			errMu.Lock()
			if first == nil {
				first = err
			}
			errMu.Unlock()
			cancel()
		})
	}
	wg.Wait()
	switch {
	case e.killed():
		return errKilled
	case first != nil && ctx.Err() != nil:
		return ctx.Err()
	}
	return first
}

// workerConn opens the session of worker i, set up like the engine's,
// with the settings of its batches and the step's session statements
// (session_replication_role with --skip-triggers). A batch is one
// statement, so its timeouts are the session's. synchronous_commit is
// off: a batch's checkpoint commits with its rows, so a server crash can
// only lose the last batches' commits, rows and checkpoints together, and
// the resumed backfill runs them again; the engine marks the step done on
// its own session, whose commit flushes the WAL of every batch before it,
// so nothing after the backfill starts before all of it is durable. It
// spares each batch a WAL flush (and the wait for a synchronous standby).
func (e *Engine) workerConn(ctx context.Context, i int, session []string) (*pgx.Conn, error) {
	cfg := e.conn.Config().Copy()
	if app := cfg.RuntimeParams["application_name"]; strings.HasPrefix(app, "cutover") {
		cfg.RuntimeParams["application_name"] = fmt.Sprintf("cutover backfill %d", i)
	}
	cfg.RuntimeParams["DateStyle"] = "ISO, YMD"
	cfg.RuntimeParams["IntervalStyle"] = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening backfill worker %d's session: %w", i, err)
	}
	if v := conn.PgConn().ParameterStatus("server_version"); !strings.HasPrefix(v, "9.") && !strings.HasPrefix(v, "10") &&
		!strings.HasPrefix(v, "11") && !strings.HasPrefix(v, "12") && !strings.HasPrefix(v, "13") {
		if _, err := conn.Exec(ctx, `SET client_connection_check_interval = '1s'`); err != nil {
			conn.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	if _, err := conn.Exec(ctx, `SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false),
		set_config('synchronous_commit', 'off', false)`, pgDuration(e.opts.LockTimeout), pgDuration(BatchStatementTimeout)); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("setting up backfill worker %d's session: %w", i, err)
	}
	for _, sql := range session {
		if _, err := conn.Exec(ctx, sql); err != nil {
			conn.Close(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("setting up backfill worker %d's session (%s): %w", i, sql, err)
		}
	}
	return conn, nil
}

// work runs ranges from the queue until it is empty: each step is a call
// of the server-side loop (many batches) when the worker's session has it
// and the range has a cursor, else one batch sent from the client.
func (p *parallelBackfill) work(ctx context.Context, w *backfillWorker, queue <-chan *BackfillRange) error {
	e, s := p.e, p.ref.step
	for rg := range queue {
		for !rg.Done {
			if err := p.acquire(ctx); err != nil {
				return err
			}
			p.mu.Lock()
			size := p.size
			p.mu.Unlock()
			start := time.Now()
			var res rangeOutcome
			looped := false
			err := p.retry(ctx, rg, func(n int) error {
				var err error
				if cursor, hi := rangeCursor(rg); w.loop && cursor != nil {
					looped = true
					res, err = p.loopStep(ctx, w, rg, size, n, cursor, hi, max(e.opts.BatchGap, w.gap))
				} else {
					res, err = p.batch(ctx, w, rg, size, n)
				}
				return err
			})
			if err != nil {
				p.release()
				return err
			}
			if res.batches > 0 {
				rg.LastKey = res.upper
				rg.RowsDone += res.rows
				rg.Batches += int(res.batches)
			}
			rg.Done = res.done
			// Per batch: a call of the loop reports its batches' mean.
			per := time.Since(start)
			if res.batches > 1 {
				per = res.busy / time.Duration(res.batches)
			}
			// The batch holds its slot until it is accounted for: a
			// pause is reported once no batch is in flight or unreported.
			pause, total := p.committed(res, size, per)
			if looped {
				// The throttle's pause follows each batch: in the loop,
				// it is also the gap between the next call's batches.
				w.gap = pause
			}
			if res.batches > 0 {
				err = e.hook(ctx, "batch-committed", s.ID, int(total))
			}
			p.release()
			if err != nil {
				return err
			}
			if pause > 0 {
				if err := sleepCtx(ctx, pause); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// rangeCursor is where a range's next batch starts (nil: at the table's
// start) and its upper key (nil: none).
func rangeCursor(rg *BackfillRange) (cursor, hi []string) {
	cursor = rg.LastKey
	if len(cursor) == 0 {
		cursor = rg.Lo
	}
	if len(cursor) == 0 {
		cursor = nil
	}
	hi = rg.Hi
	if len(hi) == 0 {
		hi = nil
	}
	return cursor, hi
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// broadcast wakes the workers waiting for a slot (p.mu held).
func (p *parallelBackfill) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// acquire waits until this worker may run a batch: not paused by the
// operator, not held by the throttle, and fewer batches in flight than
// the throttle's worker limit.
func (p *parallelBackfill) acquire(ctx context.Context) error {
	ps := p.e.opts.Pause
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.mu.Lock()
		if ps != nil && ps.Paused() {
			if p.running == 0 && !p.announced {
				p.announcePause()
			}
			p.mu.Unlock()
			if _, err := ps.wait(ctx, nil); err != nil {
				return err
			}
			continue
		}
		p.announced = false
		if wait := time.Until(p.hold); wait > 0 {
			p.mu.Unlock()
			if err := sleepCtx(ctx, wait); err != nil {
				return err
			}
			continue
		}
		if p.running >= p.gov.limit {
			ch := p.changed
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-ch:
			}
			continue
		}
		p.running++
		p.mu.Unlock()
		return nil
	}
}

// release ends a batch (committed or not).
func (p *parallelBackfill) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running--
	p.broadcast()
	if ps := p.e.opts.Pause; ps != nil && ps.Paused() && p.running == 0 && !p.announced {
		p.announcePause()
	}
}

// announcePause reports a manual pause once no batch is in flight (p.mu
// held).
func (p *parallelBackfill) announcePause() {
	p.announced = true
	pr := p.progress()
	pr.Paused = true
	r := p.ref
	p.e.emit(ApplyEvent{Kind: EventBackfillProgress, StepID: r.step.ID, Phase: r.phase, Deploy: r.deploy,
		Message: fmt.Sprintf("paused after %s (%s changed); the table is consistent (every batch is atomic): resume, or interrupt again to stop (apply again resumes from the checkpoints)",
			plural(p.batches, "batch"), plural(p.rows, "row")),
		Backfill: pr})
}

// committed accounts for a batch (or a loop's batches), asks the pacer for the next size and
// reports the aggregated progress; it returns this worker's pause and the
// step's batch count.
func (p *parallelBackfill) committed(res rangeOutcome, size int, dur time.Duration) (time.Duration, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if res.batches == 0 {
		return 0, p.batches
	}
	p.rows += res.rows
	p.batches += res.batches
	p.lastKey = res.upper
	now := time.Now()
	var pause time.Duration
	// While every worker holds, the batches that were in flight do not
	// make the pause grow again.
	if !now.Before(p.hold) {
		var d Decision
		d.Size, d.Pause = p.pacer.Next(&BatchResult{Size: size, Rows: res.rows / res.batches, Duration: dur})
		switch pc := p.pacer.(type) {
		case interface{ Last() Decision }:
			d = pc.Last()
		case interface{ Throttled() string }:
			d.Reason = pc.Throttled()
		}
		p.size = max(d.Size, 1)
		p.reason, p.pause = d.Reason, d.Pause
		if d.Hard {
			p.hold = now.Add(d.Pause)
		} else {
			pause = d.Pause
		}
		if old := p.gov.limit; p.gov.update(now, d) != old {
			p.broadcast()
		}
	}
	pr := p.progress()
	r := p.ref
	p.e.emit(ApplyEvent{Kind: EventBackfillProgress, StepID: r.step.ID, Phase: r.phase, Deploy: r.deploy,
		Message: progressText(pr), Backfill: pr})
	return pause, p.batches
}

// progress is the aggregated progress (p.mu held).
func (p *parallelBackfill) progress() *BackfillProgress {
	el := time.Since(p.start)
	pr := &BackfillProgress{Table: p.ref.step.Table, Batches: int(p.batches), Rows: p.rows, Estimated: p.estimate, BatchSize: p.size,
		LastKey: p.lastKey, Elapsed: el, ETA: -1, Throttled: p.reason, Pause: p.pause, Workers: min(p.gov.limit, p.workers)}
	if sec := el.Seconds(); sec > 0 {
		pr.RowsPerSec = float64(p.rows-p.startRows) / sec
	}
	if p.estimate >= 0 && pr.RowsPerSec > 0 {
		pr.ETA = time.Duration(float64(max(0, p.estimate-p.rows)) / pr.RowsPerSec * float64(time.Second))
	}
	return pr
}

// retry runs a batch until it commits, fails with anything but a lock
// conflict, or the attempt and time bounds are reached (withRetry's loop,
// per worker; the workers' retry events are serialized).
func (p *parallelBackfill) retry(ctx context.Context, rg *BackfillRange, attempt func(n int) error) error {
	subj := p.ref.subject("")
	subj.whatNow = func() string { return fmt.Sprintf("batch after key %s (range %d)", keyText(orStart(rg)), rg.No+1) }
	return p.e.retryLoop(ctx, subj, func(_ context.Context, n int) error { return attempt(n) }, func(ev ApplyEvent) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.e.emit(ev)
	}, nil)
}

func orStart(rg *BackfillRange) []string {
	if rg.LastKey != nil {
		return rg.LastKey
	}
	if rg.Lo != nil {
		return rg.Lo
	}
	return []string{"(start)"}
}

// batchAuditSQL is the audit row of a keyed batch that failed: the
// statement with its key range. (A committed batch leaves no audit row:
// its range's checkpoint in cutover.backfill_ranges counts it, and an
// audit INSERT in every batch would cost more than the batch's own
// bookkeeping; see the benchmark notes in docs/benchmarks.md.)
const batchAuditSQL = `INSERT INTO cutover.statements (plan_id, step_id, action, attempt, statement, args, lock_timeout, statement_timeout,
	started_at, duration_ms, rows, outcome, sqlstate, error, batch_lo, batch_hi)
	VALUES ($1, $2, 'batch', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`

// failed audits a batch that failed (the statement with the batch's key
// range: its upper key is found again from the cursor) and returns the
// error, as the operator's line when a row's value is at fault.
func (p *parallelBackfill) failed(ctx context.Context, conn *pgx.Conn, stmt string, keyArgs []any, cursor, hi []string, start time.Time, attempt int, err error) error {
	e, s := p.e, p.ref.step
	if e.killed() {
		return err
	}
	a := auditEntry{statement: stmt, args: strs(keyArgs), started: start, duration: time.Since(start),
		outcome: "failed", sqlstate: sqlState(err), err: oneLine(err.Error())}
	var upper []string
	if sqlState(err) != "" && !errors.Is(ctx.Err(), context.Canceled) {
		up := make([]string, len(s.Backfill.Key))
		var n int64
		d := make([]any, 0, len(up)+1)
		for i := range up {
			d = append(d, &up[i])
		}
		sctx, cancel := stateCtx(ctx)
		if conn.QueryRow(sctx, p.sqls.bound[b2i(cursor != nil)][b2i(hi != nil)], keyArgs...).Scan(append(d, &n)...) == nil {
			upper = up
		}
		cancel()
	}
	sctx, cancel := stateCtx(ctx)
	conn.Exec(sctx, batchAuditSQL, e.planID, s.ID, attempt, a.statement, a.args, pgDuration(e.opts.LockTimeout), pgDuration(BatchStatementTimeout),
		a.started, ms(a.duration), nil, a.outcome, nullable(a.sqlstate), nullable(a.err), cursor, upper)
	cancel()
	return dataError(s.ID, s.Table, cursor, upper, err)
}

// batch runs one batch of a range: one statement (rangeBatch: the bound,
// the UPDATE and the range's checkpoint) in one round trip, on the
// worker's session (its timeouts are session settings, see workerConn).
// With a test hook installed the statement runs inside BEGIN ... COMMIT
// with the hook "batch-in-tx" in between, so that tests can kill the
// engine while a batch's transaction is open.
func (p *parallelBackfill) batch(ctx context.Context, w *backfillWorker, rg *BackfillRange, size, attempt int) (rangeOutcome, error) {
	e, s := p.e, p.ref.step
	conn := w.conn
	var res rangeOutcome
	cursor, hi := rangeCursor(rg)
	batchSQL := p.sqls.batch[b2i(cursor != nil)][b2i(hi != nil)]
	keyArgs := append(append(anys(cursor), anys(hi)...), size)
	var cursorText any
	if cursor != nil {
		cursorText = cursor
	}
	args := append(slices.Clone(keyArgs), e.planID, s.ID, rg.No, cursorText)
	if hi != nil {
		args = append(args, hi)
	}
	open := false
	rollback := func() {
		if open && !e.killed() {
			rctx, cancel := stateCtx(ctx)
			conn.Exec(rctx, "ROLLBACK")
			cancel()
		}
		open = false
	}
	defer rollback()
	if e.opts.hook != nil {
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			return res, err
		}
		open = true
	}
	start := time.Now()
	var written int64
	err := conn.QueryRow(ctx, batchSQL, args...).Scan(&res.upper, &res.rows, &res.done, &written)
	if err == nil && written != 1 {
		err = fmt.Errorf("the checkpoint of range %d of step %s is missing from cutover.backfill_ranges", rg.No+1, s.ID)
	}
	if err != nil {
		rollback()
		return res, p.failed(ctx, conn, batchSQL, keyArgs, cursor, hi, start, attempt, err)
	}
	res.batches = 1
	if open {
		if err := e.hook(ctx, "batch-in-tx", s.ID, attempt); err != nil {
			return res, err
		}
		tag, err := conn.Exec(ctx, "COMMIT")
		if err != nil {
			return res, err
		}
		open = false
		if tag.String() != "COMMIT" {
			return res, fmt.Errorf("the batch's transaction did not commit (%s)", tag.String())
		}
	}
	if res.upper == nil {
		res.upper = cursor
	}
	return res, nil
}
