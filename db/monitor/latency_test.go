package monitor

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
)

const workloadSchema = `CREATE EXTENSION pg_stat_statements;
CREATE TABLE orders (id int PRIMARY KEY, qty int NOT NULL, note text);
INSERT INTO orders SELECT g, 0, 'n' FROM generate_series(1, 5000) g;
ANALYZE orders;`

// workload runs goroutines that read and update orders until the test
// ends; it fails the test if any query fails for another reason than the
// end of the test.
func workload(t *testing.T, dbURL string, workers int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		conn := appConn(t, dbURL, "shop")
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for ctx.Err() == nil {
				id := 1 + rng.IntN(5000)
				var err error
				if rng.IntN(2) == 0 {
					_, err = conn.Exec(ctx, "UPDATE orders SET qty = qty + 1 WHERE id = $1", id)
				} else {
					var q int
					err = conn.QueryRow(ctx, "SELECT qty FROM orders WHERE id = $1", id).Scan(&q)
				}
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	// Registered after the connections' own clean-ups, so it runs first.
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		select {
		case err := <-errs:
			t.Errorf("workload query failed: %v", err)
		default:
		}
	})
}

// run runs the monitor until the test ends and returns its samples.
func run(t *testing.T, m *Monitor) <-chan Sample {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return m.Samples()
}

// next returns the next sample, failing after a while.
func next(t *testing.T, samples <-chan Sample) Sample {
	t.Helper()
	select {
	case s, ok := <-samples:
		if !ok {
			t.Fatal("samples channel closed")
		}
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no sample for 10 s")
	}
	return Sample{}
}

// sane fails on a negative or absurd figure.
func sane(t *testing.T, s Sample) {
	t.Helper()
	l := s.Latency
	for name, r := range map[string]*float64{"tps": l.TPS, "commits": l.Commits, "rollbacks": l.Rollbacks, "rows written": l.RowsWritten} {
		// 2 vCPUs cannot commit a million transactions a second.
		if r != nil && (*r < 0 || *r > 1e6 || math.IsNaN(*r) || math.IsInf(*r, 0)) {
			t.Errorf("tick %d: %s per second = %v (rates %q)", s.Seq, name, *r, l.Rates)
		}
		if (r != nil) != (l.Rates == "ok") {
			t.Errorf("tick %d: %s is %v with rates %q", s.Seq, name, r, l.Rates)
		}
	}
	if l.MeanExec != nil && (*l.MeanExec < 0 || l.MeanExec.D() > time.Second) {
		t.Errorf("tick %d: mean execution time %v", s.Seq, *l.MeanExec)
	}
	if l.Calls < 0 || l.OldestWaiter < 0 || l.Elapsed < 0 {
		t.Errorf("tick %d: calls %d, oldest wait %v, elapsed %v", s.Seq, l.Calls, l.OldestWaiter, l.Elapsed)
	}
}

