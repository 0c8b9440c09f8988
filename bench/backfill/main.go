// Command backfill is cutover's backfill benchmark: on a throwaway
// PostgreSQL server it runs a concurrent pgbench workload (point SELECT and
// UPDATE by primary key) against a table of N rows while changing a text
// column holding numbers to integer, four ways, in one run:
//
//	(a) no migration (the workload alone);
//	(b) the naive ALTER TABLE ... ALTER COLUMN ... TYPE integer USING ...;
//	(c) one unthrottled UPDATE of the whole table into a new column (the
//	    work's lower bound);
//	(d) cutover's full type-change plan (cutover plan --db, then cutover
//	    apply --yes --confirm-irreversible, through contract), run as the
//	    real cutover binary; then again for each latency budget of the
//	    sweep, and once on a small table for peak RSS.
//
// The workload's latency (p50/p99/max) and TPS come from pgbench's
// per-transaction log (-l), over the transactions that overlap the
// migration. Lock waits longer than 100 ms come from the server log
// (log_lock_waits with deadlock_timeout = 100ms), attributed to cutover when
// the session holding the lock is one of cutover's. Results go to
// docs/benchmarks.md with the machine's description.
//
// Run from the repository root:
//
//	go run ./bench/backfill                  # N = 2,000,000
//	go run ./bench/backfill -rows 200000 -budgets 20ms,50ms -workers 1,2,8
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db"
)

const change = "ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer"

type config struct {
	rows, rssRows   int
	clients, jobs   int
	baseline        time.Duration
	warmup, tail    time.Duration
	budgets         []time.Duration
	workers         []int
	out, work       string
	keep            bool
	extraApplyFlags []string
}

// result is one scenario's measurements.
type result struct {
	name      string
	rows      int
	migration time.Duration // 0 for (a)
	w         workload
	waits     int // lock waits > 100 ms (server log) during the window
	cutWaits  int // of which on a lock held by cutover
	rssKB     int64
	note      string
}

type workload struct {
	n                 int
	tps               float64
	p50, p99, max     time.Duration
	over100           int
	abortedClients    int
	windowFrom, until time.Time
}

