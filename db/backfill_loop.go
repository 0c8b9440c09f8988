package db

// The keyed backfill's server-side loop. A worker does not send its
// batches one by one: it calls a procedure of its own session
// (pg_temp.cutover_batches, created when the worker connects) that runs
// the same batch statement (rangeBatch: bound, range UPDATE, checkpoint)
// in a loop, committing each batch and sleeping a short gap after it, for
// about loopBudget (it returns rather than start a gap that would end past
// it: the client then waits the gap out), and returns what it did. The
// client decides between two calls (the throttle's batch size, pauses, the
// worker limit, the operator's pause), exactly as it did between two
// batches.
//
// Why: a batch costs no round trip (over a network, most of a small
// batch's time), and cutover's process wakes up a few times a second per
// worker instead of once per batch (on a CPU-saturated server every
// wakeup takes a core from a backend). The gap after each batch leaves
// the application's queries a free core between two batches. On the
// benchmark's saturated 2-core server, where CPU is what limits, the
// loop measured on the same time / workload p99 trade-off as batches sent
// from the client (docs/benchmarks.md): the work itself is the cost there.
//
// Each batch is still its own transaction with its checkpoint in it: a
// call that fails (a lock timeout, a value that does not convert, a
// killed session) leaves every batch it committed, checkpoints included,
// and the engine reads the range's checkpoint back before it retries or
// reports. A session that cannot create the procedure (no TEMP privilege,
// no plpgsql) runs the batches from the client instead.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/plans"
)

// loopBudget is how long one call of the server-side loop runs batches
// before it returns to the client (which then applies the throttle's
// decision, the operator's pause, or stops): short enough that a pause
// takes effect within a fraction of a second, long enough that the
// client's wakeups are rare.
const loopBudget = 200 * time.Millisecond

// DefaultBatchGap is the default of --batch-gap: the idle time a backfill
// worker leaves after each batch, so that the application's queries get
// a core between two batches.
const DefaultBatchGap = time.Millisecond

// loopProcedure returns CREATE PROCEDURE for the server-side loop over a
// range with (hi) or without an upper key. Its parameters are the batch
// statement's, in the same order (rangeBatch with a cursor: the cursor's
// key columns, the range's hi, the limit, plan id, step id, range number,
// the cursor as text[] and the hi as text[]), so the statement is used as
// it is, its $n naming the procedure's parameters; then the call's budget
// and the gap (milliseconds); then what it returns: the cursor as text[]
// (an INOUT parameter, above), the rows changed, the batches committed,
// whether the range is done, and the time spent in batches
// (milliseconds). The key columns' types are the table's (%TYPE).
func loopProcedure(b *plans.Backfill, batch string, hi bool) string {
	var params, advance []string
	param := func(name, typ string) { params = append(params, name+" "+typ) }
	for i, c := range b.Key {
		param(fmt.Sprintf("cutover_key%d", i+1), b.Table+"."+c+"%TYPE")
		advance = append(advance, fmt.Sprintf("      cutover_key%d := cutover_upper[%d];\n", i+1, i+1))
	}
	if hi {
		for i, c := range b.Key {
			param(fmt.Sprintf("cutover_hi%d", i+1), b.Table+"."+c+"%TYPE")
		}
	}
	param("cutover_limit", "int")
	param("cutover_plan", "text")
	param("cutover_step", "text")
	param("cutover_range", "int")
	params = append(params, "INOUT cutover_cursor text[]")
	if hi {
		param("cutover_hi", "text[]")
	}
	param("cutover_budget", "float8")
	param("cutover_gap", "float8")
	params = append(params, "INOUT cutover_rows bigint", "INOUT cutover_batches int", "INOUT cutover_done boolean", "INOUT cutover_busy float8")

	// The parameters are named (cutover_...) for the body's own use; the
	// batch statement names them by number, and where a name is also a
	// column of the table, the column wins (use_column).
	body := "\n#variable_conflict use_column\nDECLARE\n" +
		"  cutover_upper text[];\n  cutover_n bigint;\n  cutover_last boolean;\n  cutover_written bigint;\n" +
		"  cutover_start timestamptz := clock_timestamp();\n  cutover_t timestamptz;\n" +
		"BEGIN\n" +
		"  cutover_rows := 0; cutover_batches := 0; cutover_done := false; cutover_busy := 0;\n" +
		"  LOOP\n" +
		"    cutover_t := clock_timestamp();\n" +
		"    " + batch + "\n      INTO cutover_upper, cutover_n, cutover_last, cutover_written;\n" +
		"    IF cutover_written IS DISTINCT FROM 1 THEN\n" +
		"      RAISE EXCEPTION 'the checkpoint of this backfill range is missing from cutover.backfill_ranges';\n" +
		"    END IF;\n" +
		"    COMMIT;\n" +
		"    cutover_busy := cutover_busy + 1000 * extract(epoch FROM clock_timestamp() - cutover_t);\n" +
		"    cutover_rows := cutover_rows + cutover_n;\n" +
		"    cutover_batches := cutover_batches + 1;\n" +
		"    IF cutover_upper IS NOT NULL THEN\n" +
		"      cutover_cursor := cutover_upper;\n" + strings.Join(advance, "") +
		"    END IF;\n" +
		"    IF cutover_last THEN\n      cutover_done := true;\n      EXIT;\n    END IF;\n" +
		"    EXIT WHEN 1000 * extract(epoch FROM clock_timestamp() - cutover_start) + cutover_gap >= cutover_budget;\n" +
		"    IF cutover_gap > 0 THEN\n      PERFORM pg_sleep(cutover_gap / 1000);\n    END IF;\n" +
		"  END LOOP;\n" +
		"END\n"
	return fmt.Sprintf("CREATE OR REPLACE PROCEDURE pg_temp.%s(%s) LANGUAGE plpgsql AS %s",
		loopName(hi), strings.Join(params, ", "), dollarQuote(body))
}

