package db

// The backfill: a batched data change (plans.Backfill) run as many short
// transactions. Each batch covers a fixed key range, (last key, upper key]
// where upper is the batch-size-th key after the last one in key order,
// and is one range UPDATE (or DELETE) restricted by the plan's Where, so a
// batch only touches rows that still need work and running it twice
// changes nothing. The checkpoint (the upper key) is written in the same
// transaction as the batch: after a crash the next run starts exactly after
// the last committed batch. The keys are walked as one or more key ranges,
// by one or more workers (backfill_parallel.go), each range with its own
// checkpoint. A table without a usable key is walked in ctid (page) ranges
// instead, by one session (below).
//
// Batch sizing is behind the Pacer interface: FixedPacer (--batch-size) is
// the simple policy; the adaptive one (throttle.go) plugs in there. A keyed
// backfill's worker runs its batches in a server-side loop
// (backfill_loop.go) when its session can create it.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
)

// Pacer decides the size of each backfill batch and the pause before it,
// from the result of the previous batch (nil before the first).
type Pacer interface {
	Next(prev *BatchResult) (size int, pause time.Duration)
}

// BatchResult is what a committed batch did.
type BatchResult struct {
	Size     int
	Rows     int64
	Duration time.Duration
}

// FixedPacer runs batches of one size back to back.
type FixedPacer struct{ Size int }

// Next implements Pacer.
func (p FixedPacer) Next(*BatchResult) (int, time.Duration) { return p.Size, 0 }

// backfillStatements are the SQL texts of a backfill's batches.
type backfillStatements struct {
	keyed bool
	// bound[cursor][hi] select a keyed batch's upper key (see rangeBound);
	// batch[cursor][hi] are the batch statements (see rangeBatch).
	bound, batch [2][2]string
	// loop[hi] create the server-side loop over a range without / with
	// an upper key, loopCall[hi] call it (see backfill_loop.go).
	loop, loopCall [2]string
	// loopErr says why there is no loop (the workers then send their
	// batches from the client).
	loopErr error
	// change is the range UPDATE/DELETE: $1..$k lower key (omitted in
	// changeFirst), then $k+1..$2k upper key. For ctid ranges: $1, $2 tids.
	changeFirst, change string
	// remaining tells whether any row still needs work (the ctid walk's
	// final check).
	remaining string
}

// maxCtidPasses bounds the passes of a ctid walk. A concurrent UPDATE
// writes a row's new version wherever there is room, possibly on a page
// the walk has passed: a row that still needs work can be left behind.
// The Where predicate makes another pass safe (it touches only such rows),
// so at the end the engine checks whether any row still matches it and
// walks the table again, until none does or after this many passes (then
// the step's gate reports the rows left).
const maxCtidPasses = 3

