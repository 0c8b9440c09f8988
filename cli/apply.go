package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/monitor"
	"github.com/cutover/cutover/plans"
)

// applyFlags are the flags of cutover apply and cutover rollback.
type applyFlags struct {
	plan                string
	dbURL               string
	through             string
	yes                 bool
	confirmIrreversible []string
	observe             time.Duration
	noUsageCheck        bool
	skipTriggers        bool
	lockTimeout         time.Duration
	maxAttempts         int
	maxRetryTime        time.Duration
	batchSize           int
	// backfillWorkers: sessions of a keyed backfill (0: the default).
	backfillWorkers int
	batchGap        time.Duration
	// The adaptive backfill (apply only; rollback leaves them zero).
	throttle        db.ThrottleConfig
	noThrottle      bool
	monitorInterval time.Duration
}

const applyExitCodes = `Exit codes: 0 done, stopped at --through, or waiting for an application
release; 1 a step failed, a gate did not pass, the usage check found use,
retries ran out, or interrupted (the state says where; apply again resumes);
2 refused (bad flags or plan, a plan that differs from the run in the
database, a confirmation missing, nothing was done); 3 another session is
applying this plan or one of its tables (the message names it).`

func newApplyCmd() *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "apply --plan FILE [--db URL] [--through expand|migrate|contract] [--yes] [--confirm-irreversible TABLE] [--observe DURATION]",
		Short: "Run a plan's database steps on a live database, safely and resumably",
		Long: `Apply runs the database steps of a plan (cutover plan --format json) in order
and stops at each application release with what to deploy. Run it again
when the release is out everywhere: that confirms it and goes on (--yes
confirms releases without stopping, for pipelines that deploy in between).
The confirmation time is recorded: it is the baseline of the usage check.

Lock safety: every statement runs with lock_timeout (--lock-timeout, 250ms):
a DDL that waits for its lock makes every later query on the table queue
behind it, so it gives up quickly instead and is retried with exponential
backoff and full jitter (first wait up to 250ms, doubling, at most 30s),
on SQLSTATE 55P03 (lock_timeout) and 40P01 (deadlock) only, within
--max-attempts and --max-retry-time; each retry is printed with who held
the lock. statement_timeout: 5s for catalog-only statements (ADD COLUMN
without default, triggers, renames, swaps), 5s per backfill batch
statement, none for index builds, validations, rewrites and gates.
A transactional step and the state row marking it done commit together.

Resume: kill cutover at any moment and run apply again; it resumes at the
first unfinished step. A step outside a transaction block (CREATE INDEX
CONCURRENTLY) checks the catalog first: a valid index is kept, an INVALID
one is dropped concurrently and built again. A backfill resumes after its
last committed batch (with --backfill-workers, each key range after its
own last committed batch).

Backfills: keyset batches (one range UPDATE per transaction, idempotent,
with its checkpoint), run by --backfill-workers sessions (default 6) over
disjoint ranges of the key, each session looping over its batches on the
server (a procedure in its pg_temp; --batch-gap of idle after each batch)
and reporting to cutover a few times a second; the batch size adapts to
--batch-target, and all workers slow down,
pause and run fewer at once while the application suffers (lock waiters,
--latency-budget, replica lag). A batch that fails on a value (a cast
that cannot convert a row) names the key range: fix the rows and apply
again.

State lives in the target database, schema "cutover" (created on first
use): runs, steps, every executed statement (cutover.statements; a keyed
backfill's committed batches are counted in their key range's checkpoint
instead, cutover.backfill_ranges), backfill checkpoints, application
release confirmations, usage baselines, notes.

Usage check: before a step that removes a column, table or view (the old
name of a rename, the dropped column), cutover reads pg_stat_statements
(statements that reference the name, parsed) and, for a table,
pg_stat_user_tables scan and write counters, since the application release
was confirmed, and waits until the name has been unused for --observe
(default 10m; use more when nightly or weekly jobs may use the old name;
--observe 0 checks once: unused goes on, used stops with exit 1). It needs
pg_stat_statements in the database (--no-usage-check skips the check).

Irreversible steps (a dropped column's data, a type change's swap) run
only with --confirm-irreversible naming the step's table.

` + applyExitCodes,
		Example: `  cutover plan --db "$DATABASE_URL" --sql "ALTER TABLE customer RENAME COLUMN email TO email_address" --format json -o rename.json
  cutover apply --plan rename.json --db "$DATABASE_URL"             # runs expand + migrate, stops at the app release
  cutover apply --plan rename.json --db "$DATABASE_URL"             # after the release: confirms it, checks usage, swaps
  cutover apply --plan type.json --through expand
  cutover apply --plan drop.json --confirm-irreversible public.customer --observe 30m`,
		Args:                  cobra.NoArgs,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApply(cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.plan, "plan", "", "the plan `FILE` (cutover plan --format json)")
	fl.StringVar(&f.dbURL, "db", "", "the database `URL` (default DATABASE_URL, else the PG* variables and ~/.pgpass)")
	fl.StringVar(&f.through, "through", "", "stop after the last deploy of `PHASE` (expand, migrate or contract); default the whole plan")
	fl.BoolVar(&f.yes, "yes", false, "confirm application releases without stopping at them")
	fl.StringSliceVar(&f.confirmIrreversible, "confirm-irreversible", nil, "allow the irreversible steps on `TABLE` (repeatable; schema.table, table, or the step id of one that locks no table)")
	fl.DurationVar(&f.observe, "observe", db.DefaultObserve, "usage check: how long a removed name must have been unused before it is removed (0 checks once)")
	fl.BoolVar(&f.noUsageCheck, "no-usage-check", false, "run removals without the usage check (when pg_stat_statements is not available)")
	fl.BoolVar(&f.skipTriggers, "skip-triggers", false, "backfill batches skip the table's triggers (session_replication_role = replica in each batch; needs the privilege); default: they fire")
	addLockFlags(cmd, &f)
	fl.IntVar(&f.batchSize, "batch-size", db.DefaultBatchSize, "backfill: keys of the first batch (of every batch with --no-throttle)")
	fl.IntVar(&f.backfillWorkers, "backfill-workers", db.DefaultBackfillWorkers, "backfill: sessions running batches at once over disjoint key ranges, each range with its own checkpoint (1: one keyset walk; a table without a key always gets one); the throttle runs fewer while the application suffers")
	addThrottleFlags(cmd, &f)
	return cmd
}

