package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/db/monitor"
)

// The JSON fields of `cutover watch --format json` are a contract: every
// line is one object with exactly these keys (README, "Watching locks and
// latency").
var watchJSONKeys = map[string][]string{
	"":        {"dropped", "latency", "locks", "seq", "time"},
	"locks":   {"oldest_wait_ms", "sessions", "skipped", "took_ms", "traps", "waiting"},
	"latency": {"calls", "commits_per_s", "elapsed_ms", "evicted", "lock_waiters", "mean_exec_ms", "oldest_wait_ms", "probes", "rates", "replicas", "rollbacks_per_s", "rows_written_per_s", "statements", "took_ms", "tps"},
	"probe":   {"last_ms", "max_ms", "n", "p50_ms", "p95_ms", "p99_ms", "table", "timed_out", "timeouts"},
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestWatchJSON(t *testing.T) {
	dbURL := dbtest.Pagila(t)
	r := run(t, "", "watch", "--table", "rental,public.film", "--db", dbURL, "--interval", "200ms", "--count", "3", "--format", "json")
	ok(t, r)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), r.stdout)
	}
	for i, line := range lines {
		var s monitor.Sample
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("line %d is not a sample: %v\n%s", i+1, err, line)
		}
		if s.Seq != int64(i+1) || s.Time.IsZero() || s.Locks == nil || s.Latency == nil {
			t.Errorf("line %d: seq %d, time %v, locks %v, latency %v", i+1, s.Seq, s.Time, s.Locks, s.Latency)
		}
		if s.Locks.Error != "" || s.Latency.Error != "" {
			t.Errorf("line %d: errors %q %q", i+1, s.Locks.Error, s.Latency.Error)
		}
		var tables []string
		for _, p := range s.Latency.Probes {
			tables = append(tables, p.Table)
			if p.Error != "" || p.TimedOut || p.Last <= 0 || p.N != i+1 {
				t.Errorf("line %d: probe %+v", i+1, p)
			}
		}
		if !slices.Equal(tables, []string{"public.rental", "public.film"}) {
			t.Errorf("line %d: probes of %v", i+1, tables)
		}
		want := map[bool]string{true: "first", false: "ok"}[i == 0]
		if s.Latency.Rates != want || (want == "ok") != (s.Latency.TPS != nil) {
			t.Errorf("line %d: rates %q, tps %v", i+1, s.Latency.Rates, s.Latency.TPS)
		}

		var top map[string]json.RawMessage
		json.Unmarshal([]byte(line), &top)
		if got := keys(top); !slices.Equal(got, watchJSONKeys[""]) {
			t.Errorf("line %d: top-level keys %v, want %v", i+1, got, watchJSONKeys[""])
		}
		for _, pane := range []string{"locks", "latency"} {
			var m map[string]json.RawMessage
			json.Unmarshal(top[pane], &m)
			if got := keys(m); !slices.Equal(got, watchJSONKeys[pane]) {
				t.Errorf("line %d: %s keys %v, want %v", i+1, pane, got, watchJSONKeys[pane])
			}
			if pane == "latency" {
				var probes []map[string]json.RawMessage
				json.Unmarshal(m["probes"], &probes)
				if got := keys(probes[0]); !slices.Equal(got, watchJSONKeys["probe"]) {
					t.Errorf("line %d: probe keys %v, want %v", i+1, got, watchJSONKeys["probe"])
				}
			}
		}
	}
}

func TestWatchText(t *testing.T) {
	dbURL := dbtest.Pagila(t)
	r := run(t, "", "watch", "--table", "rental", "--table", "film", "--db", dbURL, "--interval", "1s", "--count", "2")
	ok(t, r)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), r.stdout)
	}
	for i, want := range []string{" #1 tps (first) mean (absent) | public.rental ", " #2 tps "} {
		// Tick 1 always reads the locks. On a loaded machine the latency
		// guard may skip tick 2's read when tick 1's took over a quarter of
		// the interval, and says so; anything else is wrong.
		locksOK := strings.HasSuffix(lines[i], "| no locks") ||
			(i == 1 && strings.HasSuffix(lines[i], "| locks (skipped: the last read was slow)"))
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], "| public.film ") || !locksOK {
			t.Errorf("line %d = %q, want it to contain %q, the film probe, and end with no locks", i+1, lines[i], want)
		}
	}
}