func main() {
	var c config
	var budgets, extra, workers string
	flag.IntVar(&c.rows, "rows", 2_000_000, "rows in the table")
	flag.IntVar(&c.rssRows, "rss-rows", 200_000, "rows of the extra cutover run measuring peak RSS on a small table (0: skip)")
	flag.IntVar(&c.clients, "clients", 8, "pgbench clients")
	flag.IntVar(&c.jobs, "jobs", 2, "pgbench threads")
	flag.DurationVar(&c.baseline, "baseline", 15*time.Second, "length of the no-migration measurement (a)")
	flag.DurationVar(&c.warmup, "warmup", 3*time.Second, "workload time before each migration starts")
	flag.DurationVar(&c.tail, "tail", 2*time.Second, "workload time after each migration ends")
	flag.StringVar(&budgets, "budgets", "10ms,50ms,100ms", "latency budgets of the sweep (each also the batch target); the defaults (db.DefaultBatchTarget, db.DefaultLatencyBudget) are run as (d)")
	flag.StringVar(&workers, "workers", "1,8", "--backfill-workers of the workers sweep: cutover's plan again with each count (the defaults row uses the default, db.DefaultBackfillWorkers)")
	flag.StringVar(&c.out, "out", "docs/benchmarks.md", "markdown file to write")
	flag.StringVar(&c.work, "work", "", "work directory (default a temporary one)")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (pgbench logs, plans, cutover output)")
	flag.StringVar(&extra, "apply-flags", "", "extra flags for every cutover apply, space separated")
	flag.Parse()
	for _, b := range strings.Split(budgets, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		d, err := time.ParseDuration(b)
		if err != nil {
			log.Fatalf("-budgets: %v", err)
		}
		c.budgets = append(c.budgets, d)
	}
	for _, w := range strings.Split(workers, ",") {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 {
			log.Fatalf("-workers: %q is not a worker count", w)
		}
		c.workers = append(c.workers, n)
	}
	c.extraApplyFlags = strings.Fields(extra)
	if err := run(context.Background(), c); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, c config) error {
	if _, err := exec.LookPath("pgbench"); err != nil {
		return errors.New("pgbench not found on PATH: install the PostgreSQL client package (it ships with PostgreSQL)")
	}
	work := c.work
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "cutover-bench-"); err != nil {
			return err
		}
		if !c.keep {
			defer os.RemoveAll(work)
		}
	}
	if err := os.MkdirAll(work, 0o777); err != nil {
		return err
	}
	os.Chmod(work, 0o777) // pgbench runs as this user; nothing else needs it
	bin := filepath.Join(work, "cutover")
	log.Printf("building cutover into %s", bin)
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("go build (run the benchmark from the repository root): %v\n%s", err, out)
	}

	log.Printf("starting a throwaway PostgreSQL server")
	cl, err := db.StartCluster(ctx, db.ClusterOptions{Settings: map[string]string{
		"max_connections":  "100",
		"shared_buffers":   "512MB",
		"max_wal_size":     "4GB",
		"log_lock_waits":   "on",
		"deadlock_timeout": "100ms",
		"log_min_messages": "log",
		"log_line_prefix":  "%m [%p] ",
	}})
	if err != nil {
		return err
	}
	defer cl.Stop()
	url := cl.URL("postgres")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	b := &bench{c: c, work: work, bin: bin, url: url, conn: conn, cl: cl}

	var results []result
	add := func(r result, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		log.Printf("%s: migration %s; workload %d txns, %.0f tps, p50 %s p99 %s max %s, >100ms %d, lock waits >100ms %d (on cutover %d) %s",
			r.name, r.migration.Round(time.Millisecond), r.w.n, r.w.tps, ms(r.w.p50), ms(r.w.p99), ms(r.w.max), r.w.over100, r.waits, r.cutWaits, r.note)
		results = append(results, r)
		return nil
	}
	if err := add(b.noMigration()); err != nil {
		return err
	}
	if err := add(b.naiveAlter()); err != nil {
		return err
	}
	if err := add(b.singleUpdate()); err != nil {
		return err
	}
	if err := add(b.cutover(c.rows, 0, 0, "(d) cutover plan, defaults")); err != nil {
		return err
	}
	for _, w := range c.workers {
		if err := add(b.cutover(c.rows, 0, w, fmt.Sprintf("(d) cutover, %d backfill worker(s)", w))); err != nil {
			return err
		}
	}
	for _, d := range c.budgets {
		if err := add(b.cutover(c.rows, d, 0, fmt.Sprintf("(d) cutover, budget %s", d))); err != nil {
			return err
		}
	}
	if c.rssRows > 0 {
		if err := add(b.cutover(c.rssRows, 0, 0, fmt.Sprintf("(d) cutover, defaults, %s rows", thousands(c.rssRows)))); err != nil {
			return err
		}
	}
	var version string
	conn.QueryRow(ctx, "SELECT version()").Scan(&version)
	md := report(c, results, machine(version)) + handNotes(c.out)
	if err := os.MkdirAll(filepath.Dir(c.out), 0o777); err != nil {
		return err
	}
	if err := os.WriteFile(c.out, []byte(md), 0o666); err != nil {
		return err
	}
	log.Printf("wrote %s", c.out)
	fmt.Print(md)
	return nil
}

type bench struct {
	c    config
	work string
	bin  string
	url  string
	conn *pgx.Conn
	cl   *db.Cluster
	seq  int
}

// load recreates the table with n rows (and forgets cutover's state).
func (b *bench) load(ctx context.Context, n int) error {
	log.Printf("loading %s rows", thousands(n))
	for _, sql := range []string{
		"DROP SCHEMA IF EXISTS cutover CASCADE",
		"DROP TABLE IF EXISTS items",
		`CREATE TABLE items (
			id bigserial PRIMARY KEY,
			amount text NOT NULL,
			note text NOT NULL,
			updated_at timestamptz NOT NULL DEFAULT now())`,
		fmt.Sprintf(`INSERT INTO items (amount, note) SELECT (g %% 100000)::text, md5(g::text) FROM generate_series(1, %d) g`, n),
		"VACUUM ANALYZE items",
		"CHECKPOINT",
	} {
		if _, err := b.conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", strings.Fields(sql)[0], err)
		}
	}
	return nil
}

