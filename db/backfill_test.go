package db_test

// The backfill engine (issue 5) on a real server: exactly-once batches
// across a kill (counted by a trigger that records every row update), a
// composite key, triggers fired or skipped, the adaptive pacer fed by the
// monitor under a concurrent workload, and a manual pause.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/db/monitor"
	"github.com/cutover/cutover/plans"
)

// hitCounter adds to table t an AFTER UPDATE trigger "count_hits" that
// records the key of every row updated in table hits (rolled back with
// its batch).
func hitCounter(t *testing.T, conn *pgx.Conn, table, key string) {
	t.Helper()
	exec(t, conn, fmt.Sprintf(`CREATE TABLE hits (k text NOT NULL);
		CREATE FUNCTION count_hit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO hits VALUES (%s); RETURN NEW; END $$;
		CREATE TRIGGER count_hits AFTER UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION count_hit()`, key, table))
}

// hitsPerRow returns how many rows were hit zero times (of n), and more
// than once.
func hitsPerRow(t *testing.T, conn *pgx.Conn, table, key string) (missed, twice int) {
	t.Helper()
	err := conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT
		(SELECT count(*) FROM %[1]s r WHERE NOT EXISTS (SELECT FROM hits h WHERE h.k = (%[2]s))),
		(SELECT count(*) FROM (SELECT k FROM hits GROUP BY k HAVING count(*) > 1) d)`,
		table, strings.ReplaceAll(key, "NEW.", "r."))).Scan(&missed, &twice)
	if err != nil {
		t.Fatal(err)
	}
	return missed, twice
}

// killInBatch returns options that kill the engine inside the n-th batch's
// transaction, before it commits (the batches are sent from the client,
// one per hook point; TestParallelBackfillLoopKilledMidCall kills the
// server-side loop).
func killInBatch(opts db.ApplyOptions, n int) db.ApplyOptions {
	var seen atomic.Int32
	return db.WithHook(db.WithClientBatches(opts), func(ctx context.Context, point, step string, _ int) error {
		if point == "batch-in-tx" && int(seen.Add(1)) == n {
			return db.ErrKillNow
		}
		return nil
	})
}

// Killed inside a batch's transaction, then resumed: every row is
// updated exactly once (the trigger fires, so each update is counted, and
// the killed batch's count rolls back with it).
func TestBackfillKilledThenResumedUpdatesEachRowOnce(t *testing.T) {
	url := dbtest.NewDatabase(t)
	conn := dbtest.Connect(t, url)
	exec(t, conn, `CREATE TABLE items (id bigint PRIMARY KEY, amount text NOT NULL);
		INSERT INTO items SELECT g, (g * 7)::text FROM generate_series(1, 12000) g; ANALYZE items`)
	hitCounter(t, conn, "items", "NEW.id::text")
	p := planFor(t, conn, "ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer")
	ev := newEvents(t)
	opts := confirmAll(p, ev)
	opts.SkipTriggers = false
	opts.BatchSize = 1000
	opts.BackfillWorkers = 1 // the single keyset walk (see TestParallelBackfill* for workers)
	if _, err := applyOnce(t, url, p, killInBatch(opts, 4)); !errors.Is(err, db.ErrKilled) {
		t.Fatalf("got %v, want killed", err)
	}
	var done int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM hits`).Scan(&done); err != nil {
		t.Fatal(err)
	}
	if done != 3000 {
		t.Fatalf("%d rows updated when killed in batch 4, want the 3 committed batches' 3000", done)
	}
	applyToEnd(t, url, p, opts)
	checkItemsOnce(t, conn, db.PlanID(p), theBackfill(t, p).ID, 12000)
	if !ev.said(db.EventNotice, "fires the UPDATE trigger(s) count_hits") {
		t.Error("no notice said the batches fire count_hits")
	}
}