// --duration stops the watch; so does Ctrl-C (SIGINT), cleanly, exit 0.
func TestWatchStops(t *testing.T) {
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, "CREATE TABLE t (id int PRIMARY KEY)")

	start := time.Now()
	r := run(t, "", "watch", "--table", "t", "--db", dbURL, "--interval", "200ms", "--duration", "700ms")
	ok(t, r)
	if n := strings.Count(r.stdout, "\n"); n < 3 || n > 5 || time.Since(start) > 5*time.Second {
		t.Errorf("--duration 700ms at 200ms: %d lines in %v", n, time.Since(start))
	}

	cmd := exec.Command(binary, "watch", "--table", "t", "--db", dbURL, "--interval", "200ms", "--format", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("no first line; stderr %q", stderr.String())
	}
	cmd.Process.Signal(os.Interrupt)
	for sc.Scan() {
		var s monitor.Sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Errorf("a line after SIGINT is not a whole sample: %q", sc.Text())
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || stderr.Len() != 0 {
			t.Errorf("after SIGINT: %v, stderr %q; want exit 0 and nothing on stderr", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("cutover watch did not stop within 5 s of SIGINT")
	}
}

func TestWatchBadInput(t *testing.T) {
	dbURL := dbtest.Pagila(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "postgres://app:s3cr3t@" + l.Addr().String() + "/x"
	l.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no table", []string{"--db", dbURL}, "no table to watch"},
		{"empty table", []string{"--table", ",", "--db", dbURL}, "no table to watch"},
		{"unknown table", []string{"--table", "rental,nope", "--db", dbURL}, `--table: unknown table "nope": no such table`},
		{"a view", []string{"--table", "actor_info", "--db", dbURL}, "public.actor_info is a view, not a table"},
		{"unparsable interval", []string{"--table", "rental", "--db", dbURL, "--interval", "soon"}, `invalid argument "soon" for "--interval"`},
		{"interval too short", []string{"--table", "rental", "--db", dbURL, "--interval", "10ms"}, "--interval 10ms is too short: use at least 100ms"},
		{"zero interval", []string{"--table", "rental", "--db", dbURL, "--interval", "0s"}, "--interval 0s is too short"},
		{"probe timeout too long", []string{"--table", "rental", "--db", dbURL, "--probe-timeout", "1s"}, "--probe-timeout 1s must be positive and shorter than --interval 1s"},
		{"bad format", []string{"--table", "rental", "--db", dbURL, "--format", "xml"}, `unknown --format "xml": use text or json`},
		{"negative count", []string{"--table", "rental", "--db", dbURL, "--count", "-1"}, "--count -1"},
		{"negative duration", []string{"--table", "rental", "--db", dbURL, "--duration", "-1s"}, "--duration -1s"},
		{"argument", []string{"rental", "--db", dbURL}, `unknown command "rental"`},
		{"unreachable", []string{"--table", "rental", "--db", closed}, "cannot reach PostgreSQL at 127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, "", append([]string{"watch"}, tc.args...)...)
			badInput(t, r, tc.want)
			if strings.Contains(r.stderr, "s3cr3t") {
				t.Errorf("the password appears: %q", r.stderr)
			}
		})
	}
}

