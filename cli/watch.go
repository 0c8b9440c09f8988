package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/db/monitor"
)

// watchFlags are the flags of cutover watch.
type watchFlags struct {
	tables       []string
	dbURL        string
	interval     time.Duration
	probeTimeout time.Duration
	format       string
	count        int
	duration     time.Duration
}

func newWatchCmd() *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch --table T[,T...] [--db URL] [--interval 1s] [--format text|json] [--count N | --duration D]",
		Short: "Watch the locks and latency of tables, one line per tick",
		Long: `Watch samples, every interval, what a schema change does to the application,
for the given tables:

  locks    every session holding or awaiting a lock on them, who blocks whom
           (pg_blocking_pids), and the sessions queued behind cutover's own
           waiting DDL (the lock-queue trap);
  latency  a canary read per table on its own connection, with short lock and
           statement timeouts (--probe-timeout) so it waits in the same lock
           queue as the application: its latency and p50/p95/p99/max over the
           last 60 ticks; transactions, rollbacks and rows written per second
           (pg_stat_database); the mean statement time (pg_stat_statements,
           when installed); lock waiters on the tables; replica lag.

It prints one line per tick: a compact summary (--format text), or one JSON
object (--format json; the fields are described in the README, "Watching
locks and latency"). It runs until --count ticks, --duration, or Ctrl-C.
Its own connections are named "cutover monitor" and left out of what it
shows.

Exit codes: 0 stopped as asked; 2 bad input or no connection (one line on
stderr).`,
		Example: `  cutover watch --table rental --db postgres://app@db.internal/shop
  cutover watch --table rental,payment --interval 500ms --format json --duration 10m > watch.jsonl`,
		Args:                  cobra.NoArgs,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.tables, "table", nil, "the `TABLE`s to watch (comma-separated or repeated; schema.table or as on the search_path)")
	fl.StringVar(&f.dbURL, "db", "", "the database `URL` (\"\" or absent: DATABASE_URL or the PG* variables)")
	fl.DurationVar(&f.interval, "interval", time.Second, "time between ticks (at least 100ms)")
	fl.DurationVar(&f.probeTimeout, "probe-timeout", 0, "lock and statement timeout of the canary read (default the smaller of 500ms and half the interval)")
	fl.StringVar(&f.format, "format", "text", "output `FORMAT`: text or json (one object per line)")
	fl.IntVar(&f.count, "count", 0, "stop after `N` ticks (0: no limit)")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (0: no limit)")
	return cmd
}