// pgbench runs the workload until stop is called; the log files are then
// parsed for the transactions overlapping [from, until].
type pgbench struct {
	cmd    *exec.Cmd
	prefix string
	out    strings.Builder
	done   chan error
}

func (b *bench) startWorkload(ctx context.Context, rows int) (*pgbench, error) {
	b.seq++
	dir := filepath.Join(b.work, fmt.Sprintf("run%d", b.seq))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "workload.sql")
	// Point SELECT and UPDATE by primary key. The UPDATE writes the column
	// being changed, so the sync trigger of (d) is on the hot path.
	if err := os.WriteFile(script, []byte(fmt.Sprintf(`\set id random(1, %d)
\set v random(1, 100000)
SELECT amount, note FROM items WHERE id = :id;
UPDATE items SET amount = :v, updated_at = now() WHERE id = :id;
`, rows)), 0o666); err != nil {
		return nil, err
	}
	p := &pgbench{prefix: filepath.Join(dir, "pgbench_log"), done: make(chan error, 1)}
	p.cmd = exec.Command("pgbench", "-n", "-c", strconv.Itoa(b.c.clients), "-j", strconv.Itoa(b.c.jobs),
		"-T", "3600", "-f", script, "-l", "--log-prefix="+p.prefix,
		"-h", "127.0.0.1", "-p", strconv.Itoa(b.cl.Port), "-U", db.Superuser, "postgres")
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p, nil
}

// stop ends pgbench (SIGINT; a per-thread log buffer may lose its last
// lines, from the tail after the window) and measures the window.
func (p *pgbench) stop(from, until time.Time) (workload, error) {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	w := workload{windowFrom: from, until: until}
	w.abortedClients = strings.Count(p.out.String(), "aborted")
	files, _ := filepath.Glob(p.prefix + ".*")
	if len(files) == 0 {
		return w, fmt.Errorf("pgbench wrote no log:\n%s", p.out.String())
	}
	var lat []time.Duration
	fromUs, untilUs := from.UnixMicro(), until.UnixMicro()
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return w, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			// client_id transaction_no time script_no time_epoch time_us
			fs := strings.Fields(sc.Text())
			if len(fs) < 6 {
				continue
			}
			us, err1 := strconv.ParseInt(fs[2], 10, 64)
			sec, err2 := strconv.ParseInt(fs[4], 10, 64)
			frac, err3 := strconv.ParseInt(fs[5], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				continue // a failed transaction has no time
			}
			end := sec*1_000_000 + frac
			if end < fromUs || end-us > untilUs {
				continue
			}
			lat = append(lat, time.Duration(us)*time.Microsecond)
		}
		fh.Close()
	}
	if len(lat) == 0 {
		return w, fmt.Errorf("no workload transaction in the window:\n%s", p.out.String())
	}
	slices.Sort(lat)
	w.n = len(lat)
	w.tps = float64(len(lat)) / until.Sub(from).Seconds()
	w.p50 = lat[len(lat)*50/100]
	w.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	w.max = lat[len(lat)-1]
	for _, l := range lat {
		if l > 100*time.Millisecond {
			w.over100++
		}
	}
	return w, nil
}

// measure loads the table, runs the workload, runs migrate between the
// warmup and the tail, and measures.
func (b *bench) measure(name string, rows int, migrate func(ctx context.Context) (string, int64, error)) (result, error) {
	ctx := context.Background()
	r := result{name: name, rows: rows}
	if err := b.load(ctx, rows); err != nil {
		return r, err
	}
	logOffset := b.serverLogSize()
	p, err := b.startWorkload(ctx, rows)
	if err != nil {
		return r, err
	}
	time.Sleep(b.c.warmup)
	log.Printf("%s: running", name)
	pids := &pidWatch{}
	stopWatch := pids.watch(b.url)
	from := time.Now()
	note, rss, merr := migrate(ctx)
	until := time.Now()
	stopWatch()
	time.Sleep(b.c.tail)
	w, err := p.stop(from, until)
	if merr != nil {
		return r, merr
	}
	if err != nil {
		return r, err
	}
	if migrate != nil {
		r.migration = until.Sub(from)
	}
	r.w, r.note, r.rssKB = w, note, rss
	r.waits, r.cutWaits = b.lockWaits(logOffset, pids.set())
	if w.abortedClients > 0 {
		r.note = strings.TrimSpace(r.note + fmt.Sprintf(" pgbench: %d client(s) aborted", w.abortedClients))
	}
	return r, nil
}

