package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/demo"
	"github.com/cutover/cutover/tui"
)

// demoFlags are the flags of cutover demo.
type demoFlags struct {
	rows       int
	noWorkload bool
	keep       bool
	printURL   bool
	rate       int
	sql        string
	observe    time.Duration
	license    bool
}

func newDemoCmd(sample Sample) *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo [--rows N] [--no-workload] [--keep | --print-url]",
		Short: "Try cutover on a throwaway PostgreSQL with a live workload",
		Long: `cutover demo starts a throwaway PostgreSQL server (in a temporary directory,
listening on 127.0.0.1 only), loads the pagila sample database with a table
public.customer_event of about a million rows, runs a small application
workload against it in the background, and opens the terminal UI on it with a
change ready to plan:

  ` + demo.Change + `

The locks and latency panes show the workload's real locks and latency while
you step through the plan. The workload writes the column under its old name
until you confirm the application release, then under its new name.

When the terminal UI exits (or on Ctrl-C, SIGTERM, SIGHUP or a crash) the workload and
the server are stopped and the directory is removed: nothing is left behind.

--print-url runs the demo database without the terminal UI, for scripts and
tests: it prints the database's URL on standard output and runs until SIGINT
or SIGTERM. The server uses trust authentication on loopback: the URL holds
no password.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd, &f, sample)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.rows, "rows", demo.DefaultRows, "`N` rows in public.customer_event, 1000 to 100000000")
	fl.BoolVar(&f.noWorkload, "no-workload", false, "run no application workload")
	fl.IntVar(&f.rate, "rate", 200, "the workload's rate, in transactions a second (`TPS`)")
	fl.StringVar(&f.sql, "sql", demo.Change, "start with `SQL` in the editor instead of the ready-made rename")
	fl.DurationVar(&f.observe, "observe", 30*time.Second, "how long (`DURATION`) a removed name must be unused after the application release before the step removing it runs (cutover apply: 10m)")
	fl.BoolVar(&f.keep, "keep", false, "after the terminal UI exits, keep the database running until Ctrl-C and print its URL")
	fl.BoolVar(&f.license, "license", false, "print the pagila sample's licence and exit")
	fl.BoolVar(&f.printURL, "print-url", false, "no terminal UI: print the database URL and run until SIGINT or SIGTERM")
	return cmd
}

func runDemo(cmd *cobra.Command, f *demoFlags, sample Sample) error {
	in, out, errOut := cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.license {
		if sample.License == "" {
			return errors.New("this build of cutover has no pagila sample: build it with go build from the repository root")
		}
		_, err := io.WriteString(out, sample.License)
		return err
	}
	switch {
	case f.keep && f.printURL:
		return errors.New("--keep and --print-url do not go together: --print-url already keeps the database running until SIGINT or SIGTERM")
	case f.rows < 1000 || f.rows > 100_000_000:
		return fmt.Errorf("--rows %d is out of range: give between 1000 and 100000000 rows", f.rows)
	case f.observe < 0:
		return fmt.Errorf("--observe %s is negative: give a duration such as 30s, or 0 to look once", f.observe)
	case f.rate < 1 || f.rate > 100_000:
		return fmt.Errorf("--rate %d is out of range: give between 1 and 100000 transactions a second", f.rate)
	case !f.printURL && !isTerminal(in):
		return errors.New("cutover demo opens the terminal UI and needs a terminal on standard input; for a headless demo database use cutover demo --print-url")
	case sample.Dump == "" || sample.Data == "":
		return errors.New("this build of cutover has no pagila sample to load: build it with go build from the repository root")
	}
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, stopSignals := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stopSignals()

	fmt.Fprintf(errOut, "cutover demo: the pagila sample database, %s (cutover demo --license prints its licence)\n", copyrightLine(sample.License))
	d, err := demo.Start(ctx, demo.Options{
		Schema:     sample.Dump,
		Data:       sample.Data,
		Rows:       f.rows,
		NoWorkload: f.noWorkload,
		Workload:   demo.WorkloadOptions{Rate: f.rate},
		Progress:   &prefixed{w: errOut},
	})
	if err != nil {
		if ctx.Err() != nil && parent.Err() == nil {
			return errors.New("interrupted while starting the demo database; nothing was left behind")
		}
		return err
	}
	// Deferred, so a panic of the terminal UI stops the cluster too (and
	// the cluster's watchdog does if the process is killed).
	defer func() {
		dir := d.Cluster.Dir
		stats := d.Workload
		if stopErr := d.Stop(); stopErr != nil {
			fmt.Fprintln(errOut, "cutover demo: "+oneLine(stopErr.Error()))
			return
		}
		if stats != nil {
			st := stats.Stats()
			fmt.Fprintf(errOut, "cutover demo: workload stopped after %d transactions (%d failed)\n", st.Transactions, st.Errors)
		}
		fmt.Fprintf(errOut, "cutover demo: server stopped, %s removed\n", dir)
	}()

	if f.printURL {
		fmt.Fprintln(out, d.URL)
		fmt.Fprintln(errOut, "cutover demo: the demo database runs until SIGINT or SIGTERM (Ctrl-C)")
		<-ctx.Done()
		return nil
	}
	cmd.SetContext(ctx)
	err = runLiveTUI(cmd, d.URL, liveTUI{
		SQL:  f.sql,
		Tune: func(b *tui.LiveBackend) { b.Options.Observe = f.observe },
	})
	if err != nil {
		return err
	}
	if f.keep && ctx.Err() == nil {
		fmt.Fprintf(errOut, "cutover demo: the demo database keeps running until Ctrl-C:\n  psql %q\n", d.URL)
		<-ctx.Done()
	}
	return nil
}

// prefixed writes the demo's progress with "cutover demo: " at the start
// of each line (a stage is written as "stage... " then "1.2 s\n").
type prefixed struct {
	w       io.Writer
	midLine bool
}

func (p *prefixed) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if !p.midLine {
		if _, err := io.WriteString(p.w, "cutover demo: "); err != nil {
			return 0, err
		}
	}
	p.midLine = b[len(b)-1] != '\n'
	return p.w.Write(b)
}

// copyrightLine is the licence's copyright line, for the notice the demo
// prints when it starts.
func copyrightLine(license string) string {
	for _, l := range strings.Split(license, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "Copyright") {
			return l
		}
	}
	return "see its licence"
}