func runWatch(cmd *cobra.Command, f *watchFlags) error {
	var tables []string
	for _, t := range f.tables {
		if t = strings.TrimSpace(t); t != "" {
			tables = append(tables, t)
		}
	}
	if len(tables) == 0 {
		return errors.New("no table to watch: give one or more with --table T[,T...]")
	}
	if f.interval < monitor.MinInterval {
		return fmt.Errorf("--interval %s is too short: use at least %s", f.interval, monitor.MinInterval)
	}
	if f.probeTimeout < 0 || (f.probeTimeout != 0 && f.probeTimeout >= f.interval) {
		return fmt.Errorf("--probe-timeout %s must be positive and shorter than --interval %s", f.probeTimeout, f.interval)
	}
	if f.count < 0 {
		return fmt.Errorf("--count %d: give a number of ticks, or 0 for no limit", f.count)
	}
	if f.duration < 0 {
		return fmt.Errorf("--duration %s: give a positive duration, or 0 for no limit", f.duration)
	}
	var write func(io.Writer, monitor.Sample) error
	switch f.format {
	case "text":
		write = func(w io.Writer, s monitor.Sample) error {
			_, err := io.WriteString(w, watchLine(s)+"\n")
			return err
		}
	case "json":
		write = func(w io.Writer, s monitor.Sample) error { return json.NewEncoder(w).Encode(s) }
	default:
		return fmt.Errorf("unknown --format %q: use text or json", f.format)
	}

	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	m, err := monitor.Open(ctx, f.dbURL, tables, monitor.Options{Interval: f.interval, ProbeTimeout: f.probeTimeout})
	if err != nil {
		if errors.Is(err, monitor.ErrUnknownTable) {
			return fmt.Errorf("--table: %w", err)
		}
		if ctx.Err() != nil {
			return nil // interrupted while connecting
		}
		return err
	}
	defer m.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	out := cmd.OutOrStdout()
	var werr error
	n := 0
	for s := range m.Samples() {
		if werr = write(out, s); werr != nil {
			cancel()
			break
		}
		if n++; f.count > 0 && n >= f.count {
			cancel()
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("cannot write the output: %w", werr)
	}
	return nil
}

// watchLine is the text form of a sample: one line, fields separated by
// " | ": time and tick; throughput; probes; lock waits and blockers;
// replicas.
//
//	12:00:01.004 #3 tps 153.2 rb/s 0.0 rows/s 320.5 mean 0.42ms | public.rental 0.31ms (p99 0.90ms) | ...
func watchLine(s monitor.Sample) string {
	var parts []string
	head := s.Time.Format("15:04:05.000") + " #" + strconv.FormatInt(s.Seq, 10)
	if s.Dropped > 0 {
		head += fmt.Sprintf(" (%d dropped)", s.Dropped)
	}
	parts = append(parts, head+" "+latencyText(s.Latency))
	for _, p := range s.Latency.Probes {
		parts = append(parts, probeText(p))
	}
	parts = append(parts, locksText(s.Locks))
	for _, r := range s.Latency.Replicas {
		parts = append(parts, replicaText(r))
	}
	return strings.Join(parts, " | ")
}

func latencyText(l *monitor.LatencySample) string {
	if l.Error != "" && l.Rates == "error" {
		return "stats error: " + l.Error
	}
	var b strings.Builder
	if l.Rates == "ok" {
		fmt.Fprintf(&b, "tps %.1f rb/s %.1f rows/s %.1f", *l.TPS, *l.Rollbacks, *l.RowsWritten)
	} else {
		fmt.Fprintf(&b, "tps (%s)", l.Rates)
	}
	if l.Statements == "ok" {
		fmt.Fprintf(&b, " mean %s", watchDur(*l.MeanExec))
	} else {
		fmt.Fprintf(&b, " mean (%s)", l.Statements)
	}
	if l.LockWaiters > 0 {
		fmt.Fprintf(&b, " waiters %d (oldest %s)", l.LockWaiters, watchDur(l.OldestWaiter))
	}
	if l.Error != "" {
		b.WriteString(" error: " + l.Error)
	}
	return b.String()
}

func probeText(p monitor.Probe) string {
	switch {
	case p.Error != "":
		return p.Table + " probe error: " + p.Error
	case p.TimedOut:
		return fmt.Sprintf("%s TIMEOUT %s (%d/%d timed out)", p.Table, watchDur(p.Last), p.Timeouts, p.N)
	}
	return fmt.Sprintf("%s %s (p50 %s p99 %s max %s)", p.Table, watchDur(p.Last), watchDur(p.P50), watchDur(p.P99), watchDur(p.Max))
}

func locksText(l *monitor.LockSample) string {
	switch {
	case l.Error != "":
		return "locks error: " + l.Error
	case l.Skipped:
		return "locks (skipped: the last read was slow)"
	case len(l.Sessions) == 0:
		return "no locks"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d session%s, %d waiting", len(l.Sessions), watchPlural(len(l.Sessions)), l.Waiting)
	if l.Waiting > 0 {
		fmt.Fprintf(&b, " (oldest %s)", watchDur(l.OldestWait))
	}
	for _, s := range l.Sessions {
		if !s.HeadBlocker {
			continue
		}
		fmt.Fprintf(&b, "; pid %d blocks %s (%s, %s", s.PID, watchPIDs(s.Blocks), watchDash(s.Application), watchDash(s.State))
		if s.XactAge > 0 {
			fmt.Fprintf(&b, ", transaction %s", watchDur(s.XactAge))
		}
		b.WriteString(")")
	}
	for _, t := range l.Traps {
		fmt.Fprintf(&b, "; cutover pid %d waits %s for %s on %s, %d queued behind it", t.PID, watchDur(t.Waiting), t.Mode, t.Table, len(t.Queue))
		if len(t.Queue) > 0 {
			fmt.Fprintf(&b, " (oldest %s)", watchDur(t.OldestQueued))
		}
	}
	return b.String()
}

func replicaText(r monitor.Replica) string {
	s := "replica " + watchDash(r.Name) + " " + r.State
	if r.ReplayLag != nil {
		s += " replay lag " + watchDur(*r.ReplayLag)
	}
	if r.LagBytes != nil {
		s += fmt.Sprintf(" %d bytes behind", *r.LagBytes)
	}
	return s
}

// watchDur formats a duration for the text line: 0.42ms, 12ms, 3.1s.
func watchDur(m monitor.Millis) string {
	d := m.D()
	switch {
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
}

func watchPIDs(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

func watchPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func watchDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