func (b *bench) noMigration() (result, error) {
	return b.measure("(a) no migration", b.c.rows, func(ctx context.Context) (string, int64, error) {
		time.Sleep(b.c.baseline)
		return "", 0, nil
	})
}

func (b *bench) naiveAlter() (result, error) {
	return b.measure("(b) naive ALTER TYPE", b.c.rows, func(ctx context.Context) (string, int64, error) {
		c, err := pgx.Connect(ctx, b.url+"&application_name=bench-naive")
		if err != nil {
			return "", 0, err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, change)
		return "", 0, err
	})
}

func (b *bench) singleUpdate() (result, error) {
	return b.measure("(c) one UPDATE (lower bound)", b.c.rows, func(ctx context.Context) (string, int64, error) {
		c, err := pgx.Connect(ctx, b.url+"&application_name=bench-update")
		if err != nil {
			return "", 0, err
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "ALTER TABLE items ADD COLUMN amount_new integer"); err != nil {
			return "", 0, err
		}
		_, err = c.Exec(ctx, "UPDATE items SET amount_new = amount::integer")
		return "", 0, err
	})
}

// cutover plans the change against the live schema and applies the whole
// plan headless with the cutover binary; budget 0 and workers 0 keep the
// defaults.
func (b *bench) cutover(rows int, budget time.Duration, workers int, name string) (result, error) {
	return b.measure(name, rows, func(ctx context.Context) (string, int64, error) {
		dir := filepath.Join(b.work, fmt.Sprintf("run%d", b.seq))
		plan := filepath.Join(dir, "plan.json")
		if out, err := exec.CommandContext(ctx, b.bin, "plan", "--db", b.url, "--sql", change, "--format", "json", "-o", plan).CombinedOutput(); err != nil {
			return "", 0, fmt.Errorf("cutover plan: %v\n%s", err, out)
		}
		args := []string{"apply", "--plan", plan, "--db", b.url, "--yes", "--confirm-irreversible", "public.items", "--no-usage-check"}
		if budget > 0 {
			args = append(args, "--latency-budget", budget.String(), "--batch-target", budget.String())
		}
		if workers > 0 {
			args = append(args, "--backfill-workers", strconv.Itoa(workers))
		}
		args = append(args, b.c.extraApplyFlags...)
		cmd := exec.CommandContext(ctx, b.bin, args...)
		logPath := filepath.Join(dir, "apply.log")
		lf, err := os.Create(logPath)
		if err != nil {
			return "", 0, err
		}
		defer lf.Close()
		cmd.Stdout, cmd.Stderr = lf, lf
		if err := cmd.Start(); err != nil {
			return "", 0, err
		}
		// Peak RSS is VmHWM of the cutover process, read until it exits:
		// wait4's ru_maxrss would include this (parent) process's RSS,
		// inherited at the vfork before exec.
		var rss atomic.Int64
		stopPoll := make(chan struct{})
		polled := make(chan struct{})
		go func() {
			defer close(polled)
			for {
				if kb := vmHWM(cmd.Process.Pid); kb > rss.Load() {
					rss.Store(kb)
				}
				select {
				case <-stopPoll:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		err = cmd.Wait()
		close(stopPoll)
		<-polled
		if err != nil {
			out, _ := os.ReadFile(logPath)
			return "", rss.Load(), fmt.Errorf("cutover apply: %v\n%s", err, tail(string(out), 30))
		}
		out, _ := os.ReadFile(logPath)
		throttled := strings.Count(string(out), "slowed:") + strings.Count(string(out), "paused:")
		var notes []string
		for _, l := range strings.Split(string(out), "\n") {
			if _, done, ok := strings.Cut(l, "backfill complete: "); ok {
				notes = append(notes, "backfill: "+done)
			}
		}
		if throttled > 0 {
			notes = append(notes, fmt.Sprintf("%d throttled progress line(s)", throttled))
		}
		note := strings.Join(notes, "; ")
		// Where the time goes: the batches (counted per key range) and
		// the steps.
		var nb, nr int64
		if err := b.conn.QueryRow(ctx, `SELECT coalesce(sum(batches), 0)::bigint, coalesce(sum(rows_done), 0)::bigint
			FROM cutover.backfill_ranges`).Scan(&nb, &nr); err == nil && nb > 0 {
			log.Printf("%s: %d batches, avg %.0f rows", name, nb, float64(nr)/float64(nb))
		}
		if rows, err := b.conn.Query(ctx, `SELECT s.step_id, extract(epoch FROM s.duration)::float8 FROM cutover.steps s ORDER BY s.position`); err == nil {
			var parts []string
			for rows.Next() {
				var id string
				var secs *float64
				if rows.Scan(&id, &secs) == nil && secs != nil {
					parts = append(parts, fmt.Sprintf("%s %.2fs", id, *secs))
				}
			}
			rows.Close()
			log.Printf("%s: steps: %s", name, strings.Join(parts, ", "))
		}
		// The final column must equal the expression for every row the
		// workload did not write meanwhile: checked as type and count.
		var typ string
		if err := b.conn.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'amount'`).Scan(&typ); err != nil {
			return "", rss.Load(), err
		}
		if typ != "integer" {
			return "", rss.Load(), fmt.Errorf("after cutover apply, items.amount is %s, not integer", typ)
		}
		return note, rss.Load(), nil
	})
}

// vmHWM returns the peak resident set size of a process in kB (0 when it
// cannot be read, e.g. after it exited).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb
		}
	}
	return 0
}

// pidWatch collects the backend pids of cutover's sessions while a
// migration runs (to attribute lock waits to them).
type pidWatch struct {
	mu   sync.Mutex
	pids map[int]bool
}

func (w *pidWatch) watch(url string) (stop func()) {
	w.pids = map[int]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := pgx.Connect(ctx, url+"&application_name=bench-watch")
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		for ctx.Err() == nil {
			rows, err := c.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'cutover%'`)
			if err == nil {
				for rows.Next() {
					var pid int
					if rows.Scan(&pid) == nil {
						w.mu.Lock()
						w.pids[pid] = true
						w.mu.Unlock()
					}
				}
				rows.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (w *pidWatch) set() map[int]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pids
}

func (b *bench) serverLogSize() int64 {
	st, err := os.Stat(filepath.Join(b.cl.Dir, "postgres.log"))
	if err != nil {
		return 0
	}
	return st.Size()
}

// lockWaits counts "still waiting ... after 100 ms" log lines since offset,
// and those whose lock holder is one of pids.
func (b *bench) lockWaits(offset int64, pids map[int]bool) (all, cut int) {
	f, err := os.Open(filepath.Join(b.cl.Dir, "postgres.log"))
	if err != nil {
		return -1, -1
	}
	defer f.Close()
	f.Seek(offset, 0)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	waiting := false
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "still waiting for") {
			all++
			waiting = true
			continue
		}
		// DETAIL:  Process holding the lock: 123. Wait queue: 456.
		if waiting && strings.Contains(line, "Process holding the lock:") {
			waiting = false
			_, rest, _ := strings.Cut(line, "Process holding the lock:")
			for _, f := range strings.FieldsFunc(strings.SplitN(rest, "Wait queue", 2)[0], func(r rune) bool { return r < '0' || r > '9' }) {
				if pid, err := strconv.Atoi(f); err == nil && pids[pid] {
					cut++
					break
				}
			}
		}
	}
	return all, cut
}

// machine describes the computer: CPU model, cores, RAM, PostgreSQL.
func machine(version string) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				f := strings.Fields(l)
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	if i := strings.Index(version, " on "); i > 0 {
		version = version[:i]
	}
	return fmt.Sprintf("%s, %d cores (runtime.NumCPU), %s RAM, %s, %s/%s", cpu, runtime.NumCPU(), mem, version, runtime.GOOS, runtime.GOARCH)
}

// handNotesHeading starts the part of the report written by hand (the
// reading of a run's results): a rerun keeps it, below the new figures,
// for whoever updates it.
const handNotesHeading = "## Reading the results"

// handNotes returns the hand-written part of the report at path ("" when
// there is none).
func handNotes(path string) string {
	old, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if i := strings.Index(string(old), "\n"+handNotesHeading); i >= 0 {
		return string(old[i:])
	}
	return ""
}

func report(c config, rs []result, machine string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Backfill benchmark\n\n")
	fmt.Fprintf(&b, "Generated by `go run ./bench/backfill` on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s.\n", machine)
	fmt.Fprintf(&b, "- Server: cutover's throwaway cluster (db.StartCluster: fsync, synchronous_commit and full_page_writes off; shared_buffers 512MB; log_lock_waits on, deadlock_timeout 100ms).\n")
	fmt.Fprintf(&b, "- Table `items` (`id bigserial` primary key, `amount text` holding numbers, `note text`, `updated_at timestamptz`); change: `%s`.\n", change)
	fmt.Fprintf(&b, "- Workload: pgbench, %d clients, %d threads, each transaction one point SELECT and one UPDATE of `amount` by primary key; latency and TPS from pgbench's per-transaction log (-l) over the transactions overlapping the migration (for (a): %s).\n", c.clients, c.jobs, c.baseline)
	fmt.Fprintf(&b, "- Lock waits: server log lines `still waiting ... after 100 ms` during the migration; \"on cutover\" when the lock's holder is one of cutover's sessions.\n")
	fmt.Fprintf(&b, "- Peak RSS: VmHWM of the cutover apply process (polled every 20 ms).\n")
	fmt.Fprintf(&b, "- (d) runs the real binary: `cutover plan --db ... --format json`, then `cutover apply --yes --confirm-irreversible public.items --no-usage-check` (expand + backfill + contract); the budget sweep sets `--latency-budget` and `--batch-target` to the budget, the workers sweep `--backfill-workers`.\n\n")
	b.WriteString("| scenario | rows | migration time | workload TPS | p50 | p99 | max | txns > 100 ms | lock waits > 100 ms (on cutover) | cutover peak RSS | notes |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	var a, cc, d *result
	for i := range rs {
		r := &rs[i]
		mig := "-"
		if r.migration > 0 {
			mig = fmt.Sprintf("%.2f s", r.migration.Seconds())
		}
		rss := "-"
		if r.rssKB > 0 {
			rss = fmt.Sprintf("%.1f MB", float64(r.rssKB)/1024)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %s | %s | %s | %d | %d (%d) | %s | %s |\n",
			r.name, thousands(r.rows), mig, r.w.tps, ms(r.w.p50), ms(r.w.p99), ms(r.w.max), r.w.over100, r.waits, r.cutWaits, rss, r.note)
		switch {
		case strings.HasPrefix(r.name, "(a)"):
			a = r
		case strings.HasPrefix(r.name, "(c)"):
			cc = r
		case strings.HasPrefix(r.name, "(d) cutover plan, defaults"):
			d = r
		}
	}
	if a != nil && cc != nil && d != nil {
		b.WriteString("\nTargets (ratios within this run):\n\n")
		p99 := float64(d.w.p99) / float64(a.w.p99)
		tr := d.migration.Seconds() / cc.migration.Seconds()
		fmt.Fprintf(&b, "- Workload p99 during cutover's plan / without migration: %.2fx (target <= 2x): %s.\n", p99, met(p99 <= 2))
		fmt.Fprintf(&b, "- Workload lock waits > 100 ms on a lock cutover holds: %d (target 0): %s.\n", d.cutWaits, met(d.cutWaits == 0))
		fmt.Fprintf(&b, "- Cutover's whole plan / one UPDATE: %.2fx (target <= 3x): %s.\n", tr, met(tr <= 3))
		var small *result
		for i := range rs {
			if rs[i].rows != d.rows && strings.HasPrefix(rs[i].name, "(d)") {
				small = &rs[i]
			}
		}
		if small != nil && small.rssKB > 0 && d.rssKB > 0 {
			fmt.Fprintf(&b, "- Peak RSS of cutover apply: %.1f MB at %s rows, %.1f MB at %s rows.\n",
				float64(small.rssKB)/1024, thousands(small.rows), float64(d.rssKB)/1024, thousands(d.rows))
		}
	}
	return b.String()
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
