package db_test

// Crash safety: the engine is killed (its connections closed abruptly, as
// when the process dies) at every point where it could die between two
// actions, and a new engine resumes. Each resumed run must end in exactly
// the state of an undisturbed run, with no work done twice or skipped: the
// audit trail shows every statement of a transactional step executed once,
// the backfill's key ranges tile the key space, each walked to its end, and
// an interrupted concurrent index build is found INVALID, dropped
// concurrently and built again.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/plans"
)

// The rename of an indexed column: transactional steps, a backfill in
// several batches, a concurrent index build, an application release and a
// removal (with its usage check).
const (
	killSetup = `CREATE INDEX idx_customer_email ON customer (email)`
	killInput = `ALTER TABLE customer RENAME COLUMN email TO email_address`
)

type hookPoint struct {
	point, step string
	n           int
}

func (h hookPoint) String() string { return fmt.Sprintf("%s/%s/%d", h.point, h.step, h.n) }

func killOptions(p *plans.Plan, t *testing.T) db.ApplyOptions {
	opts := confirmAll(p, newEvents(t))
	opts.BatchSize = 100 // 599 rows: 6 batches
	// One worker: the kill points must come in the same order in every
	// run (parallel workers are killed and resumed in backfill_test.go).
	opts.BackfillWorkers = 1
	// Batches sent from the client: one hook point each (the server-side
	// loop's calls end on a time budget, so their points would vary).
	return db.WithClientBatches(opts)
}

func TestKillAtEveryBoundaryThenResume(t *testing.T) {
	refURL := dbtest.Pagila(t)
	ref := dbtest.Connect(t, refURL)
	exec(t, ref, killSetup)
	withStatements(t, ref)
	p := planFor(t, ref, killInput)

	// An undisturbed run lists the points and gives the end state.
	var points []hookPoint
	record := db.WithHook(killOptions(p, t), func(ctx context.Context, point, step string, n int) error {
		if point != "statement-running" {
			points = append(points, hookPoint{point, step, n})
		}
		return nil
	})
	applyToEnd(t, refURL, p, record)
	want := snapshot(t, ref, nil)
	if len(points) < 20 {
		t.Fatalf("only %d hook points: %v", len(points), points)
	}
	t.Logf("%d kill points: %v", len(points), points)

	for i, at := range points {
		t.Run(fmt.Sprintf("%02d_%s", i, strings.ReplaceAll(at.String(), "/", "_")), func(t *testing.T) {
			t.Parallel()
			url := dbtest.Pagila(t)
			conn := dbtest.Connect(t, url)
			exec(t, conn, killSetup)
			withStatements(t, conn)
			seen := 0
			kill := db.WithHook(killOptions(p, t), func(ctx context.Context, point, step string, n int) error {
				if point == "statement-running" {
					return nil
				}
				seen++
				if seen-1 == i {
					if got := (hookPoint{point, step, n}); got != at {
						return fmt.Errorf("point %d is %s, want %s", i, got, at)
					}
					return db.ErrKillNow
				}
				return nil
			})
			if _, err := applyOnce(t, url, p, kill); !errors.Is(err, db.ErrKilled) {
				t.Fatalf("the killed run returned %v, want it killed at %s", err, at)
			}
			applyToEnd(t, url, p, killOptions(p, t))
			compareSnapshots(t, want, snapshot(t, conn, nil))
			checkNothingTwice(t, conn, p, 599)
		})
	}
}

// checkNothingTwice checks the audit trail of a finished run: each
// statement of a transactional step committed once; a concurrent index
// built once; the backfill's key ranges tile the key space, each walked to
// its end, and its batches changed as many rows as the table has.
func checkNothingTwice(t *testing.T, conn *pgx.Conn, p *plans.Plan, rows int64) {
	t.Helper()
	all := audit(t, conn, db.PlanID(p))
	for _, ref := range p.Steps() {
		s := ref.Step
		var ok []auditRow
		for _, a := range all {
			if a.step == s.ID && a.outcome == "ok" && (a.action == "apply" || a.action == "batch") {
				ok = append(ok, a)
			}
		}
		switch {
		case s.Backfill != nil:
			checkRangesCovered(t, conn, db.PlanID(p), s.ID, rows)
		default:
			if n := len(splitStatements(t, s.SQL)); len(ok) != n {
				t.Errorf("step %s: %d statements executed ok, want %d (once each)", s.ID, len(ok), n)
			}
		}
	}
}