// TestWatchOverhead measures what `cutover watch` at a 1 s interval costs
// the server (CPU of the backends serving its connections) and itself (CPU
// of the cutover process), under a light workload. It runs only when
// CUTOVER_WATCH_OVERHEAD is set to the measuring time, e.g.
//
//	CUTOVER_WATCH_OVERHEAD=60s go test -run TestWatchOverhead -v .
//
// CUTOVER_WATCH_OVERHEAD_STATEMENTS sets how many distinct statements are
// put into pg_stat_statements first (default 2000).
//
// It needs the server on this machine (the throwaway cluster): it reads
// /proc/<pid>/stat.
func TestWatchOverhead(t *testing.T) {
	window, err := time.ParseDuration(os.Getenv("CUTOVER_WATCH_OVERHEAD"))
	if err != nil || window <= 0 {
		t.Skip("set CUTOVER_WATCH_OVERHEAD=60s to measure the watch's overhead")
	}
	if os.Getenv(dbtest.EnvURL) != "" {
		t.Skip("needs the throwaway cluster on this machine to read its backends' CPU time")
	}
	ctx := context.Background()
	dbURL := dbtest.Pagila(t)
	conn := dbtest.Connect(t, dbURL)
	if _, err := conn.Exec(ctx, "CREATE EXTENSION pg_stat_statements SCHEMA public"); err != nil {
		t.Fatal(err)
	}
	// An application's worth of distinct statements in
	// pg_stat_statements, which the monitor reads every tick
	// (CUTOVER_WATCH_OVERHEAD_STATEMENTS, default 2000).
	statements := 2000
	if n, err := strconv.Atoi(os.Getenv("CUTOVER_WATCH_OVERHEAD_STATEMENTS")); err == nil {
		statements = n
	}
	for i := range statements {
		if _, err := conn.Exec(ctx, "SELECT ARRAY["+strings.Repeat("1, ", i)+"1]"); err != nil {
			t.Fatal(err)
		}
	}
	// A light application: 4 sessions reading and updating rental.
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range 4 {
		w := dbtest.Connect(t, dbURL)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			for wctx.Err() == nil {
				id := 1 + rng.IntN(16000)
				if rng.IntN(3) == 0 {
					w.Exec(wctx, "UPDATE rental SET last_update = now() WHERE rental_id = $1", id)
				} else {
					w.Exec(wctx, "SELECT * FROM rental WHERE rental_id = $1", id)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	defer func() { stop(); wg.Wait() }()

	var commits0 int64
	conn.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&commits0)
	cmd := exec.Command(binary, "watch", "--table", "rental,payment", "--db", dbURL, "--interval", "1s", "--format", "json")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	time.Sleep(3 * time.Second) // connected, statements prepared
	var backends []int
	if err := conn.QueryRow(ctx, `SELECT array_agg(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name LIKE 'cutover monitor%'`).Scan(&backends); err != nil {
		t.Fatal(err)
	}
	if len(backends) != 4 {
		t.Fatalf("monitor backends %v, want 4 (locks, statistics, 2 probes); output %s", backends, out.String())
	}
	hz := clockTicks()
	cpu := func(pids []int) float64 {
		var total int64
		for _, pid := range pids {
			total += cpuTicks(t, pid)
		}
		return float64(total) / hz
	}
	server0, self0, wall0 := cpu(backends), cpu([]int{cmd.Process.Pid}), time.Now()
	time.Sleep(window)
	server1, self1, wall := cpu(backends), cpu([]int{cmd.Process.Pid}), time.Since(wall0)
	var commits1 int64
	conn.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&commits1)

	serverPct := 100 * (server1 - server0) / wall.Seconds()
	selfPct := 100 * (self1 - self0) / wall.Seconds()
	var entries int
	conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_statements").Scan(&entries)
	t.Logf("over %s at 1 s, 2 tables, workload ~%.0f tps, %d pg_stat_statements entries: server backends of the monitor %.2f cpu-s = %.3f%% of a core; cutover process %.2f cpu-s = %.3f%% of a core",
		wall.Round(time.Second), float64(commits1-commits0)/(wall.Seconds()+3), entries, server1-server0, serverPct, self1-self0, selfPct)
	if serverPct >= 1 || selfPct >= 1 {
		t.Errorf("overhead above 1%% of a core: server %.3f%%, cutover %.3f%%", serverPct, selfPct)
	}
}

// cpuTicks returns utime+stime of a process from /proc/<pid>/stat, in
// clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) start at
	// state (field 3); utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

// clockTicks is the kernel's USER_HZ (getconf CLK_TCK), 100 on Linux.
func clockTicks() float64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if hz, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && hz > 0 {
			return hz
		}
	}
	return 100
}