// addThrottleFlags adds the adaptive backfill's thresholds.
func addThrottleFlags(cmd *cobra.Command, f *applyFlags) {
	d := db.DefaultThrottle()
	fl := cmd.Flags()
	fl.DurationVar(&f.throttle.TargetBatch, "batch-target", d.TargetBatch, "backfill: how long one batch should take; the batch size adapts to it (a batch holds its rows' locks that long)")
	fl.DurationVar(&f.throttle.LatencyBudget, "latency-budget", d.LatencyBudget, "backfill: slow down (half batches, 50% duty cycle) while the canary probe on the table is slower than this (0: off)")
	fl.IntVar(&f.throttle.MaxLockWaiters, "max-lock-waiters", d.MaxLockWaiters, "backfill: pause while more application sessions than this wait longer than --max-lock-wait for a lock cutover holds (-1: off)")
	fl.DurationVar(&f.throttle.MaxLockWait, "max-lock-wait", d.MaxLockWait, "backfill: a wait for a lock cutover holds longer than this counts as the application suffering")
	fl.DurationVar(&f.throttle.MaxReplicaLag, "max-replica-lag", d.MaxReplicaLag, "backfill: pause while a replica lags more than this (0: off)")
	fl.Int64Var(&f.throttle.MaxReplicaLagBytes, "max-replica-lag-bytes", d.MaxReplicaLagBytes, "backfill: pause while a replica is more than this many WAL bytes behind (0: off)")
	fl.DurationVar(&f.batchGap, "batch-gap", db.DefaultBatchGap, "backfill: idle time each worker leaves after each batch, so the application's queries find a free core (0: none)")
	fl.IntVar(&f.throttle.MinBatch, "min-batch", d.MinBatch, "backfill: smallest batch (keys)")
	fl.IntVar(&f.throttle.MaxBatch, "max-batch", d.MaxBatch, "backfill: largest batch (keys)")
	fl.DurationVar(&f.throttle.MaxPause, "max-pause", d.MaxPause, "backfill: longest automatic pause while the application suffers (pauses start at 250ms and double)")
	fl.BoolVar(&f.noThrottle, "no-throttle", false, "backfill: batches of --batch-size back to back, no adaptation, no monitor")
	fl.DurationVar(&f.monitorInterval, "monitor-interval", 250*time.Millisecond, "backfill: how often the lock waiters, probe latency and replica lag are sampled")
}