// Under a workload the latency pane shows throughput, statement time and
// probe latencies; when a transaction locks the table, the probe's latency
// jumps and the waiter count rises within two ticks, and both recover when
// it ends.
func TestLatencyUnderWorkload(t *testing.T) {
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, workloadSchema)
	const probeTimeout = 150 * time.Millisecond
	m := openMonitor(t, dbURL, []string{"orders"}, Options{Interval: 400 * time.Millisecond, ProbeTimeout: probeTimeout})
	workload(t, dbURL, 4)
	samples := run(t, m)

	var s Sample
	deadline := time.Now().Add(15 * time.Second)
	for {
		s = next(t, samples)
		sane(t, s)
		l := s.Latency
		if l.Error == "" && l.Rates == "ok" && *l.TPS > 0 && *l.RowsWritten > 0 && l.Statements == "ok" &&
			*l.MeanExec > 0 && l.Probes[0].N > 0 && l.Probes[0].Error == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tick with throughput and statement time within 15 s; last: %+v", l)
		}
	}
	p := s.Latency.Probes[0]
	if p.Table != "public.orders" || p.TimedOut || p.Last <= 0 || p.Last.D() >= probeTimeout || p.P50 <= 0 || p.Max < p.P99 || p.P99 < p.P95 || p.P95 < p.P50 {
		t.Errorf("probe before the lock: %+v", p)
	}
	if s.Latency.LockWaiters != 0 {
		t.Errorf("%d lock waiters before the lock", s.Latency.LockWaiters)
	}
	if s.Latency.Calls <= 0 {
		t.Errorf("mean over %d calls", s.Latency.Calls)
	}

	locker := appConn(t, dbURL, "maintenance")
	mustExec(t, locker, "BEGIN")
	mustExec(t, locker, "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
	lockedAt := time.Now()
	// Ticks that started after the lock was taken: the second one at the
	// latest shows it.
	var jumped, rose bool
	for ticks := 0; ticks < 2; {
		s = next(t, samples)
		sane(t, s)
		if s.Time.Before(lockedAt) {
			continue
		}
		ticks++
		p := s.Latency.Probes[0]
		jumped = jumped || (p.TimedOut && p.Last.D() >= probeTimeout)
		rose = rose || (s.Latency.LockWaiters >= 1 && s.Latency.OldestWaiter > 0)
	}
	if !jumped || !rose {
		t.Fatalf("two ticks after the lock: probe jumped %v, waiters rose %v; last %+v", jumped, rose, s.Latency)
	}
	h := sessionOf(t, s.Locks, locker.PgConn().PID())
	if !h.HeadBlocker || len(h.Blocks) != s.Latency.LockWaiters || s.Locks.Waiting != s.Latency.LockWaiters {
		t.Errorf("lock pane during the lock: holder %+v, %d waiting; latency pane %d waiters", h, s.Locks.Waiting, s.Latency.LockWaiters)
	}

	mustExec(t, locker, "ROLLBACK")
	unlockedAt := time.Now()
	var recovered bool
	for ticks := 0; ticks < 2 && !recovered; {
		s = next(t, samples)
		sane(t, s)
		if s.Time.Before(unlockedAt) {
			continue
		}
		ticks++
		p := s.Latency.Probes[0]
		recovered = !p.TimedOut && p.Last.D() < probeTimeout && s.Latency.LockWaiters == 0
	}
	if !recovered {
		t.Errorf("two ticks after the release: %+v", s.Latency)
	}
	if p := s.Latency.Probes[0]; p.Timeouts == 0 || p.Max.D() < probeTimeout {
		t.Errorf("the window forgot the timed-out probes: %+v", p)
	}
	if h := m.History(); len(h) < 5 || h[len(h)-1].Seq <= h[0].Seq {
		t.Errorf("history of %d samples", len(h))
	}
}

// pg_stat_reset() and pg_stat_statements_reset() mid-run: the ticks across
// them report "reset", never a negative or absurd figure, and the rates
// come back.
func TestStatsResetMidRun(t *testing.T) {
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, workloadSchema)
	m := openMonitor(t, dbURL, []string{"orders"}, Options{Interval: 300 * time.Millisecond})
	workload(t, dbURL, 3)
	samples := run(t, m)
	admin := dbtest.Connect(t, dbURL)

	okRates := func(s Sample) bool { return s.Latency.Rates == "ok" && s.Latency.Statements == "ok" }
	var s Sample
	for s = next(t, samples); !okRates(s); s = next(t, samples) {
		sane(t, s)
		if s.Seq > 40 {
			t.Fatalf("no rates after 40 ticks: %+v", s.Latency)
		}
	}
	mustExec(t, admin, "SELECT pg_stat_reset()")
	mustExec(t, admin, "SELECT pg_stat_statements_reset()")
	resetAt := time.Now()
	var sawReset, sawStmtReset, back bool
	for i := 0; i < 30 && !(sawReset && sawStmtReset && back); i++ {
		s = next(t, samples)
		sane(t, s)
		if s.Time.Before(resetAt) {
			continue
		}
		sawReset = sawReset || s.Latency.Rates == "reset"
		sawStmtReset = sawStmtReset || s.Latency.Statements == "reset"
		back = sawReset && sawStmtReset && okRates(s) && *s.Latency.TPS > 0
	}
	if !sawReset || !sawStmtReset || !back {
		t.Errorf("after the resets: rates reset seen %v, statements reset seen %v, rates back %v", sawReset, sawStmtReset, back)
	}
}

