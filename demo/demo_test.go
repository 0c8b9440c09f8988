package demo_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/demo"
	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/plans"
)

func pagila(t *testing.T) (schema, data string) {
	t.Helper()
	dir, err := dbtest.PagilaDir()
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.ReadFile(filepath.Join(dir, "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := os.ReadFile(filepath.Join(dir, "data.sql"))
	if err != nil {
		t.Fatal(err)
	}
	return string(s), string(d)
}

// waitFor polls cond every 100 ms until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDemo starts the demo database with a small table and checks it end to
// end: the sample and the big table are there, the workload makes progress
// and survives a rename of the column it writes, and Stop leaves no
// directory and no server process behind.
func TestDemo(t *testing.T) {
	schema, data := pagila(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	const rows = 20_000
	d, err := demo.Start(ctx, demo.Options{Schema: schema, Data: data, Rows: rows, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			d.Stop()
		}
	}()
	t.Logf("progress:\n%s", progress.String())
	for _, want := range []string{"starting a throwaway PostgreSQL server", "loading the pagila sample", "generating 20000 rows in public.customer_event"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
	if u, err := url.Parse(d.URL); err != nil || u.Hostname() != "127.0.0.1" {
		t.Errorf("URL %s is not on loopback (%v)", d.URL, err)
	} else if _, has := u.User.Password(); has {
		t.Errorf("URL carries a password")
	}

	conn, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n, customers, maxID int64
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT customer_id), max(event_id) FROM public.customer_event`).Scan(&n, &customers, &maxID); err != nil {
		t.Fatal(err)
	}
	if n < rows || maxID < rows {
		t.Errorf("customer_event has %d rows (max id %d), want at least %d", n, maxID, rows)
	}
	if customers != 599 {
		t.Errorf("customer_event references %d customers, want all 599 of pagila", customers)
	}
	var rentals int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM public.rental`).Scan(&rentals); err != nil {
		t.Fatal(err)
	}
	if rentals != 16044 {
		t.Errorf("rental has %d rows, want pagila's 16044", rentals)
	}
	var estimate float64
	if err := conn.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = 'public.customer_event'::regclass`).Scan(&estimate); err != nil {
		t.Fatal(err)
	}
	if estimate < rows*0.9 {
		t.Errorf("customer_event is not analyzed: reltuples %v", estimate)
	}

	// The workload makes progress, and its sessions are visible under
	// their application_name.
	w := d.Workload
	start := w.Stats().Transactions
	waitFor(t, "50 workload transactions", 20*time.Second, func() bool { return w.Stats().Transactions >= start+50 })
	var sessions int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND usename = $2`, demo.WorkloadApplication, demo.WorkloadRole).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions < 5 {
		t.Errorf("%d workload sessions in pg_stat_activity, want at least 5 (4 steady, 1 holding transactions open)", sessions)
	}
	var inserted int64
	waitFor(t, "a row inserted by the workload", 20*time.Second, func() bool {
		return conn.QueryRow(ctx, `SELECT count(*) FROM public.customer_event WHERE event_id > $1`, rows).Scan(&inserted) == nil && inserted > 0
	})
	if st := w.Stats(); st.Errors != 0 || st.Column != demo.EventColumn {
		t.Fatalf("workload before the change: %+v", st)
	}

	// A naive rename: the workload's next statements fail on the old
	// name, its watcher redeploys it on the new name, and it goes on.
	if _, err := conn.Exec(ctx, `ALTER TABLE public.customer_event RENAME COLUMN kind TO event_type`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the workload to write event_type", 10*time.Second, func() bool { return w.Stats().Column == demo.EventNewColumn })
	after := w.Stats()
	waitFor(t, "workload transactions after the rename", 20*time.Second, func() bool { return w.Stats().Transactions >= after.Transactions+50 })
	if st := w.Stats(); st.Errors != after.Errors {
		t.Errorf("the workload still fails after switching: %+v", st)
	}
	conn.Close(ctx)

	dir := d.Cluster.Dir
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still exists after Stop (stat: %v)", dir, err)
	}
	if out, _ := exec.Command("pgrep", "-f", dir).Output(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("processes still running on %s after Stop: %s", dir, out)
	}
	// Stop twice is fine.
	if err := d.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartRejectsBadRows(t *testing.T) {
	_, err := demo.Start(context.Background(), demo.Options{Schema: "x", Data: "y", Rows: 10})
	if err == nil || !strings.Contains(err.Error(), "--rows 10 is out of range") {
		t.Fatalf("Start with 10 rows: %v", err)
	}
}

// TestWorkloadFollowsTheRelease applies the demo's change with the real
// engine while the workload runs: the workload writes the old name until
// the application release is confirmed, then the new one, and none of its
// statements fails through the whole change, the contract step included.
func TestWorkloadFollowsTheRelease(t *testing.T) {
	schema, data := pagila(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := demo.Start(ctx, demo.Options{Schema: schema, Data: data, Rows: 20_000})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	conn, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	s, err := db.Introspect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	p, err := planner.Plan(demo.Change, planner.Options{Schema: s})
	if err != nil {
		t.Fatal(err)
	}
	w := d.Workload
	waitFor(t, "workload transactions", 20*time.Second, func() bool { return w.Stats().Transactions >= 50 })

	// Expand and migrate: the application still writes kind.
	run := func(opts db.ApplyOptions) {
		t.Helper()
		opts.Observe = time.Second
		// The usage check waits for as long as the workload uses kind:
		// a workload that never follows the release fails here.
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		e, err := db.Open(actx, d.URL, p, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		if _, err := e.Apply(actx); err != nil {
			t.Fatalf("%v (workload: %+v)", err, w.Stats())
		}
	}
	run(db.ApplyOptions{Through: plans.Migrate})
	if st := w.Stats(); st.Column != demo.EventColumn {
		t.Fatalf("the workload switched before the release: %+v", st)
	}
	// The rest, confirming the release: the workload follows it.
	run(db.ApplyOptions{ConfirmApps: true})
	if st := w.Stats(); st.Column != demo.EventNewColumn {
		t.Fatalf("the workload did not follow the release: %+v", st)
	}
	after := w.Stats().Transactions
	waitFor(t, "workload transactions after the change", 20*time.Second, func() bool { return w.Stats().Transactions >= after+50 })
	if st := w.Stats(); st.Errors != 0 {
		t.Errorf("the workload failed %d times during the change; last: %s", st.Errors, st.LastError)
	}
	var hasKind bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'public.customer_event'::regclass AND attname = 'kind' AND NOT attisdropped)`).Scan(&hasKind); err != nil {
		t.Fatal(err)
	}
	if hasKind {
		t.Error("customer_event still has kind after the change")
	}
}