// A composite primary key is walked with row-value comparisons; batch
// bounds that fall inside a run of equal leading columns lose nothing.
func TestBackfillCompositeKey(t *testing.T) {
	url := dbtest.NewDatabase(t)
	conn := dbtest.Connect(t, url)
	exec(t, conn, `CREATE TABLE lines (order_id int, line int, qty text NOT NULL, PRIMARY KEY (order_id, line));
		INSERT INTO lines SELECT o, l, (o + l)::text FROM generate_series(1, 60) o, generate_series(1, 150) l; ANALYZE lines`)
	hitCounter(t, conn, "lines", "NEW.order_id || '/' || NEW.line")
	p := planFor(t, conn, "ALTER TABLE lines ALTER COLUMN qty TYPE integer USING qty::integer")
	var key []string
	for _, r := range p.Steps() {
		if r.Step.Backfill != nil {
			key = r.Step.Backfill.Key
		}
	}
	if len(key) != 2 {
		t.Fatalf("backfill key %v, want (order_id, line)", key)
	}
	opts := confirmAll(p, newEvents(t))
	opts.SkipTriggers = false
	opts.BatchSize = 333 // bounds fall mid-order
	if _, err := applyOnce(t, url, p, killInBatch(opts, 7)); !errors.Is(err, db.ErrKilled) {
		t.Fatalf("got %v, want killed", err)
	}
	applyToEnd(t, url, p, opts)
	if missed, twice := hitsPerRow(t, conn, "lines", "NEW.order_id || '/' || NEW.line"); missed != 0 || twice != 0 {
		t.Errorf("%d rows never updated, %d updated more than once", missed, twice)
	}
	var wrong, n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE qty <> order_id + line), count(*) FROM lines`).Scan(&wrong, &n); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 || n != 9000 {
		t.Errorf("%d of %d rows wrong", wrong, n)
	}
}

// --skip-triggers: the batches do not fire the table's triggers (the data
// is still right); a role allowed to SET session_replication_role (GRANT
// SET ON PARAMETER, PostgreSQL 15+) may, without being superuser.
func TestBackfillSkipTriggers(t *testing.T) {
	url := dbtest.NewDatabase(t)
	conn := dbtest.Connect(t, url)
	var version int
	if err := conn.QueryRow(context.Background(), `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < 150000 {
		t.Skip("GRANT SET ON PARAMETER needs PostgreSQL 15")
	}
	role := fmt.Sprintf("skipper_%d", time.Now().UnixNano()%1_000_000)
	exec(t, conn, fmt.Sprintf(`CREATE TABLE items (id bigint PRIMARY KEY, amount text NOT NULL);
		INSERT INTO items SELECT g, g::text FROM generate_series(1, 3000) g; ANALYZE items;
		CREATE ROLE %[1]s LOGIN; GRANT ALL ON SCHEMA public TO %[1]s; ALTER TABLE items OWNER TO %[1]s;
		GRANT CREATE ON DATABASE %[2]s TO %[1]s; GRANT SET ON PARAMETER session_replication_role TO %[1]s`,
		role, pgx.Identifier{conn.Config().Database}.Sanitize()))
	t.Cleanup(func() {
		c := dbtest.Connect(t, url)
		c.Exec(context.Background(), fmt.Sprintf(`DROP OWNED BY %[1]s; REVOKE SET ON PARAMETER session_replication_role FROM %[1]s`, role))
	})
	hitCounter(t, conn, "items", "NEW.id::text")
	exec(t, conn, fmt.Sprintf(`ALTER TABLE hits OWNER TO %[1]s; ALTER FUNCTION count_hit() OWNER TO %[1]s`, role))
	p := planFor(t, conn, "ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer")
	roleURL := urlAs(t, url, role)
	opts := confirmAll(p, newEvents(t))
	opts.SkipTriggers = true
	opts.NoUsageCheck = true
	opts.BatchSize = 500
	applyToEnd(t, roleURL, p, opts)
	var hits, wrong int
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM hits), (SELECT count(*) FROM items WHERE amount <> id)`).Scan(&hits, &wrong); err != nil {
		t.Fatal(err)
	}
	if hits != 0 || wrong != 0 {
		t.Errorf("with --skip-triggers: %d trigger firings (want 0), %d wrong rows", hits, wrong)
	}
}

// urlAs returns url with role as its user.
func urlAs(t *testing.T, url, role string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Replace(url, "://"+cfg.User+"@", "://"+role+"@", 1)
	if out == url {
		t.Fatalf("cannot make a URL for role %s from %s", role, url)
	}
	return out
}

// A role that may not create temporary objects cannot have the
// server-side loop: its workers send their batches from the client, say
// so, and the backfill completes all the same.
func TestParallelBackfillWithoutTempPrivilege(t *testing.T) {
	url := dbtest.NewDatabase(t)
	conn := dbtest.Connect(t, url)
	role := fmt.Sprintf("notemp_%d", time.Now().UnixNano()%1_000_000)
	dbName := pgx.Identifier{conn.Config().Database}.Sanitize()
	exec(t, conn, fmt.Sprintf(`CREATE TABLE items (id bigint PRIMARY KEY, amount text NOT NULL);
		INSERT INTO items SELECT g, (g * 3)::text FROM generate_series(1, 6000) g; ANALYZE items;
		CREATE ROLE %[1]s LOGIN; GRANT ALL ON SCHEMA public TO %[1]s; ALTER TABLE items OWNER TO %[1]s;
		GRANT CREATE ON DATABASE %[2]s TO %[1]s; REVOKE TEMPORARY ON DATABASE %[2]s FROM PUBLIC`, role, dbName))
	t.Cleanup(func() {
		c := dbtest.Connect(t, url)
		c.Exec(context.Background(), fmt.Sprintf(`DROP OWNED BY %[1]s CASCADE; DROP ROLE %[1]s`, role))
	})
	p := planFor(t, conn, "ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer")
	roleURL := urlAs(t, url, role)
	ev := newEvents(t)
	opts := confirmAll(p, ev)
	opts.NoUsageCheck = true
	opts.BatchSize = 500
	opts.BackfillWorkers = 2
	applyToEnd(t, roleURL, p, opts)
	if !ev.said(db.EventNotice, "batches are sent one by one from cutover: the session cannot create its server-side loop in pg_temp (permission denied") {
		t.Error("no notice said the batches are sent from the client, and why")
	}
	var wrong int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM items WHERE amount <> id * 3`).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d rows with a wrong amount", wrong)
	}
}