// addLockFlags adds the lock-safety flags apply and rollback share.
func addLockFlags(cmd *cobra.Command, f *applyFlags) {
	fl := cmd.Flags()
	fl.DurationVar(&f.lockTimeout, "lock-timeout", db.DefaultLockTimeout, "lock_timeout of every statement: the longest the application may queue behind cutover's DDL")
	fl.IntVar(&f.maxAttempts, "max-attempts", db.DefaultMaxAttempts, "attempts of one step (or backfill batch) on lock conflicts before giving up")
	fl.DurationVar(&f.maxRetryTime, "max-retry-time", db.DefaultMaxRetryTime, "time one step may spend retrying lock conflicts before giving up")
}

func (f *applyFlags) options(w io.Writer) (db.ApplyOptions, error) {
	if f.lockTimeout <= 0 {
		return db.ApplyOptions{}, errors.New("--lock-timeout must be positive (e.g. 250ms): without it a DDL can stall the application")
	}
	if f.maxAttempts < 1 {
		return db.ApplyOptions{}, errors.New("--max-attempts must be at least 1")
	}
	if f.maxRetryTime <= 0 {
		return db.ApplyOptions{}, errors.New("--max-retry-time must be positive")
	}
	if f.observe < 0 {
		return db.ApplyOptions{}, errors.New("--observe must not be negative")
	}
	if f.batchSize < 1 {
		return db.ApplyOptions{}, errors.New("--batch-size must be at least 1")
	}
	if f.backfillWorkers < 0 || f.backfillWorkers > db.MaxBackfillWorkers {
		return db.ApplyOptions{}, fmt.Errorf("--backfill-workers must be between 1 and %d", db.MaxBackfillWorkers)
	}
	if f.batchGap < 0 || f.batchGap > time.Second {
		return db.ApplyOptions{}, fmt.Errorf("--batch-gap must be between 0 and 1s (got %s)", f.batchGap)
	}
	switch f.through {
	case "", "expand", "migrate", "contract":
	default:
		return db.ApplyOptions{}, fmt.Errorf("unknown --through %q: use expand, migrate or contract", f.through)
	}
	if f.throttle.TargetBatch != 0 && !f.noThrottle {
		f.throttle.InitialBatch = f.batchSize
		f.throttle.PauseStep = db.DefaultPauseStep
		if err := f.throttle.Check(); err != nil {
			return db.ApplyOptions{}, err
		}
		if f.monitorInterval < 100*time.Millisecond {
			return db.ApplyOptions{}, errors.New("--monitor-interval must be at least 100ms")
		}
	}
	return db.ApplyOptions{
		Through:             plans.PhaseName(f.through),
		ConfirmApps:         f.yes,
		ConfirmIrreversible: f.confirmIrreversible,
		Observe:             f.observe,
		NoUsageCheck:        f.noUsageCheck,
		SkipTriggers:        f.skipTriggers,
		LockTimeout:         f.lockTimeout,
		MaxAttempts:         f.maxAttempts,
		MaxRetryTime:        f.maxRetryTime,
		BatchSize:           f.batchSize,
		BackfillWorkers:     f.backfillWorkers,
		BatchGap:            f.batchGap,
		OnEvent:             headless(w),
	}, nil
}

// readPlan reads and decodes --plan FILE.
func readPlan(path string) (*plans.Plan, error) {
	if path == "" {
		return nil, errors.New("no plan: give it with --plan FILE (cutover plan --format json -o FILE writes one)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read --plan %s: %w", path, pathErr(err))
	}
	p, err := plans.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("--plan %s: %w", path, err)
	}
	return p, nil
}

