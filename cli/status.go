package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/db"
)

func newStatusCmd() *cobra.Command {
	var planFile, dbURL string
	cmd := &cobra.Command{
		Use:   "status --plan FILE [--db URL]",
		Short: "Show where a plan's run stands on a database",
		Long: `Status reads the run of the plan from the database's "cutover" schema and
prints its status, who started it, each step's state (attempts, duration,
gate, backfill progress), the application releases, and the session
applying it now, if any. It changes nothing.

Exit codes: 0 shown (also when the plan was never applied there); 2 bad
input (flags, plan file, connection).`,
		Args:                  cobra.NoArgs,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
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
			_, err = cmd.OutOrStdout().Write([]byte(r.Text()))
			return err
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan `FILE`")
	cmd.Flags().StringVar(&dbURL, "db", "", "the database `URL` (default DATABASE_URL, else the PG* variables and ~/.pgpass)")
	return cmd
}

func contextOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
