package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/cutover/cutover/tui"
)

// tuiFlags are the flags of cutover without a subcommand.
type tuiFlags struct {
	schemaFile string
	sql        string
}

// addTUI makes cutover without a subcommand open the terminal UI,
// offline against --schema FILE or the bundled pagila sample.
func addTUI(root *cobra.Command, sample Sample) {
	var f tuiFlags
	root.Use = "cutover [--schema FILE] [--sql \"...\"]"
	root.Long += `

Without a command, cutover opens its terminal UI: write the change, review
the plan step by step, export the runbook. It plans offline against
--schema FILE (pg_dump --schema-only output), or the bundled pagila sample
schema when none is given. It needs a terminal.`
	root.Args = cobra.NoArgs
	root.RunE = func(cmd *cobra.Command, args []string) error {
		return runTUI(cmd, &f, sample)
	}
	fl := root.Flags()
	fl.StringVar(&f.schemaFile, "schema", "", "plan against the schema dump in `FILE` (default: the bundled pagila sample)")
	fl.StringVar(&f.sql, "sql", "", "start with `SQL` in the editor")
}

func runTUI(cmd *cobra.Command, f *tuiFlags, sample Sample) error {
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