// loopName is the name of the loop procedure in the worker's pg_temp.
func loopName(hi bool) string {
	if hi {
		return "cutover_batches_to_hi"
	}
	return "cutover_batches"
}

// loopCall returns the CALL of the loop procedure: the batch statement's
// parameters (nargs of them), then the budget and the gap, then NULL for
// the four outputs. It returns the cursor, rows, batches, done, busy.
func loopCall(hi bool, nargs int) string {
	var p []string
	for i := 1; i <= nargs+2; i++ {
		p = append(p, fmt.Sprintf("$%d", i))
	}
	return fmt.Sprintf("CALL pg_temp.%s(%s, NULL, NULL, NULL, NULL)", loopName(hi), strings.Join(p, ", "))
}

// dollarQuote quotes a function body with a dollar tag it does not
// contain.
func dollarQuote(body string) string {
	tag := "$cutover_loop$"
	for i := 1; strings.Contains(body, tag); i++ {
		tag = fmt.Sprintf("$cutover_loop%d$", i)
	}
	return tag + body + tag
}

// createLoop creates the loop procedures in the worker's session; an
// error means the session runs its batches from the client.
func createLoop(ctx context.Context, conn *pgx.Conn, sqls *backfillStatements) error {
	if sqls.loopErr != nil {
		return sqls.loopErr
	}
	for _, sql := range sqls.loop {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return err
		}
	}
	return nil
}

// loopStep runs one call of the server-side loop on a range that has a
// cursor, idling gap after each batch. When the call fails, the batches it
// committed stay: the range's checkpoint is read back and accounted for
// (rg and the totals) before the error is returned, so that a retry
// starts after them and a data error names the batch that failed.
func (p *parallelBackfill) loopStep(ctx context.Context, w *backfillWorker, rg *BackfillRange, size, attempt int, cursor, hi []string, gap time.Duration) (rangeOutcome, error) {
	e, s := p.e, p.ref.step
	keyArgs := append(append(anys(cursor), anys(hi)...), size)
	args := append(slices.Clone(keyArgs), e.planID, s.ID, rg.No, cursor)
	if hi != nil {
		args = append(args, hi)
	}
	args = append(args, float64(loopBudget)/float64(time.Millisecond), float64(gap)/float64(time.Millisecond))
	var res rangeOutcome
	if err := e.hook(ctx, "loop-call", s.ID, int(p.calls.Add(1))); err != nil {
		return res, err
	}
	var busy float64
	start := time.Now()
	err := w.conn.QueryRow(ctx, p.sqls.loopCall[b2i(hi != nil)], args...).Scan(&res.upper, &res.rows, &res.batches, &res.done, &busy)
	if err == nil {
		res.busy = time.Duration(busy * float64(time.Millisecond))
		if res.upper == nil {
			res.upper = cursor
		}
		return res, nil
	}
	if e.killed() {
		return res, err
	}
	// Account for the batches the call committed before it failed.
	var last []string
	var rows int64
	var batches int
	var done bool
	sctx, cancel := stateCtx(ctx)
	rerr := w.conn.QueryRow(sctx, `SELECT last_key, rows_done, batches, done FROM cutover.backfill_ranges WHERE plan_id = $1 AND step_id = $2 AND range_no = $3`,
		e.planID, s.ID, rg.No).Scan(&last, &rows, &batches, &done)
	cancel()
	if rerr != nil {
		return res, fmt.Errorf("%w (and reading range %d's checkpoint back: %v)", err, rg.No+1, rerr)
	}
	if batches > rg.Batches {
		p.account(rows-rg.RowsDone, int64(batches-rg.Batches))
		rg.LastKey, rg.RowsDone, rg.Batches, rg.Done = last, rows, batches, done
		cursor, _ = rangeCursor(rg)
		keyArgs = append(append(anys(cursor), anys(hi)...), size)
	}
	return res, p.failed(ctx, w.conn, p.sqls.batch[1][b2i(hi != nil)], keyArgs, cursor, hi, start, attempt, err)
}

// account adds batches committed outside a successful call (those of a
// loop call that failed) to the totals.
func (p *parallelBackfill) account(rows, batches int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rows += rows
	p.batches += batches
}
