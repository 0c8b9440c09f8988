package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/db"
)

func newExportCmd() *cobra.Command {
	var planFile, dbURL, format, output string
	cmd := &cobra.Command{
		Use:   "export --plan FILE [--db URL] --format md [-o FILE]",
		Short: "Write the runbook with an \"as executed\" record of the run",
		Long: `Export writes the plan's Markdown runbook followed by an "As executed"
section read from the database: the run (who, from where, when, status),
each step's attempts and timings, the application release confirmations,
usage checks, and every statement cutover executed with its lock_timeout,
statement_timeout, duration, lock wait and outcome (backfill batches
summarized). Passwords never appear in it.

Exit codes: 0 written; 2 bad input (flags, plan file, connection).`,
		Args:                  cobra.NoArgs,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "md" {
				return fmt.Errorf("unknown --format %q: export writes md (a Markdown runbook with the as-executed record)", format)
			}
			if output != "" {
				if err := checkOutputPath(output); err != nil {
					return err
				}
			}
			p, err := readPlan(planFile)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(contextOf(cmd), time.Minute)
			defer cancel()
			r, err := db.ReadRun(ctx, dbURL, p)
			if err != nil {
				return engineError(err)
			}
			md := []byte(db.ExportMarkdown(r))
			if output != "" {
				return writeFileAtomic(output, md)
			}
			_, err = cmd.OutOrStdout().Write(md)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&planFile, "plan", "", "the plan `FILE`")
	fl.StringVar(&dbURL, "db", "", "the database `URL` (default DATABASE_URL, else the PG* variables and ~/.pgpass)")
	fl.StringVar(&format, "format", "md", "output `FORMAT`: md")
	fl.StringVarP(&output, "output", "o", "", "write to `FILE` (atomically) instead of standard output")
	return cmd
}