// checkRangesCovered checks that a finished backfill's key ranges
// (cutover.backfill_ranges) tile its key space and that each was walked to
// its end: every range starts where the previous one ended (the first at
// the table's start, or after a single walk's checkpoint from state
// version 1), the last has no end, each is done with its checkpoint at its
// upper key, and the batches changed rows rows in all (the parent's count,
// from such a walk, plus the ranges'). Committed batches leave no audit
// row; that each row was changed once is what the trigger-counting tests
// check.
func checkRangesCovered(t *testing.T, conn *pgx.Conn, planID, stepID string, rows int64) {
	t.Helper()
	var changed int64
	if err := conn.QueryRow(context.Background(), `SELECT rows_done FROM cutover.backfill_checkpoints WHERE plan_id = $1 AND step_id = $2`,
		planID, stepID).Scan(&changed); err != nil {
		t.Fatalf("%s: the backfill's checkpoint: %v", stepID, err)
	}
	rs, err := conn.Query(context.Background(), `SELECT coalesce(lo, '{}'), coalesce(hi, '{}'), coalesce(last_key, '{}'), rows_done, done
		FROM cutover.backfill_ranges WHERE plan_id = $1 AND step_id = $2 ORDER BY range_no`, planID, stepID)
	if err != nil {
		t.Fatal(err)
	}
	var from []string
	n := 0
	for rs.Next() {
		var lo, hi, last []string
		var done bool
		var rowsDone int64
		if err := rs.Scan(&lo, &hi, &last, &rowsDone, &done); err != nil {
			t.Fatal(err)
		}
		if !done {
			t.Errorf("%s: range (%v, %v] is not done", stepID, lo, hi)
		}
		if n > 0 && !slices.Equal(lo, from) {
			t.Errorf("%s: range (%v, %v] does not start where the previous one (%v) ended", stepID, lo, hi, from)
		}
		if len(hi) > 0 && !slices.Equal(last, hi) {
			t.Errorf("%s: range (%v, %v] stopped at %v", stepID, lo, hi, last)
		}
		changed += rowsDone
		from = hi
		n++
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("%s: no key range in cutover.backfill_ranges", stepID)
	} else if len(from) != 0 {
		t.Errorf("%s: the last range ends at %v, not at the table's end", stepID, from)
	}
	if changed != rows {
		t.Errorf("%s: batches changed %d rows in all, want %d (each row once)", stepID, changed, rows)
	}
}

// A kill in the middle of a concurrent index build, while the build waits
// for an old snapshot (the index exists, INVALID): the resumed run finds
// the INVALID index, drops it concurrently, builds it again.
func TestKillDuringConcurrentIndexBuild(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	exec(t, conn, killSetup)
	withStatements(t, conn)
	p := planFor(t, conn, killInput)

	holder := dbtest.Connect(t, url)
	exec(t, holder, "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM film")
	watch := dbtest.Connect(t, url)
	opts := killOptions(p, t)
	opts.LockTimeout = time.Minute // the build waits for the snapshot instead of timing out
	var invalidSeen bool
	kill := db.WithHook(opts, func(ctx context.Context, point, step string, n int) error {
		if point != "statement-running" || step != "M1-index-email-address" {
			return nil
		}
		for ctx.Err() == nil {
			var waiting bool
			var valid *bool
			err := watch.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'cutover' AND wait_event_type = 'Lock'),
				(SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('public.idx_customer_email_cutover_email_address'))`).Scan(&waiting, &valid)
			if err == nil && waiting && valid != nil && !*valid {
				invalidSeen = true
				return db.ErrKillNow
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	})
	if _, err := applyOnce(t, url, p, kill); !errors.Is(err, db.ErrKilled) || !invalidSeen {
		t.Fatalf("the killed run returned %v (INVALID index seen: %v), want it killed mid-build", err, invalidSeen)
	}
	// The killed session notices its client is gone within a second
	// (client_connection_check_interval) and aborts the build, leaving the
	// index INVALID; only then does the old snapshot go away.
	waitGone(t, watch)
	exec(t, holder, "COMMIT")
	ev := newEvents(t)
	opts = killOptions(p, t)
	opts.OnEvent = ev.on
	applyToEnd(t, url, p, opts)

	if !ev.said(db.EventRepair, "INVALID") {
		t.Error("the resumed run did not report the INVALID index it dropped")
	}
	var actions []string
	for _, a := range audit(t, conn, db.PlanID(p)) {
		if a.step == "M1-index-email-address" {
			actions = append(actions, a.action+":"+a.outcome)
		}
	}
	if want := []string{"apply:interrupted", "repair:ok", "apply:ok"}; !slices.Equal(actions, want) {
		t.Errorf("audit of the index build: %v, want %v (interrupted, dropped, built)", actions, want)
	}
	checkNothingTwice(t, conn, p, 599)
}

// waitGone waits until no session of cutover is left.
func waitGone(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'cutover%' AND datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the killed cutover sessions are still there after 15s")
}

// A concurrent build that fails on lock_timeout (an old snapshot is held)
// leaves an INVALID index: each retry drops it concurrently and builds it
// again, until the build succeeds.
func TestFailedIndexBuildIsDroppedAndRebuilt(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	withStatements(t, conn)
	p := planFor(t, conn, "CREATE INDEX idx_customer_email ON customer (email)")
	holder := dbtest.Connect(t, url)
	exec(t, holder, "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM film")
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		time.Sleep(1200 * time.Millisecond)
		exec(t, holder, "COMMIT")
	}()
	// holder is closed by a cleanup registered before this one: wait for
	// the goroutine using it first.
	t.Cleanup(func() { <-committed })
	ev := newEvents(t)
	opts := confirmAll(p, newEvents(t))
	opts.OnEvent = ev.on
	applyToEnd(t, url, p, opts)
	var valid bool
	if err := conn.QueryRow(context.Background(), `SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.idx_customer_email'::regclass`).Scan(&valid); err != nil || !valid {
		t.Fatalf("index valid %v (%v)", valid, err)
	}
	retries, repairs := len(ev.kind(db.EventStepRetry)), len(ev.kind(db.EventRepair))
	if retries == 0 || repairs != retries {
		t.Errorf("%d retries and %d INVALID-index repairs, want as many of each, at least one", retries, repairs)
	}
}