// signalContext is cancelled by SIGINT or SIGTERM: the running statement is
// cancelled, the state records where the run stopped.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func runApply(cmd *cobra.Command, f *applyFlags) error {
	if f.backfillWorkers < 1 {
		return fmt.Errorf("--backfill-workers must be between 1 and %d", db.MaxBackfillWorkers)
	}
	opts, err := f.options(cmd.OutOrStdout())
	if err != nil {
		return err
	}
	p, err := readPlan(f.plan)
	if err != nil {
		return err
	}
	opts.Pause = db.NewPauseSwitch()
	ctx, stop := pauseContext(cmd, opts.Pause)
	defer stop()
	if tables := backfillTables(p); len(tables) > 0 && !f.noThrottle {
		// The adaptive backfill's signals come from the monitor of cutover
		// watch, sampling the tables the backfills change.
		feed, stopFeed, err := monitor.StartSignalFeed(ctx, f.dbURL, tables, monitor.Options{Interval: f.monitorInterval})
		switch {
		case err == nil:
			defer stopFeed()
			opts.Pacer = db.NewAdaptivePacer(f.throttle, feed.Signals)
		case errors.Is(err, monitor.ErrUnknownTable):
			// A table the plan creates: batch durations only.
			fmt.Fprintf(cmd.OutOrStdout(), "note: backfills adapt to --batch-target only (no lock or latency signals): %v\n", err)
			opts.Pacer = db.NewAdaptivePacer(f.throttle, nil)
		default:
			var ce *db.ConnectError
			if errors.As(err, &ce) {
				return err
			}
			return fmt.Errorf("starting the backfill monitor: %w", err)
		}
	}
	e, err := db.Open(ctx, f.dbURL, p, opts)
	if err != nil {
		return engineError(err)
	}
	defer e.Close()
	out, err := e.Apply(ctx)
	if err != nil {
		return engineError(err)
	}
	if out.Status == "waiting" {
		fmt.Fprintf(cmd.OutOrStdout(), "stopped: waiting for application release %d; run `cutover apply --plan %s` again once it is deployed everywhere\n", out.WaitingDeploy, f.plan)
	}
	return nil
}

// backfillTables lists the tables of the plan's backfills that exist
// before the plan runs (a table the plan creates has none to watch yet).
func backfillTables(p *plans.Plan) []string {
	var out []string
	for _, ph := range p.Phases {
		for _, d := range ph.Deploys {
			for _, s := range d.Steps {
				if s.Backfill != nil && !slices.Contains(out, s.Backfill.Table) {
					out = append(out, s.Backfill.Table)
				}
			}
		}
	}
	return out
}

// pauseContext handles signals during apply: SIGTERM stops the run (the
// running statement is cancelled, the state records where it stopped);
// SIGINT during a backfill pauses it after the current batch, SIGUSR1
// resumes it, and a second SIGINT stops the run. Outside a backfill SIGINT
// stops the run at once.
func pauseContext(cmd *cobra.Command, ps *db.PauseSwitch) (context.Context, context.CancelFunc) {
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGUSR1)
	w := cmd.ErrOrStderr()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-ch:
				switch {
				case sig == syscall.SIGUSR1:
					if ps.Paused() {
						fmt.Fprintln(w, "resuming the backfill")
						ps.Resume()
					}
				case sig == os.Interrupt && ps.InBackfill() && !ps.Paused():
					fmt.Fprintf(w, "pausing the backfill after its current batch; interrupt again to stop, or `kill -USR1 %d` to resume\n", os.Getpid())
					ps.Pause()
				default:
					cancel()
					return
				}
			}
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// engineError maps engine errors to exit codes.
func engineError(err error) error {
	var ae *db.ApplyError
	if errors.As(err, &ae) {
		switch ae.Kind {
		case db.Busy:
			return &exitError{code: ExitBusy, err: err}
		case db.Refused:
			return err // ExitBadInput
		}
		return &exitError{code: ExitFindings, err: err}
	}
	var ce *db.ConnectError
	if errors.As(err, &ce) {
		return err
	}
	return &exitError{code: ExitFindings, err: err}
}

// headless prints one line per event; backfill progress at most every two
// seconds per step (and its last line).
func headless(w io.Writer) func(db.ApplyEvent) {
	last := map[string]time.Time{}
	why := map[string]string{}
	return func(ev db.ApplyEvent) {
		if b := ev.Backfill; ev.Kind == db.EventBackfillProgress && b != nil && !b.Done && !b.Paused {
			// A change of throttling state prints at once (its reason
			// without the measured values, which change every batch).
			state, _, _ := strings.Cut(b.Throttled, ":")
			if t, ok := last[ev.StepID]; ok && ev.Time.Sub(t) < 2*time.Second && state == why[ev.StepID] {
				return
			}
			last[ev.StepID], why[ev.StepID] = ev.Time, state
		}
		fmt.Fprintln(w, ev.String())
		for _, in := range ev.Instructions {
			fmt.Fprintln(w, "    - "+strings.Join(strings.Fields(in), " "))
		}
	}
}