// backfillSQL builds and checks the statements of a backfill: each must
// parse as exactly one statement of the expected kind, so that a plan's
// Set or Where cannot smuggle in anything else.
func backfillSQL(b *plans.Backfill) (*backfillStatements, error) {
	if b.Table == "" || b.Where == "" || (len(b.Set) == 0 && !b.Delete) {
		return nil, fmt.Errorf("the backfill needs a table, a predicate and assignments (or delete)")
	}
	head := fmt.Sprintf("UPDATE %s SET %s WHERE ", b.Table, strings.Join(b.Set, ", "))
	if b.Delete {
		head = fmt.Sprintf("DELETE FROM %s WHERE ", b.Table)
	}
	out := &backfillStatements{keyed: len(b.Key) > 0,
		remaining: fmt.Sprintf("SELECT EXISTS (SELECT FROM %s WHERE %s)", b.Table, b.Where)}
	if !out.keyed {
		out.change = head + fmt.Sprintf("ctid >= $1::tid AND ctid < $2::tid AND (%s)", b.Where)
		out.changeFirst = out.change
	} else {
		k := len(b.Key)
		keys := strings.Join(b.Key, ", ")
		params := func(from int) string {
			var p []string
			for i := 0; i < k; i++ {
				p = append(p, fmt.Sprintf("$%d", from+i))
			}
			if k == 1 {
				return p[0]
			}
			return "(" + strings.Join(p, ", ") + ")"
		}
		tuple := keys
		if k > 1 {
			tuple = "(" + keys + ")"
		}
		out.bound = [2][2]string{{rangeBound(b, false, false), rangeBound(b, false, true)}, {rangeBound(b, true, false), rangeBound(b, true, true)}}
		out.batch = [2][2]string{{rangeBatch(b, head, false, false), rangeBatch(b, head, false, true)}, {rangeBatch(b, head, true, false), rangeBatch(b, head, true, true)}}
		for hi := range 2 {
			out.loop[hi] = loopProcedure(b, out.batch[1][hi], hi == 1)
			// The batch statement's parameters with a cursor: its key
			// range's (up to the limit), then plan, step, range, cursor
			// text and (when hi) hi text.
			out.loopCall[hi] = loopCall(hi == 1, keyRange(b, true, hi == 1).limit+4+hi)
		}
		out.changeFirst = head + fmt.Sprintf("%s <= %s AND (%s)", tuple, params(1), b.Where)
		out.change = head + fmt.Sprintf("%s > %s AND %s <= %s AND (%s)", tuple, params(1), tuple, params(k+1), b.Where)
	}
	for _, s := range []string{out.bound[0][0], out.bound[0][1], out.bound[1][0], out.bound[1][1], out.changeFirst, out.change, out.remaining,
		out.batch[0][0], out.batch[0][1], out.batch[1][0], out.batch[1][1]} {
		if s == "" {
			continue
		}
		n := parseOne(s)
		ok := n != nil && (n.GetSelectStmt() != nil || (n.GetUpdateStmt() != nil && !b.Delete) || (n.GetDeleteStmt() != nil && b.Delete))
		if !ok {
			return nil, fmt.Errorf("its backfill (table, key, set, where) does not make one valid statement: %s", shortSQL(s))
		}
	}
	for _, s := range append(out.loop[:], out.loopCall[:]...) {
		if s == "" {
			continue
		}
		if n := parseOne(s); n == nil || (n.GetCreateFunctionStmt() == nil && n.GetCallStmt() == nil) {
			return nil, fmt.Errorf("its backfill's server-side loop does not make one valid statement: %s", shortSQL(s))
		}
	}
	// The loop's plpgsql body must parse too; if pg_query's plpgsql parser
	// refuses it, the workers send their batches from the client.
	for _, s := range out.loop {
		if s == "" {
			continue
		}
		if _, err := pg_query.ParsePlPgSqlToJSON(s); err != nil {
			out.loop, out.loopErr = [2]string{}, fmt.Errorf("its plpgsql body does not parse: %v", err)
			break
		}
	}
	return out, nil
}