// The adaptive pacer, fed by the monitor, under a concurrent workload that
// updates the column being changed: the final column equals the
// expression for every row, progress reports rate, ETA and sizes that
// adapt.
func TestAdaptiveBackfillUnderWorkload(t *testing.T) {
	url := dbtest.NewDatabase(t)
	conn := dbtest.Connect(t, url)
	const rows = 30000
	exec(t, conn, fmt.Sprintf(`CREATE TABLE items (id bigint PRIMARY KEY, amount text NOT NULL);
		INSERT INTO items SELECT g, g::text FROM generate_series(1, %d) g; ANALYZE items`, rows))
	p := planFor(t, conn, "ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed, stop, err := monitor.StartSignalFeed(ctx, url, []string{"items"}, monitor.Options{Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ev := newEvents(t)
	opts := confirmAll(p, ev)
	cfg := db.DefaultThrottle()
	cfg.TargetBatch = 20 * time.Millisecond
	cfg.InitialBatch = 200
	opts.Pacer = db.NewAdaptivePacer(cfg, feed.Signals)

	// Workers write amount as text, then (after the swap) as integer: the
	// literal works for both.
	var wg sync.WaitGroup
	var writes atomic.Int64
	var werr atomic.Value
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			c, err := pgx.Connect(ctx, url)
			if err != nil {
				werr.Store(err)
				return
			}
			defer c.Close(context.Background())
			for i := 0; ctx.Err() == nil; i++ {
				id := (i*7919+g*31)%rows + 1
				if _, err := c.Exec(ctx, fmt.Sprintf(`UPDATE items SET amount = '%d' WHERE id = %d`, id*3, id), pgx.QueryExecModeSimpleProtocol); err != nil && ctx.Err() == nil {
					werr.Store(err)
					return
				}
				writes.Add(1)
			}
		})
	}
	applyToEnd(t, url, p, opts)
	cancel()
	wg.Wait()
	if err, _ := werr.Load().(error); err != nil {
		t.Fatalf("workload: %v", err)
	}
	var wrong int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM items WHERE amount <> id AND amount <> id * 3`).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d rows whose amount is neither the original nor the workload's value", wrong)
	}
	sizes := map[int]bool{}
	var last *db.BackfillProgress
	for _, e := range ev.kind(db.EventBackfillProgress) {
		if b := e.Backfill; b != nil && !b.Done {
			sizes[b.BatchSize] = true
			last = b
		}
	}
	if len(sizes) < 2 || last == nil || last.RowsPerSec <= 0 || last.ETA < 0 || last.Estimated != rows {
		t.Errorf("progress: sizes %v, last %+v: want adapting sizes, a rate, an ETA, the estimate", sizes, last)
	}
	if !ev.said(db.EventNotice, fmt.Sprintf("%d workers over", db.DefaultBackfillWorkers)) {
		t.Errorf("the backfill did not run with the default %d workers", db.DefaultBackfillWorkers)
	}
	t.Logf("%d workload writes during the run, %d batch sizes", writes.Load(), len(sizes))
}

// A manual pause stops the backfill between batches (nothing commits
// while paused) and resume finishes it.
func TestBackfillPauseResume(t *testing.T) {
	url := dbtest.NewDatabase(t)
	conn := dbtest.Connect(t, url)
	exec(t, conn, `CREATE TABLE items (id bigint PRIMARY KEY, amount text NOT NULL);
		INSERT INTO items SELECT g, g::text FROM generate_series(1, 5000) g; ANALYZE items`)
	p := planFor(t, conn, "ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer")
	ps := db.NewPauseSwitch()
	var batches atomic.Int32
	pausedAt := make(chan int32, 1)
	ev := newEvents(t)
	opts := confirmAll(p, ev)
	opts.BatchSize = 500
	opts.Pause = ps
	opts.OnEvent = func(e db.ApplyEvent) {
		ev.on(e)
		if e.Backfill != nil && e.Backfill.Paused {
			pausedAt <- batches.Load()
		}
	}
	// One hook point per batch: the batches are sent from the client (the
	// server-side loop's calls are paused between in the same way).
	opts = db.WithHook(db.WithClientBatches(opts), func(ctx context.Context, point, step string, n int) error {
		if point == "batch-committed" {
			if batches.Add(1) == 2 {
				if !ps.InBackfill() {
					t.Error("InBackfill is false during a backfill")
				}
				ps.Pause()
			}
		}
		return nil
	})
	done := make(chan error, 1)
	go func() {
		e := openEngine(t, url, p, opts)
		defer e.Close()
		_, err := e.Apply(context.Background())
		done <- err
	}()
	var at int32
	select {
	case at = <-pausedAt:
	case err := <-done:
		t.Fatalf("the run ended without pausing: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no pause")
	}
	time.Sleep(300 * time.Millisecond)
	// Workers' batches in flight when the pause was asked commit; the
	// pause is reported once none is in flight, and nothing commits then.
	if n := batches.Load(); n != at || at < 2 {
		t.Errorf("paused after batch %d, %d batches committed while paused", at, n-at)
	}
	ps.Resume()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := batches.Load(); n < 10 {
		t.Errorf("%d batches in all, want the whole table (10)", n)
	}
	if ps.InBackfill() {
		t.Error("InBackfill after the backfill")
	}
}

// A ctid walk misses a row that a concurrent UPDATE moves to a page the
// walk has passed; the final check finds it and walks again.
func TestCtidWalkRechecksMovedRows(t *testing.T) {
	url := dbtest.NewDatabase(t)
	conn := dbtest.Connect(t, url)
	// Free space on the first pages (deleted rows, vacuumed) is where a
	// non-HOT update puts the new row version.
	exec(t, conn, `CREATE TABLE nokey (a integer, b text) WITH (autovacuum_enabled = off);
		INSERT INTO nokey SELECT g, 'v' || g FROM generate_series(1, 20000) g;
		CREATE INDEX nokey_b ON nokey (b);
		DELETE FROM nokey WHERE a <= 2000`)
	exec(t, conn, `VACUUM nokey`)
	exec(t, conn, `ANALYZE nokey`)
	p := planFor(t, conn, "UPDATE nokey SET b = 'x' WHERE a % 2 = 0")
	ev := newEvents(t)
	opts := confirmAll(p, ev)
	opts.BatchSize = 4000
	moved := false
	opts = db.WithHook(opts, func(ctx context.Context, point, step string, n int) error {
		if point == "batch-committed" && n == 2 && !moved {
			moved = true
			// Rows in the middle (full pages), not yet walked, still needing work: the
			// update changes an indexed column (no HOT), so their new
			// versions go to the free space on the first pages.
			c, err := pgx.Connect(ctx, url)
			if err != nil {
				return err
			}
			defer c.Close(ctx)
			// Room on the first pages (which the walk has passed), then
			// the update: the new versions go there.
			for _, sql := range []string{`DELETE FROM nokey WHERE ctid < '(3,0)'`, `VACUUM nokey`,
				`UPDATE nokey SET b = 'moved' || a WHERE a BETWEEN 15000 AND 15100 AND a % 2 = 0`} {
				if _, err := c.Exec(ctx, sql); err != nil {
					return err
				}
			}
			return nil
		}
		return nil
	})
	applyToEnd(t, url, p, opts)
	var wrong int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM nokey WHERE (a % 2 = 0) <> (b = 'x')`).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d rows wrong after the walk", wrong)
	}
	if !ev.said(db.EventNotice, "pass 2 over the table") {
		t.Error("rows moved behind the walk, but no second pass was announced")
	}
	// A table without a key is walked by one session, whatever
	// --backfill-workers says (the default here): no key ranges.
	var ranges int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM cutover.backfill_ranges`).Scan(&ranges); err != nil {
		t.Fatal(err)
	}
	for _, e := range ev.kind(db.EventNotice) {
		if strings.Contains(e.Message, "workers over") {
			t.Errorf("the ctid walk ran with workers: %s", e.Message)
		}
	}
	if ranges != 0 {
		t.Errorf("%d key ranges for a table without a key", ranges)
	}
}

// theBackfill returns the plan's backfill step.
func theBackfill(t *testing.T, p *plans.Plan) *plans.Step {
	t.Helper()
	for _, r := range p.Steps() {
		if r.Step.Backfill != nil {
			return r.Step
		}
	}
	t.Fatal("the plan has no backfill")
	return nil
}

// checkPartialCount checks, after a killed backfill's sessions are gone,
// that some but not all rows were updated (hits) and that the key ranges'
// checkpoints count exactly those; it returns the count.
func checkPartialCount(t *testing.T, conn *pgx.Conn, planID, stepID string, rows int64) int64 {
	t.Helper()
	var hits, inRanges int64
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM hits),
		(SELECT coalesce(sum(rows_done), 0) FROM cutover.backfill_ranges WHERE plan_id = $1 AND step_id = $2)`,
		planID, stepID).Scan(&hits, &inRanges); err != nil {
		t.Fatal(err)
	}
	if hits == 0 || hits >= rows || hits != inRanges {
		t.Fatalf("killed: %d rows updated, the ranges' checkpoints say %d: want the same partial count", hits, inRanges)
	}
	return hits
}

