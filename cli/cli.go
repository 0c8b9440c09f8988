// Package cli wires cutover's commands (cobra) to the planner and the plan
// renderers. It owns the user-facing contract of the binary: flags, output
// formats, exit codes, and one-line errors on stderr.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of the cutover binary.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitFindings: the command ran and found problems (checks; later).
	ExitFindings = 1
	// ExitBadInput: the input could not be used (flags, files, SQL,
	// schema); stderr has one line saying why and stdout is empty.
	ExitBadInput = 2
	// ExitBusy: another run holds the lock (apply; later).
	ExitBusy = 3
)

// exitError carries an exit code other than ExitBadInput.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Run runs the cutover command line with args (without the program name)
// and returns the process exit code. Errors are printed to stderr as one
// line, "cutover: ...", never with a usage dump.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer, sample Sample) int {
	root := newRoot(sample)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	code := ExitBadInput
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintln(stderr, "cutover: "+oneLine(err.Error()))
	return code
}

// Sample is the schema the terminal UI plans against when no --schema is
// given: the bundled pagila sample, embedded by package main.
type Sample struct {
	// Source names it in plans ("pagila sample").
	Source string
	// Dump is pg_dump --schema-only output.
	Dump string
	// Data is the sample's data (pg_dump --data-only output), which
	// cutover demo loads; "" when the build has none.
	Data string
	// License is the sample's licence, which its copies must carry
	// (cutover demo --license prints it).
	License string
}

func newRoot(sample Sample) *cobra.Command {
	root := &cobra.Command{
		Use:   "cutover",
		Short: "Zero-downtime PostgreSQL schema changes: naive DDL in, an expand/migrate/contract plan out",
		Long: `cutover turns a naive schema change (ALTER TABLE users RENAME COLUMN email TO
email_address) into an expand / migrate / contract plan: database steps that
keep the application running, and the application releases in between.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(newPlanCmd(), newCheckCmd())
	root.AddCommand(newApplyCmd(), newStatusCmd(), newRollbackCmd(), newExportCmd())
	root.AddCommand(newWatchCmd())
	root.AddCommand(newDemoCmd(sample))
	addTUI(root, sample)
	return root
}

// oneLine keeps an error to one line: cobra appends suggestions after a
// blank line ("Did you mean this?"), which are dropped; any other line
// break (SQL quoted in a message) becomes a space.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n\n")
	return strings.Join(strings.Fields(s), " ")
}