// runBackfill runs a backfill step to the end, from its checkpoint.
func (e *Engine) runBackfill(ctx context.Context, ref stepRef) error {
	s := ref.step
	b := s.Backfill
	sqls, err := backfillSQL(b)
	if err != nil {
		return err
	}
	if _, err := e.markRunning(ctx, ref, 1); err != nil {
		return err
	}
	cps, err := loadCheckpoints(ctx, e.conn, e.planID)
	if err != nil {
		return err
	}
	cp := cps[s.ID]
	if cp == nil {
		cp = &Checkpoint{StepID: s.ID}
	} else {
		e.emit(ApplyEvent{Kind: EventRepair, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy,
			Message: fmt.Sprintf("resuming the backfill after %s (%s changed), from its checkpoint", plural(int64(cp.Batches), "batch"), plural(cp.RowsDone, "row"))})
	}
	var local, session []string // per transaction (ctid walk), per worker session (keyed)
	if len(b.Triggers) > 0 {
		msg := fmt.Sprintf("each batch fires the UPDATE trigger(s) %s of %s (the default; --skip-triggers skips them)", strings.Join(b.Triggers, ", "), s.Table)
		if e.opts.SkipTriggers {
			msg = fmt.Sprintf("batches skip the trigger(s) %s of %s (--skip-triggers: session_replication_role = replica in each batch, which skips every ordinary trigger and foreign-key check in it)", strings.Join(b.Triggers, ", "), s.Table)
			local = append(local, "SET LOCAL session_replication_role = replica")
			session = append(session, "SET session_replication_role = replica")
		}
		e.emit(ApplyEvent{Kind: EventNotice, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy, Message: msg})
	}
	var estimate int64 = -1
	// reltuples is -1 for a table never vacuumed or analyzed: unknown.
	_ = e.conn.QueryRow(ctx, `SELECT CASE WHEN max(c.reltuples) FILTER (WHERE c.relkind <> 'p') < 0 THEN -1
			ELSE coalesce(sum(greatest(c.reltuples, 0)), 0) END::bigint
		FROM pg_catalog.pg_class c WHERE c.oid IN `+relationsOf("$1::regclass"), b.Table).Scan(&estimate)

	if sqls.keyed {
		ranges, err := e.backfillRanges(ctx, ref, cps[s.ID], estimate)
		if err != nil {
			return err
		}
		if len(ranges) > 0 {
			return e.runParallel(ctx, ref, sqls, cps[s.ID], ranges, session, estimate)
		}
	}
	pacer := e.opts.Pacer
	if pacer == nil {
		pacer = FixedPacer{Size: e.opts.BatchSize}
	}
	if ps := e.opts.Pause; ps != nil {
		ps.enter()
		defer ps.leave()
	}
	start := time.Now()
	startRows := cp.RowsDone
	progress := func(size int, pause time.Duration, why string) *BackfillProgress {
		el := time.Since(start)
		p := &BackfillProgress{Table: s.Table, Batches: cp.Batches, Rows: cp.RowsDone, Estimated: estimate, BatchSize: size,
			LastKey: cp.LastKey, Elapsed: el, ETA: -1, Throttled: why, Pause: pause}
		if sec := el.Seconds(); sec > 0 {
			p.RowsPerSec = float64(cp.RowsDone-startRows) / sec
		}
		if estimate >= 0 && p.RowsPerSec > 0 {
			p.ETA = time.Duration(float64(max(0, estimate-cp.RowsDone)) / p.RowsPerSec * float64(time.Second))
		}
		return p
	}
	size, pause := pacer.Next(nil)
	passes := 0
	for {
		size = max(size, 1)
		if pause > 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if ps := e.opts.Pause; ps != nil {
			if _, err := ps.wait(ctx, func() {
				p := progress(size, 0, "paused by the operator")
				p.Paused = true
				e.emit(ApplyEvent{Kind: EventBackfillProgress, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy,
					Message: fmt.Sprintf("paused after %s (%s changed); the table is consistent (every batch is atomic): resume, or interrupt again to stop (apply again resumes from the checkpoint)",
						plural(int64(cp.Batches), "batch"), plural(cp.RowsDone, "row")),
					Backfill: p})
			}); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		batchStart := time.Now()
		var res batchOutcome
		err := e.withRetry(ctx, ref.subject(fmt.Sprintf("batch %d", cp.Batches+1)), func(ctx context.Context, n int) error {
			var err error
			res, err = e.pageBatch(ctx, ref, sqls, cp, size, n, local)
			return err
		})
		if err != nil {
			return err
		}
		if res.finished && passes < maxCtidPasses {
			var left bool
			if err := e.conn.QueryRow(ctx, sqls.remaining).Scan(&left); err != nil {
				return err
			}
			if left {
				passes++
				zero := int64(0)
				cp.NextPage = &zero
				e.emit(ApplyEvent{Kind: EventNotice, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy,
					Message: fmt.Sprintf("rows moved by concurrent updates behind the ctid walk still need work: pass %d over the table (only those rows are touched)", passes+1)})
				continue
			}
		}
		if res.finished {
			break
		}
		cp.LastKey, cp.NextPage = res.lastKey, res.nextPage
		cp.RowsDone += res.rows
		cp.Batches++
		prev := &BatchResult{Size: size, Rows: res.rows, Duration: time.Since(batchStart)}
		size, pause = pacer.Next(prev)
		why := ""
		if t, ok := pacer.(interface{ Throttled() string }); ok {
			why = t.Throttled()
		}
		p := progress(size, pause, why)
		e.emit(ApplyEvent{Kind: EventBackfillProgress, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy,
			Message: progressText(p), Backfill: p})
		if err := e.hook(ctx, "batch-committed", s.ID, cp.Batches); err != nil {
			return err
		}
	}
	done := progress(0, 0, "")
	done.Done = true
	e.emit(ApplyEvent{Kind: EventBackfillProgress, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy,
		Message: fmt.Sprintf("backfill complete: %s changed in %s, %s (%s rows/s)", plural(cp.RowsDone, "row"), plural(int64(cp.Batches), "batch"),
			roundDur(done.Elapsed), thousands(int64(done.RowsPerSec))),
		Backfill: done})
	_, err = e.conn.Exec(ctx, stepDoneSQL, e.planID, s.ID)
	return err
}

// backfillRanges returns the key ranges of a keyed backfill: those of the
// state when it has them (a resumed run walks the same ranges, whatever its
// worker count), else a new split of the keys after the step's checkpoint
// (one range for one worker), saved before any batch runs. None: the ctid
// walk of a table without a key goes on.
func (e *Engine) backfillRanges(ctx context.Context, ref stepRef, cp *Checkpoint, estimate int64) ([]*BackfillRange, error) {
	s := ref.step
	ranges, err := loadRanges(ctx, e.conn, e.planID, s.ID)
	if err != nil || len(ranges) > 0 {
		return ranges, err
	}
	var from []string
	if cp != nil {
		if cp.NextPage != nil {
			return nil, nil
		}
		if len(cp.LastKey) > 0 {
			from = cp.LastKey
		}
	}
	// One worker walks one range: the keys after the checkpoint.
	ranges = []*BackfillRange{{Lo: from}}
	if w := e.opts.BackfillWorkers; w > 1 {
		n := w * rangesPerWorker
		if estimate >= 0 {
			n = min(n, max(w, int(estimate/minRangeRows)))
		}
		split, why, err := e.splitRanges(ctx, s.Backfill, from, n)
		if err != nil {
			return nil, fmt.Errorf("splitting the keys of %s into ranges: %w", s.Table, err)
		}
		if len(split) < 2 {
			e.emit(ApplyEvent{Kind: EventNotice, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy,
				Message: fmt.Sprintf("one backfill worker instead of %d: %s", w, why)})
		} else {
			ranges = split
		}
	}
	tx, err := e.conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO cutover.backfill_checkpoints (plan_id, step_id, last_key) VALUES ($1, $2, $3)
		ON CONFLICT (plan_id, step_id) DO NOTHING`, e.planID, s.ID, from); err != nil {
		return nil, err
	}
	for _, r := range ranges {
		if _, err := tx.Exec(ctx, `INSERT INTO cutover.backfill_ranges (plan_id, step_id, range_no, lo, hi) VALUES ($1, $2, $3, $4, $5)`,
			e.planID, s.ID, r.No, r.Lo, r.Hi); err != nil {
			return nil, err
		}
	}
	return ranges, tx.Commit(ctx)
}

// progressText is the headless line of a batch's progress: rows done of
// the estimate, rate, batch size, ETA, and why it is throttled.
func progressText(p *BackfillProgress) string {
	var b strings.Builder
	if p.Estimated > 0 {
		fmt.Fprintf(&b, "%s of about %s rows (%.0f%%)", thousands(p.Rows), thousands(p.Estimated), min(100, 100*float64(p.Rows)/float64(p.Estimated)))
	} else {
		fmt.Fprintf(&b, "%s changed (table size unknown: not analyzed)", plural(p.Rows, "row"))
	}
	fmt.Fprintf(&b, " in %s, %s rows/s, next batch %s keys", plural(int64(p.Batches), "batch"), thousands(int64(p.RowsPerSec)), thousands(int64(p.BatchSize)))
	if p.Workers > 1 {
		fmt.Fprintf(&b, ", %d workers", p.Workers)
	}
	if p.ETA >= 0 {
		fmt.Fprintf(&b, ", ETA %s", roundDur(p.ETA).Round(time.Second))
	}
	if p.Throttled != "" {
		b.WriteString("; " + p.Throttled)
		if p.Pause > 0 {
			fmt.Fprintf(&b, " (waiting %s)", roundDur(p.Pause))
		}
	}
	return b.String()
}

type batchOutcome struct {
	finished bool
	rows     int64
	lastKey  []string
	nextPage *int64
}

const checkpointSQL = `INSERT INTO cutover.backfill_checkpoints (plan_id, step_id, last_key, next_page, rows_done, batches, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp())
	ON CONFLICT (plan_id, step_id) DO UPDATE SET last_key = excluded.last_key, next_page = excluded.next_page,
		rows_done = excluded.rows_done, batches = excluded.batches, updated_at = excluded.updated_at`

// pageBatch runs one batch of a table without a key: a ctid range of pages.
func (e *Engine) pageBatch(ctx context.Context, ref stepRef, sqls *backfillStatements, cp *Checkpoint, size, attempt int, local []string) (batchOutcome, error) {
	table := ref.step.Backfill.Table
	var pages, perPage int64
	if err := e.conn.QueryRow(ctx, `SELECT coalesce(max(pg_relation_size(c.oid) / current_setting('block_size')::bigint), 0),
			greatest(coalesce(sum(c.reltuples) FILTER (WHERE c.reltuples > 0) / nullif(sum(c.relpages) FILTER (WHERE c.reltuples > 0), 0), 50), 1)::bigint
		FROM pg_catalog.pg_class c WHERE c.oid IN `+relationsOf("$1::regclass"), table).Scan(&pages, &perPage); err != nil {
		return batchOutcome{}, err
	}
	var from int64
	if cp.NextPage != nil {
		from = *cp.NextPage
	}
	if from >= pages {
		return batchOutcome{finished: true}, nil
	}
	to := from + max(1, int64(size)/perPage)
	var rows int64
	lo, hi := fmt.Sprintf("(%d,0)", from), fmt.Sprintf("(%d,0)", to)
	w := txWork{
		stepID: ref.step.ID, action: "batch", attempt: attempt, statementTimeout: BatchStatementTimeout, local: local,
		stmts: []string{sqls.change}, args: [][]any{{lo, hi}}, inTx: "batch-in-tx",
		after: func(_ int, n int64) error { rows = n; return nil },
	}
	w.finish = func(b *pgx.Batch) {
		b.Queue(checkpointSQL, e.planID, ref.step.ID, nil, to, cp.RowsDone+rows, cp.Batches+1)
	}
	if err := e.runInTx(ctx, w); err != nil {
		return batchOutcome{}, err
	}
	return batchOutcome{rows: rows, nextPage: &to, lastKey: []string{hi}}, nil
}

// checkSkipTriggers refuses --skip-triggers up front when the role may not
// set session_replication_role.
func (e *Engine) checkSkipTriggers(ctx context.Context) error {
	if !e.opts.SkipTriggers {
		return nil
	}
	need := false
	for _, r := range e.stepRefs() {
		if b := r.step.Backfill; b != nil && len(b.Triggers) > 0 && e.steps[r.step.ID].Status != "done" {
			need = true
		}
	}
	if !need {
		return nil
	}
	if _, err := e.conn.Exec(ctx, "BEGIN"); err != nil {
		return err
	}
	_, err := e.conn.Exec(ctx, "SET LOCAL session_replication_role = replica")
	e.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	if err != nil {
		if sqlState(err) == "42501" {
			return refused("--skip-triggers needs to SET session_replication_role, which role %s may not (it takes a superuser, or GRANT SET ON PARAMETER session_replication_role TO %s on PostgreSQL 15+); run without --skip-triggers to let the batches fire the triggers", e.user, e.user)
		}
		return err
	}
	return nil
}

// relationsOf is the SQL set of a table's relations holding rows: the table
// itself and, when it is partitioned, every partition.
func relationsOf(table string) string {
	return "(SELECT relid FROM pg_partition_tree(" + table + ") WHERE isleaf UNION ALL SELECT " + table + ")"
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func strs(vs []any) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprint(v)
	}
	return out
}