// checkItemsOnce checks the end of a backfill of items (amount = id * 7):
// every row updated exactly once (hits), every amount right, and the key
// ranges covered with their checkpoints.
func checkItemsOnce(t *testing.T, conn *pgx.Conn, planID, stepID string, rows int64) {
	t.Helper()
	if missed, twice := hitsPerRow(t, conn, "items", "NEW.id::text"); missed != 0 || twice != 0 {
		t.Errorf("%d rows never updated, %d updated more than once", missed, twice)
	}
	var wrong int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM items WHERE amount <> id * 7`).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d rows with a wrong amount", wrong)
	}
	checkRangesCovered(t, conn, planID, stepID, rows)
}

// Parallel workers killed mid-batch (one of them inside its batch's
// transaction, the others wherever they are), then resumed with another
// worker count: every row is updated exactly once (counted by a trigger),
// the ranges tile the key space and each was walked to its end, and the
// resumed run's totals count every row.
func TestParallelBackfillKilledThenResumed(t *testing.T) {
	url := dbtest.NewDatabase(t)
	conn := dbtest.Connect(t, url)
	// Sparse keys with a hole: ranges of unequal density.
	exec(t, conn, `CREATE TABLE items (id bigint PRIMARY KEY, amount text NOT NULL);
		INSERT INTO items SELECT g * 3, (g * 21)::text FROM generate_series(1, 20000) g WHERE g NOT BETWEEN 5000 AND 9000; ANALYZE items`)
	var rows int64
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM items`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	hitCounter(t, conn, "items", "NEW.id::text")
	p := planFor(t, conn, "ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer")
	step := theBackfill(t, p)
	ev := newEvents(t)
	opts := confirmAll(p, ev)
	opts.SkipTriggers = false
	opts.BatchSize = 700
	opts.BackfillWorkers = 3
	if _, err := applyOnce(t, url, p, killInBatch(opts, 8)); !errors.Is(err, db.ErrKilled) {
		t.Fatalf("got %v, want killed", err)
	}
	// The other workers' batches in flight commit or roll back on the
	// server when their sessions end; then the rows updated (hits) and the
	// ranges' checkpoints must agree, in one snapshot.
	waitGone(t, conn)
	checkPartialCount(t, conn, db.PlanID(p), step.ID, rows)
	var nranges int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM cutover.backfill_ranges`).Scan(&nranges); err != nil {
		t.Fatal(err)
	}
	// 3 workers x 4 ranges, less the bounds that fall into the hole.
	if nranges < 8 {
		t.Fatalf("%d key ranges for 3 workers, want about 12", nranges)
	}
	if !ev.said(db.EventNotice, "3 workers over") {
		t.Error("no notice said 3 workers run the backfill")
	}
	opts.BackfillWorkers = 2 // a resumed run may use another count
	ev2 := newEvents(t)
	opts.OnEvent = ev2.on
	applyToEnd(t, url, p, opts)
	checkItemsOnce(t, conn, db.PlanID(p), step.ID, rows)
	// The resumed run's totals start from the checkpoints (the killed
	// run's batches) and end at every row.
	var final *db.BackfillProgress
	for _, e := range ev2.all {
		if e.Backfill != nil && e.Backfill.Done {
			final = e.Backfill
		}
	}
	if final == nil || final.Rows != rows {
		t.Errorf("the resumed run's final progress is %+v, want %d rows in all", final, rows)
	}
	if !ev2.said(db.EventRepair, "resuming the backfill") {
		t.Error("the second run did not say it resumes the backfill")
	}
}

// itemsTypeChange creates items (rows rows, amount = id * 7 as text, a
// trigger counting each row's updates in hits) and plans its type change.
func itemsTypeChange(t *testing.T, rows int) (string, *pgx.Conn, *plans.Plan) {
	t.Helper()
	url := dbtest.NewDatabase(t)
	conn := dbtest.Connect(t, url)
	exec(t, conn, fmt.Sprintf(`CREATE TABLE items (id bigint PRIMARY KEY, amount text NOT NULL);
		INSERT INTO items SELECT g, (g * 7)::text FROM generate_series(1, %d) g; ANALYZE items`, rows))
	hitCounter(t, conn, "items", "NEW.id::text")
	return url, conn, planFor(t, conn, "ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer")
}

// The server-side loop killed in the middle of its calls (every session's
// socket closes while the workers' backends are running batches): the
// batches they committed stay, each with its range's checkpoint, the ones
// in flight roll back, and the resumed run updates every other row once.
func TestParallelBackfillLoopKilledMidCall(t *testing.T) {
	const rows = 60000
	url, conn, p := itemsTypeChange(t, rows)
	step := theBackfill(t, p)
	ev := newEvents(t)
	opts := confirmAll(p, ev)
	opts.SkipTriggers = false
	opts.BatchSize = 100
	opts.BackfillWorkers = 3
	opts.BatchGap = 3 * time.Millisecond // a call runs many short batches
	var eng *db.Engine
	var calls atomic.Int32
	kill := db.WithHook(opts, func(ctx context.Context, point, step string, n int) error {
		if point == "loop-call" && calls.Add(1) == 4 {
			go func() {
				time.Sleep(30 * time.Millisecond)
				db.KillEngine(eng)
			}()
		}
		return nil
	})
	eng = openEngine(t, url, p, kill)
	_, err := eng.Apply(context.Background())
	eng.Close()
	if !errors.Is(err, db.ErrKilled) {
		t.Fatalf("got %v, want killed", err)
	}
	if calls.Load() < 4 {
		t.Fatalf("%d calls of the server-side loop, want the batches run by it", calls.Load())
	}
	if ev.said(db.EventNotice, "sent one by one") {
		t.Fatal("the workers ran their batches from the client")
	}
	// The backends notice the closed sockets and stop; then the rows
	// updated (hits) and the ranges' checkpoints must agree.
	waitGone(t, conn)
	hits := checkPartialCount(t, conn, db.PlanID(p), step.ID, rows)
	t.Logf("killed after %d calls: %d of %d rows", calls.Load(), hits, rows)
	applyToEnd(t, url, p, opts)
	checkItemsOnce(t, conn, db.PlanID(p), step.ID, rows)
}

// pausingPacer asks for a fixed size and a pause after every batch (what
// the throttle does while the application's latency is over budget).
type pausingPacer struct {
	size  int
	pause time.Duration
}

func (p pausingPacer) Next(*db.BatchResult) (int, time.Duration) { return p.size, p.pause }

// The throttle's pause follows every batch, not every call of the loop:
// 100 batches with a 20 ms pause after each take at least 2 s, although a
// call runs for 200 ms.
func TestParallelBackfillLoopPausesAfterEachBatch(t *testing.T) {
	const rows = 10000
	url, conn, p := itemsTypeChange(t, rows)
	opts := confirmAll(p, newEvents(t))
	opts.SkipTriggers = false
	opts.BackfillWorkers = 1
	opts.Pacer = pausingPacer{size: 100, pause: 20 * time.Millisecond}
	var first time.Time // the first call of the loop (after the range's first batch)
	timed := db.WithHook(opts, func(ctx context.Context, point, step string, n int) error {
		if point == "loop-call" && n == 1 {
			first = time.Now()
		}
		return nil
	})
	applyToEnd(t, url, p, timed)
	if first.IsZero() {
		t.Fatal("the backfill did not run the server-side loop")
	}
	if took := time.Since(first); took < 1800*time.Millisecond {
		t.Errorf("100 batches with a 20ms pause after each took %s, want at least about 2s", took)
	}
	checkItemsOnce(t, conn, db.PlanID(p), theBackfill(t, p).ID, rows)
}

// A batch of the server-side loop that waits for a row lock longer than
// the lock timeout fails its call; the batches the call committed before
// it are read back from the range's checkpoint, the retry starts right
// after them, and once the lock is gone every row is updated exactly once.
func TestParallelBackfillLoopRetriesALockedRow(t *testing.T) {
	const rows = 20000
	url, conn, p := itemsTypeChange(t, rows)
	blocker := dbtest.Connect(t, url)
	ev := newEvents(t)
	opts := confirmAll(p, ev)
	opts.SkipTriggers = false
	opts.BatchSize = 200
	opts.BackfillWorkers = 2
	opts.BatchGap = time.Millisecond
	opts.MaxRetryTime = time.Minute
	// The lock is released once a batch has been retried on it (or after
	// 20s, and then the test fails).
	retried := make(chan struct{})
	var retriedOnce sync.Once
	opts.OnEvent = func(e db.ApplyEvent) {
		ev.on(e)
		if e.Kind == db.EventStepRetry && strings.Contains(e.Message, "batch after key") {
			retriedOnce.Do(func() { close(retried) })
		}
	}
	var once sync.Once
	var committer sync.WaitGroup // the blocker's COMMIT, before the test ends
	locked := db.WithHook(opts, func(ctx context.Context, point, step string, n int) error {
		if point != "loop-call" {
			return nil
		}
		// Once the backfill runs, lock a row far ahead of the workers
		// (the expand steps before would wait for the lock instead).
		var err error
		once.Do(func() {
			_, err = blocker.Exec(ctx, `BEGIN; SELECT * FROM items WHERE id = 15000 FOR UPDATE`)
			committer.Add(1)
			go func() {
				defer committer.Done()
				select {
				case <-retried:
					time.Sleep(300 * time.Millisecond) // a second attempt waits too
				case <-time.After(20 * time.Second):
				}
				blocker.Exec(context.Background(), `COMMIT`)
			}()
		})
		return err
	})
	applyToEnd(t, url, p, locked)
	committer.Wait()
	// Batches of 200 keys from the range's start (12500): the one holding
	// row 15000 starts after 14900, where the failed call's committed
	// batches, read back, put the retry.
	if !ev.said(db.EventStepRetry, "batch after key 14900 (range 6) attempt 1/30: lock not granted") {
		t.Error("no retry of the batch holding the locked row, after the batches its call committed")
	}
	checkItemsOnce(t, conn, db.PlanID(p), theBackfill(t, p).ID, rows)
}

// A composite key is split by its leading column; a range bound falls
// inside a run of equal leading values. A text leading key is split by its
// histogram.
func TestParallelBackfillCompositeAndTextKeys(t *testing.T) {
	for _, tc := range []struct {
		name, setup, change, hit, check string
		k                               int
		rows                            int64
	}{
		{"composite", `CREATE TABLE lines (order_id int, line int, qty text NOT NULL, PRIMARY KEY (order_id, line));
			INSERT INTO lines SELECT o, l, (o + l)::text FROM generate_series(1, 60) o, generate_series(1, 150) l; ANALYZE lines`,
			"ALTER TABLE lines ALTER COLUMN qty TYPE integer USING qty::integer", "NEW.order_id || '/' || NEW.line",
			`SELECT count(*) FROM lines WHERE qty <> order_id + line`, 2, 9000},
		{"text", `CREATE TABLE codes (code text PRIMARY KEY, n text NOT NULL);
			INSERT INTO codes SELECT md5(g::text), g::text FROM generate_series(1, 8000) g; ANALYZE codes`,
			"ALTER TABLE codes ALTER COLUMN n TYPE integer USING n::integer", "NEW.code",
			`SELECT count(*) FROM codes WHERE md5(n::text) <> code`, 1, 8000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := dbtest.NewDatabase(t)
			conn := dbtest.Connect(t, url)
			exec(t, conn, tc.setup)
			table := strings.Fields(tc.change)[2]
			hitCounter(t, conn, table, tc.hit)
			p := planFor(t, conn, tc.change)
			step := theBackfill(t, p)
			if len(step.Backfill.Key) != tc.k {
				t.Fatalf("backfill key %v, want %d columns", step.Backfill.Key, tc.k)
			}
			opts := confirmAll(p, newEvents(t))
			opts.SkipTriggers = false
			opts.BatchSize = 333
			opts.BackfillWorkers = 3
			if _, err := applyOnce(t, url, p, killInBatch(opts, 6)); !errors.Is(err, db.ErrKilled) {
				t.Fatalf("got %v, want killed", err)
			}
			applyToEnd(t, url, p, opts)
			if missed, twice := hitsPerRow(t, conn, table, tc.hit); missed != 0 || twice != 0 {
				t.Errorf("%d rows never updated, %d updated more than once", missed, twice)
			}
			var wrong, nranges int
			if err := conn.QueryRow(context.Background(), tc.check).Scan(&wrong); err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM cutover.backfill_ranges`).Scan(&nranges); err != nil {
				t.Fatal(err)
			}
			// 3 workers x 4 ranges, at most one per 1,000 rows.
			if wrong != 0 || nranges < 7 {
				t.Errorf("%d rows wrong, %d key ranges (want 0 wrong, 8 or 9 ranges)", wrong, nranges)
			}
			checkRangesCovered(t, conn, db.PlanID(p), step.ID, tc.rows)
		})
	}
}

