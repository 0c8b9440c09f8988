package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/monitor"
	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/tui"
)

// tuiFlags are the flags of cutover without a subcommand.
type tuiFlags struct {
	schemaFile string
	sql        string
	// Live: --db URL opens the TUI on the database, --plan FILE with a
	// plan file (to resume its run); the engine's settings are apply's.
	dbURL    string
	planFile string
	apply    applyFlags
}

// addTUI makes cutover without a subcommand open the terminal UI,
// offline against --schema FILE or the bundled pagila sample.
func addTUI(root *cobra.Command, sample Sample) {
	var f tuiFlags
	root.Use = "cutover [--schema FILE | --db URL [--plan FILE]] [--sql \"...\"]"
	root.Long += `

Without a command, cutover opens its terminal UI: write the change, review
the plan step by step, export the runbook. It plans offline against
--schema FILE (pg_dump --schema-only output), or the bundled pagila sample
schema when none is given. With --db URL it plans against the live
database and runs the plan there, one deploy per key press, with the lock
and latency panes (--db "" takes DATABASE_URL or the PG* variables). The
database keeps the plan of each run with it: the compose screen lists the
runs in progress and resumes one with ctrl+o, at the deploy it goes on
with. --plan FILE opens a plan file (cutover plan -o FILE) to run it.
It needs a terminal.`
	root.Args = cobra.NoArgs
	root.RunE = func(cmd *cobra.Command, args []string) error {
		return runTUI(cmd, &f, sample)
	}
	fl := root.Flags()
	fl.StringVar(&f.schemaFile, "schema", "", "plan against the schema dump in `FILE` (default: the bundled pagila sample)")
	fl.StringVar(&f.sql, "sql", "", "start with `SQL` in the editor")
	fl.StringVar(&f.dbURL, "db", "", "plan against and run on the live database at `URL` (\"\" for DATABASE_URL or the PG* variables)")
	fl.StringVar(&f.planFile, "plan", "", "with --db: open the plan `FILE` (cutover plan --format json -o FILE) to run or resume it")
	fl.DurationVar(&f.apply.observe, "observe", db.DefaultObserve, "usage check: how long a removed name must have been unused before it is removed (0 checks once)")
	fl.BoolVar(&f.apply.noUsageCheck, "no-usage-check", false, "run removals without the usage check (when pg_stat_statements is not available)")
	addLockFlags(root, &f.apply)
}

func runTUI(cmd *cobra.Command, f *tuiFlags, sample Sample) error {
	if cmd.Flags().Changed("db") {
		return runTUILive(cmd, f)
	}
	if f.planFile != "" {
		return errors.New("--plan needs --db URL: a plan is opened to run it on its database (cutover plan prints one offline)")
	}
	in, out := cmd.InOrStdin(), cmd.OutOrStdout()
	if !isTerminal(in) {
		return errors.New("the terminal UI needs a terminal on standard input; in scripts use cutover plan (see cutover --help)")
	}
	source, dump := sample.Source, sample.Dump
	if f.schemaFile != "" {
		b, err := os.ReadFile(f.schemaFile)
		if err != nil {
			return fmt.Errorf("cannot read --schema %s: %w", f.schemaFile, pathErr(err))
		}
		source, dump = "schema file "+f.schemaFile, string(b)
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	backend := tui.NewOfflineBackend(source, dump)
	// Parse now, so a bad dump is one line before the screen is taken.
	if _, err := backend.Schema(ctx); err != nil {
		return fmt.Errorf("--schema %w", err)
	}
	// The renderer takes its colour profile from the output and the
	// environment: NO_COLOR turns colours off. The terminal's background
	// is asked for now, before the UI reads the input, so its answer is
	// never taken for keys.
	r := lipgloss.NewRenderer(out)
	r.HasDarkBackground()
	m := tui.New(tui.Options{
		Backend:  backend,
		Renderer: r,
		SQL:      f.sql,
		Context:  ctx,
	})
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithInput(in), tea.WithOutput(out), tea.WithContext(ctx))
	if _, err := p.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		return fmt.Errorf("terminal UI: %w", err)
	}
	return nil
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// runTUILive opens the TUI on --db URL.
func runTUILive(cmd *cobra.Command, f *tuiFlags) error {
	if f.schemaFile != "" {
		return errors.New("give the schema in one way only: --schema FILE or --db URL")
	}
	f.apply.batchSize = db.DefaultBatchSize // the TUI has no --batch-size
	opts, err := f.apply.options(io.Discard)
	if err != nil {
		return err
	}
	var p *plans.Plan
	if f.planFile != "" {
		if p, err = readPlan(f.planFile); err != nil {
			return err
		}
	}
	tune := func(b *tui.LiveBackend) {
		b.Options.Observe = opts.Observe
		b.Options.NoUsageCheck = opts.NoUsageCheck
		b.Options.LockTimeout = opts.LockTimeout
		b.Options.MaxAttempts = opts.MaxAttempts
		b.Options.MaxRetryTime = opts.MaxRetryTime
	}
	return runLiveTUI(cmd, f.dbURL, liveTUI{SQL: f.sql, Plan: p, Tune: tune})
}

// liveTUI says how to open the terminal UI on a live database.
type liveTUI struct {
	// SQL is put in the editor; Plan, when set, is opened on the review
	// screen (its input goes in the editor).
	SQL  string
	Plan *plans.Plan
	// Tune, when not nil, adjusts the engine's settings (b.Options)
	// before the screen opens.
	Tune func(*tui.LiveBackend)
}

// runLiveTUI opens the terminal UI on the live database at dbURL (cutover
// --db, cutover demo). Connection errors are one line without the
// password (exit 2). SIGINT and SIGTERM stop it: a running deploy is
// interrupted, its state recorded, and the run stays resumable.
func runLiveTUI(cmd *cobra.Command, dbURL string, o liveTUI) error {
	in, out := cmd.InOrStdin(), cmd.OutOrStdout()
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Connect (and read the schema) first: a bad URL or a server that is
	// down is one line before anything else.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	b, err := tui.NewLiveBackend(cctx, dbURL)
	cancel()
	if err != nil {
		return err
	}
	if o.Tune != nil {
		o.Tune(b)
	}
	if !isTerminal(in) {
		return errors.New("the terminal UI needs a terminal on standard input; in scripts use cutover plan and cutover apply (see cutover --help)")
	}
	mon := tui.NewLiveMonitor(b.URL(), monitor.Options{})
	defer mon.Close()
	r := lipgloss.NewRenderer(out)
	r.HasDarkBackground()
	m := tui.New(tui.Options{
		Backend:  b,
		Renderer: r,
		SQL:      o.SQL,
		Context:  ctx,
		Monitor:  mon,
		Plan:     o.Plan,
	})
	// The context handles the signals (bubbletea's own handler would
	// race it: see h7c's note on v1.3.10); ctrl+c is a key in raw mode.
	prog := tea.NewProgram(m, tea.WithAltScreen(), tea.WithInput(in), tea.WithOutput(out), tea.WithContext(ctx), tea.WithoutSignalHandler())
	_, err = prog.Run()
	// Killed by a signal mid-deploy: the engine's context is cancelled
	// too; give it the time to record where the run stopped.
	if !m.WaitRun(15 * time.Second) {
		fmt.Fprintln(cmd.ErrOrStderr(), "cutover: the engine did not stop in time; the run resumes from its last recorded step")
	}
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		return fmt.Errorf("terminal UI: %w", err)
	}
	return nil
}