// The monitor's own statements are left out of pg_stat_statements' mean:
// the query identifiers it learned from EXPLAIN are the ones the extension
// files its statements under.
func TestOwnStatementsExcluded(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, workloadSchema)
	m := openMonitor(t, dbURL, []string{"orders"}, Options{Interval: 200 * time.Millisecond})
	const ticks = 5
	var s Sample
	for range ticks {
		s = m.Tick(ctx)
	}
	// With nothing else running, the mean is over no call at all.
	if s.Latency.Statements != "idle" || s.Latency.Calls != 0 {
		t.Errorf("idle database: statements %q over %d calls", s.Latency.Statements, s.Latency.Calls)
	}
	// Everything that ran at every tick is the monitor's (lock, stats,
	// replication, statements, probe; and the connection set-up, run
	// once per connection): all of it must be excluded.
	admin := dbtest.Connect(t, dbURL)
	rows, err := admin.Query(ctx, `SELECT queryid, query FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls >= $1`, ticks-2)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for rows.Next() {
		var id int64
		var q string
		if err := rows.Scan(&id, &q); err != nil {
			t.Fatal(err)
		}
		found++
		if !slices.Contains(m.latency.stmts.own, id) {
			t.Errorf("the monitor's statement %d is not excluded: %.80q", id, q)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if found < 6 {
		t.Errorf("found %d of the monitor's statements in pg_stat_statements, want at least 6", found)
	}
}

// Without pg_stat_statements the pane says so; the rest works.
func TestWithoutStatements(t *testing.T) {
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);`)
	m := openMonitor(t, dbURL, []string{"t"}, Options{})
	s := m.Tick(context.Background())
	if s.Latency.Statements != "absent" || s.Latency.MeanExec != nil || s.Latency.Error != "" || s.Latency.Rates != "first" {
		t.Errorf("latency without pg_stat_statements: %+v", s.Latency)
	}
}

// The guard: when the statistics batch ran longer than the guard, the next
// tick goes without pg_stat_statements, and the one after has it again.
func TestLatencyGuard(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, workloadSchema)
	// A guard no batch can meet.
	m := openMonitor(t, dbURL, []string{"orders"}, Options{Interval: time.Second, Guard: time.Nanosecond})
	got := []string{}
	for range 4 {
		s := m.Tick(ctx)
		got = append(got, s.Latency.Statements)
		if s.Locks.Skipped != (len(got)%2 == 0) {
			t.Errorf("tick %d: lock pane skipped %v", len(got), s.Locks.Skipped)
		}
	}
	if want := []string{"first", "skipped", "idle", "skipped"}; !slices.Equal(got, want) {
		t.Errorf("statements per tick %v, want %v", got, want)
	}
}

// Canary probes on tables of every shape: composite, text and no key, an
// empty table; none fails, and the keyed ones read by their key.
func TestProbeShapes(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, `
		CREATE TABLE composite (a int, b text, PRIMARY KEY (a, b)); INSERT INTO composite VALUES (2, 'x'), (1, 'y');
		CREATE TABLE texty (code text NOT NULL, v int); CREATE UNIQUE INDEX ON texty (code); INSERT INTO texty VALUES ('b', 1), ('a', 2);
		CREATE TABLE nokey (v int); INSERT INTO nokey VALUES (1);
		CREATE TABLE empty (id uuid PRIMARY KEY);
		CREATE TABLE "Odd ""Name""" (id int PRIMARY KEY); INSERT INTO "Odd ""Name""" VALUES (7);`)
	m := openMonitor(t, dbURL, []string{"composite", "texty", "nokey", "empty", `"Odd ""Name"""`}, Options{})
	for range 3 {
		s := m.Tick(ctx)
		for _, p := range s.Latency.Probes {
			if p.Error != "" || p.TimedOut {
				t.Errorf("tick: probe %+v", p)
			}
		}
	}
	keys := map[string][]any{}
	for _, p := range m.latency.probes {
		keys[p.table.Name] = p.key
	}
	if k := keys["public.composite"]; len(k) != 2 || k[0] != int32(1) || k[1] != "y" {
		t.Errorf("composite key value %v, want [1 y]", k)
	}
	if k := keys["public.texty"]; len(k) != 1 || k[0] != "a" {
		t.Errorf("text key value %v", k)
	}
	if keys["public.nokey"] != nil || keys["public.empty"] != nil {
		t.Errorf("key values for tables without key or rows: %v", keys)
	}
	if k := keys[`public.Odd "Name"`]; len(k) != 1 || k[0] != int32(7) {
		t.Errorf("quoted table's key value %v", k)
	}
}

// A broken monitor connection is reported on one tick and reopened on the
// next.
func TestReconnect(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);`)
	m := openMonitor(t, dbURL, []string{"t"}, Options{})
	admin := dbtest.Connect(t, dbURL)
	old := m.ownPIDs()
	mustExec(t, admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY($1)", old)
	time.Sleep(100 * time.Millisecond)
	s := m.Tick(ctx)
	if s.Locks.Error == "" || s.Latency.Error == "" || s.Latency.Probes[0].Error == "" {
		t.Errorf("tick on terminated connections: locks %q, stats %q, probe %q", s.Locks.Error, s.Latency.Error, s.Latency.Probes[0].Error)
	}
	s = m.Tick(ctx)
	if s.Locks.Error != "" || s.Latency.Error != "" || s.Latency.Probes[0].Error != "" {
		t.Errorf("tick after reconnecting: locks %q, stats %q, probe %q", s.Locks.Error, s.Latency.Error, s.Latency.Probes[0].Error)
	}
	for _, pid := range m.ownPIDs() {
		if slices.Contains(old, pid) {
			t.Errorf("pid %d survived the termination", pid)
		}
	}
	var apps []string
	if err := admin.QueryRow(ctx, "SELECT array_agg(application_name ORDER BY application_name) FROM pg_stat_activity WHERE pid = ANY($1)", m.ownPIDs()).Scan(&apps); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(apps, []string{"cutover monitor", "cutover monitor", "cutover monitor probe"}) {
		t.Errorf("application names of the monitor's connections: %v", apps)
	}
}