// A batch that fails on a data exception (a value the cast rejects) stops
// the run with one line naming the table and the batch's key range and
// saying what to do; once the row is fixed, apply again resumes from the
// checkpoints and updates every row once.
func TestBackfillDataErrorNamesTheRange(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers_%d", workers), func(t *testing.T) {
			url := dbtest.NewDatabase(t)
			conn := dbtest.Connect(t, url)
			exec(t, conn, `CREATE TABLE items (id bigint PRIMARY KEY, amount text NOT NULL, n integer);
				INSERT INTO items SELECT g, g::text FROM generate_series(1, 9000) g; ANALYZE items;
				UPDATE items SET amount = 'seven' WHERE id = 7000`)
			hitCounter(t, conn, "items", "NEW.id::text")
			// A plain UPDATE is planned as a batched backfill whose SET
			// casts: the cast fails on row 7000.
			p := planFor(t, conn, "UPDATE items SET n = amount::integer")
			step := theBackfill(t, p)
			opts := confirmAll(p, newEvents(t))
			opts.SkipTriggers = false
			opts.BatchSize = 500
			opts.BackfillWorkers = workers
			_, err := applyOnce(t, url, p, opts)
			var ae *db.ApplyError
			if !errors.As(err, &ae) || ae.Kind != db.Failed {
				t.Fatalf("got %v, want a failed apply", err)
			}
			msg := err.Error()
			for _, want := range []string{step.ID, "public.items", `invalid input syntax for type integer: "seven"`, "22P02", "fix the rows", "apply again", "resumes from the checkpoint"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			// The range named holds the bad row.
			_, rest, ok := strings.Cut(msg, "key in (")
			lo, rest2, ok2 := strings.Cut(rest, ", ")
			hi, _, ok3 := strings.Cut(rest2, "]")
			if !ok || !ok2 || !ok3 {
				t.Fatalf("no key range in %q", msg)
			}
			var inside bool
			if err := conn.QueryRow(context.Background(), `SELECT ($1 = 'the start' OR 7000 > $1::bigint) AND 7000 <= $2::bigint`, lo, hi).Scan(&inside); err != nil {
				t.Fatalf("range (%s, %s]: %v", lo, hi, err)
			}
			if !inside {
				t.Errorf("the error names keys (%s, %s], which do not hold row 7000", lo, hi)
			}
			exec(t, conn, `UPDATE items SET amount = '7000' WHERE id = 7000`)
			exec(t, conn, `TRUNCATE hits`)
			var before int64
			if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM items WHERE n IS NOT NULL`).Scan(&before); err != nil {
				t.Fatal(err)
			}
			if before == 0 {
				t.Error("no committed batch before the failure")
			}
			applyToEnd(t, url, p, opts)
			var wrong, again int64
			if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM items WHERE n IS DISTINCT FROM id),
				(SELECT count(*) FROM hits)`).Scan(&wrong, &again); err != nil {
				t.Fatal(err)
			}
			if wrong != 0 || again != 9000-before {
				t.Errorf("after the fix: %d rows wrong, %d rows updated by the resumed run (want 0 and %d: only the rows not done)", wrong, again, 9000-before)
			}
		})
	}
}

