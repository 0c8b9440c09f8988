package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
)

// straggler keeps running a query on its own connection until stopped,
// like an instance of the old release that was not redeployed; stopping
// closes the connection (which also flushes its table statistics).
func straggler(t *testing.T, url, query string) (stop func()) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close(context.Background())
		for {
			select {
			case <-quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := conn.Exec(context.Background(), query, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Errorf("straggler: %v", err)
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

// After the release that stops using a column, an instance still reads it:
// the usage check reports the statement with "last seen", waits, and the
// drop runs only once the column has been unused for the whole window.
func TestUsageCheckWaitsUntilTheColumnIsUnused(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	withStatements(t, conn)
	p := planFor(t, conn, "ALTER TABLE staff DROP COLUMN picture")
	ev := newEvents(t)
	opts := db.ApplyOptions{Observe: 2 * time.Second, ConfirmIrreversible: []string{"public.staff"}, OnEvent: ev.on}
	if out, err := applyOnce(t, url, p, opts); err != nil || out.Status != "waiting" {
		t.Fatalf("first apply: %v %v, want waiting for the release", out, err)
	}
	stop := straggler(t, url, "SELECT picture FROM staff WHERE staff_id = 1")
	stopped := make(chan time.Time, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		stop()
		stopped <- time.Now()
	}()
	if out, err := applyOnce(t, url, p, opts); err != nil || out.Status != "done" {
		t.Fatalf("second apply: %v %v, want done", out, err)
	}
	stoppedAt := <-stopped
	usage := ev.kind(db.EventUsageCheck)
	var used *db.UsageReport
	for _, u := range usage {
		if !u.Usage.Clean && len(u.Usage.Statements) > 0 {
			used = u.Usage
		}
	}
	if used == nil {
		t.Fatalf("no usage check saw the straggler: %d checks", len(usage))
	}
	if q := used.Statements[0].Query; !strings.Contains(q, "picture") || used.LastSeen == nil {
		t.Errorf("usage report %+v: want the straggler's statement and a last-seen time", used)
	}
	final := usage[len(usage)-1]
	if !final.Usage.Clean || final.Time.Before(stoppedAt.Add(2*time.Second-100*time.Millisecond)) {
		t.Errorf("the drop went on at %s, the straggler stopped at %s: want a clean window of 2s first", final.Time.Format("15:04:05.000"), stoppedAt.Format("15:04:05.000"))
	}
}

// With --observe 0 the check looks once: a column still used stops the
// run (exit 1 in the CLI) before the drop.
func TestUsageCheckOnceRefusesAUsedColumn(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	withStatements(t, conn)
	p := planFor(t, conn, "ALTER TABLE staff DROP COLUMN picture")
	opts := db.ApplyOptions{Observe: 0, ConfirmIrreversible: []string{"public.staff"}, OnEvent: newEvents(t).on}
	// The release is confirmed (the usage baseline), then an old instance
	// still reads the column.
	confirm := opts
	confirm.ConfirmApps, confirm.Through = true, "migrate"
	if _, err := applyOnce(t, url, p, confirm); err != nil {
		t.Fatal(err)
	}
	stop := straggler(t, url, "SELECT picture FROM staff WHERE staff_id = 1")
	time.Sleep(300 * time.Millisecond)
	_, err := applyOnce(t, url, p, opts)
	stop()
	var ae *db.ApplyError
	if !errors.As(err, &ae) || ae.Kind != db.Failed || !strings.Contains(err.Error(), "still used") || !strings.Contains(err.Error(), "SELECT picture FROM staff") {
		t.Fatalf("got %v, want the run stopped because the column is still used", err)
	}
	if st := stepStatus(t, conn, db.PlanID(p), "C1-drop-column-picture"); st != "pending" {
		t.Errorf("the drop is %s, want pending", st)
	}
}

// A table about to be dropped: its scan counters count as use too, and the
// table is renamed aside only once nothing reads it.
func TestUsageCheckOfATableCountsScans(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	withStatements(t, conn)
	exec(t, conn, `CREATE TABLE old_notes (id integer PRIMARY KEY, note text); INSERT INTO old_notes SELECT g, 'n' || g FROM generate_series(1, 100) g`)
	// Table statistics reach pg_stat_user_tables late (up to 10 s for an
	// idle session): flush this session's now, so the setup does not
	// count as use after the baseline.
	exec(t, conn, `SELECT pg_stat_force_next_flush()`)
	exec(t, conn, `SELECT 1`)
	p := planFor(t, conn, "DROP TABLE old_notes")
	ev := newEvents(t)
	opts := db.ApplyOptions{Observe: time.Second, ConfirmIrreversible: []string{"old_notes_cutover_dropped"}, OnEvent: ev.on}
	if out, err := applyOnce(t, url, p, opts); err != nil || out.Status != "waiting" {
		t.Fatalf("first apply: %v %v", out, err)
	}
	// A function reading the table: pg_stat_statements sees only the
	// call, the table's counters see the scan.
	exec(t, conn, `CREATE FUNCTION count_notes() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM public.old_notes'`)
	stop := straggler(t, url, "SELECT count_notes()")
	go func() { time.Sleep(1500 * time.Millisecond); stop() }()
	if out, err := applyOnce(t, url, p, opts); err != nil || out.Status != "waiting" {
		t.Fatalf("second apply: %v %v, want the rename aside done and a wait for the cooling-off release", out, err)
	}
	sawScans := false
	for _, u := range ev.kind(db.EventUsageCheck) {
		sawScans = sawScans || (!u.Usage.Clean && u.Usage.Scans > 0)
	}
	if !sawScans {
		t.Error("no usage check reported the table's scans")
	}
	if last := ev.kind(db.EventUsageCheck); last[len(last)-1].Usage.Window < 11*time.Second {
		t.Errorf("window %s: a table's window must cover the statistics delay", last[len(last)-1].Usage.Window)
	}
	opts.Observe = 0 // nothing used it since the rename: one look
	if out, err := applyOnce(t, url, p, opts); err != nil || out.Status != "done" {
		t.Fatalf("third apply: %v %v, want done", out, err)
	}
	var gone bool
	if err := conn.QueryRow(context.Background(), `SELECT to_regclass('public.old_notes_cutover_dropped') IS NULL`).Scan(&gone); err != nil || !gone {
		t.Errorf("the table is still there (%v)", err)
	}
}

// Without pg_stat_statements the check cannot be made: refused with what
// to do, unless --no-usage-check.
func TestUsageCheckNeedsPgStatStatements(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	p := planFor(t, conn, "ALTER TABLE staff DROP COLUMN picture")
	opts := db.ApplyOptions{ConfirmApps: true, ConfirmIrreversible: []string{"public.staff"}, OnEvent: newEvents(t).on}
	_, err := applyOnce(t, url, p, opts)
	var ae *db.ApplyError
	if !errors.As(err, &ae) || ae.Kind != db.Refused || !strings.Contains(err.Error(), "pg_stat_statements") || !strings.Contains(err.Error(), "--no-usage-check") {
		t.Fatalf("got %v, want a refusal naming pg_stat_statements and --no-usage-check", err)
	}
	opts.NoUsageCheck = true
	if out, err := applyOnce(t, url, p, opts); err != nil || out.Status != "done" {
		t.Fatalf("with --no-usage-check: %v %v", out, err)
	}
}

// A table without a key is walked in ctid (page) ranges; killed mid-way,
// the resumed run goes on from its checkpoint and every row is updated once.
func TestBackfillWithoutKeyUsesCtidRanges(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	exec(t, conn, `CREATE TABLE nokey (a integer, b text); INSERT INTO nokey SELECT g, 'v' || g FROM generate_series(1, 20000) g; ANALYZE nokey`)
	p := planFor(t, conn, "UPDATE nokey SET b = 'x' WHERE a % 2 = 0")
	opts := confirmAll(p, newEvents(t))
	opts.BatchSize = 2000
	batches := 0
	kill := db.WithHook(opts, func(ctx context.Context, point, step string, n int) error {
		if point == "batch-committed" {
			if batches++; batches == 3 {
				return db.ErrKillNow
			}
		}
		return nil
	})
	if _, err := applyOnce(t, url, p, kill); !errors.Is(err, db.ErrKilled) {
		t.Fatalf("got %v, want killed", err)
	}
	applyToEnd(t, url, p, opts)
	var wrong, updated int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE (a % 2 = 0) <> (b = 'x')), count(*) FILTER (WHERE b = 'x') FROM nokey`).Scan(&wrong, &updated); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 || updated != 10000 {
		t.Errorf("%d rows wrong, %d updated, want 0 and 10000", wrong, updated)
	}
	var changed int64
	var last string
	n := 0
	for _, a := range audit(t, conn, db.PlanID(p)) {
		if a.action != "batch" || a.outcome != "ok" {
			continue
		}
		n++
		if len(a.args) != 2 || (last == "" && a.args[0] != "(0,0)") || (last != "" && a.args[0] != last) {
			t.Errorf("batch %d covers [%v): want it to start where the previous one ended (%s)", n, a.args, last)
		}
		last = a.args[1]
		changed += *a.rows
	}
	if changed != 10000 || n < 4 {
		t.Errorf("%d batches changed %d rows, want several batches changing 10000 rows once each", n, changed)
	}
}