func TestSignal(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);`)
	m := openMonitor(t, dbURL, []string{"t"}, Options{})
	admin := dbtest.Connect(t, dbURL)

	sleeper := appConn(t, dbURL, "report")
	done := background(sleeper, "SELECT pg_sleep(30)")
	waitFor(t, 5*time.Second, "the sleep to start", func() bool {
		var n int
		admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep'", sleeper.PgConn().PID()).Scan(&n)
		return n == 1
	})
	res, err := m.Cancel(ctx, int(sleeper.PgConn().PID()))
	if err != nil || !res.Signalled || res.Application != "report" || res.Query != "SELECT pg_sleep(30)" {
		t.Fatalf("cancel: %+v, %v", res, err)
	}
	var pgErr *pgconn.PgError
	select {
	case err := <-done:
		if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
			t.Errorf("the cancelled query ended with %v, want query_canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the query was not cancelled")
	}

	holder := appConn(t, dbURL, "forgotten")
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "SELECT * FROM t")
	res, err = m.Cancel(ctx, int(holder.PgConn().PID()))
	if err != nil || !res.Signalled || res.State != "idle in transaction" || !strings.Contains(res.Message, "nothing was cancelled") {
		t.Errorf("cancel of an idle transaction: %+v, %v", res, err)
	}
	res, err = m.Terminate(ctx, int(holder.PgConn().PID()))
	if err != nil || !res.Signalled || !res.Exited || !strings.Contains(res.Message, "terminated pid") {
		t.Errorf("terminate: %+v, %v", res, err)
	}
	if _, err := holder.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the terminated session still answers")
	}

	for _, pid := range m.ownPIDs() {
		if _, err := m.Terminate(ctx, int(pid)); !errors.Is(err, ErrOwnSession) {
			t.Errorf("terminate own pid %d: %v", pid, err)
		}
	}
	for _, pid := range []int{0, -1, 999999} {
		if _, err := m.Cancel(ctx, pid); !errors.Is(err, ErrNoSession) {
			t.Errorf("cancel pid %d: %v", pid, err)
		}
	}
	// The monitor still works after all that.
	if s := m.Tick(ctx); s.Locks.Error != "" || s.Latency.Error != "" {
		t.Errorf("tick after signalling: %+v %+v", s.Locks, s.Latency)
	}
}

// A replica (pg_receivewal streaming from the throwaway cluster) shows in
// the latency pane with its lag in bytes.
func TestReplicaLag(t *testing.T) {
	if os.Getenv(dbtest.EnvURL) != "" {
		t.Skip("streams WAL from the throwaway cluster; not done to a shared server")
	}
	ctx := context.Background()
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'x');`)
	bin, err := db.ServerBinDir()
	if err != nil {
		t.Fatal(err)
	}
	admin := dbtest.Connect(t, dbURL)
	cfg := admin.Config()
	cmd := exec.Command(filepath.Join(bin, "pg_receivewal"), "-D", t.TempDir(), "--no-loop", "--synchronous",
		"--status-interval=1", "-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitFor(t, 10*time.Second, "pg_receivewal to stream", func() bool {
		var n int
		admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND flush_lsn IS NOT NULL").Scan(&n)
		return n == 1
	})
	m := openMonitor(t, dbURL, []string{"t"}, Options{})
	mustExec(t, admin, "INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(2, 2000) g")
	s := m.Tick(ctx)
	if len(s.Latency.Replicas) != 1 {
		t.Fatalf("replicas %+v; pg_receivewal said %q", s.Latency.Replicas, out.String())
	}
	r := s.Latency.Replicas[0]
	if r.Name != "pg_receivewal" || r.State != "streaming" || r.Client != "127.0.0.1" || r.SyncState != "async" ||
		r.LagBytes == nil || *r.LagBytes < 0 || *r.LagBytes > 64<<20 {
		t.Errorf("replica %+v (lag bytes %v)", r, r.LagBytes)
	}
}