// A state written by the previous version (schema version 1: no
// backfill_ranges, a backfill's progress in its one checkpoint row) still
// loads: the schema is upgraded in place and the backfill resumes after
// that checkpoint, now with several workers, updating each row once.
func TestStateVersion1BackfillResumes(t *testing.T) {
	url := dbtest.NewDatabase(t)
	conn := dbtest.Connect(t, url)
	exec(t, conn, `CREATE TABLE items (id bigint PRIMARY KEY, amount text NOT NULL);
		INSERT INTO items SELECT g, (g * 7)::text FROM generate_series(1, 12000) g; ANALYZE items`)
	hitCounter(t, conn, "items", "NEW.id::text")
	p := planFor(t, conn, "ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer")
	step := theBackfill(t, p)
	opts := confirmAll(p, newEvents(t))
	opts.SkipTriggers = false
	opts.BatchSize = 1000
	opts.BackfillWorkers = 1
	if _, err := applyOnce(t, url, p, killInBatch(opts, 4)); !errors.Is(err, db.ErrKilled) {
		t.Fatalf("got %v, want killed", err)
	}
	// What version 1 would have left: the last key in the step's
	// checkpoint row, no ranges table, schema_version 1.
	exec(t, conn, fmt.Sprintf(`UPDATE cutover.backfill_checkpoints c SET last_key = r.last_key FROM cutover.backfill_ranges r
			WHERE r.plan_id = c.plan_id AND r.step_id = c.step_id AND c.step_id = '%s';
		DROP TABLE cutover.backfill_ranges;
		UPDATE cutover.meta SET value = '1' WHERE key = 'schema_version'`, step.ID))
	var last []string
	if err := conn.QueryRow(context.Background(), `SELECT last_key FROM cutover.backfill_checkpoints WHERE step_id = $1`, step.ID).Scan(&last); err != nil || len(last) != 1 || last[0] != "3000" {
		t.Fatalf("version-1 checkpoint %v (%v), want {3000}", last, err)
	}
	opts.BackfillWorkers = 3
	applyToEnd(t, url, p, opts)
	if missed, twice := hitsPerRow(t, conn, "items", "NEW.id::text"); missed != 0 || twice != 0 {
		t.Errorf("%d rows never updated, %d updated more than once", missed, twice)
	}
	var version string
	var ranges int
	var lo []string
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT value FROM cutover.meta WHERE key = 'schema_version'),
		(SELECT count(*) FROM cutover.backfill_ranges), (SELECT lo FROM cutover.backfill_ranges WHERE range_no = 0)`).Scan(&version, &ranges, &lo); err != nil {
		t.Fatal(err)
	}
	if version != fmt.Sprint(db.StateSchemaVersion) || ranges < 2 || !slices.Equal(lo, []string{"3000"}) {
		t.Errorf("after the upgrade: schema_version %s, %d ranges, the first from %v; want %d, several, from 3000", version, ranges, lo, db.StateSchemaVersion)
	}
	var wrong int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM items WHERE amount <> id * 7`).Scan(&wrong); err != nil || wrong != 0 {
		t.Errorf("%d rows wrong (%v)", wrong, err)
	}
}
