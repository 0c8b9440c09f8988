package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/db"
)

func newRollbackCmd() *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "rollback --plan FILE [--db URL] [--yes]",
		Short: "Undo the steps a plan's run has done, last first, back to the start",
		Long: `Rollback runs the rollback SQL of every step the run has done, in reverse
order, with the same lock safety as apply (lock_timeout, retries with
backoff, one short transaction per step with its state update).

It refuses, before undoing anything, when an irreversible step has run
(exit 2): what it removed is gone, and a partial rollback would leave a
shape no release expects.

When an application release of the plan was confirmed, the release that
preceded the plan must be running again before the schema goes back:
rollback stops and says so (exit 0); run it again to confirm, or pass --yes.

` + applyExitCodes,
		Args:                  cobra.NoArgs,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.observe, f.batchSize = 0, db.DefaultBatchSize
			opts, err := f.options(cmd.OutOrStdout())
			if err != nil {
				return err
			}
			p, err := readPlan(f.plan)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd)
			defer stop()
			e, err := db.Open(ctx, f.dbURL, p, opts)
			if err != nil {
				return engineError(err)
			}
			defer e.Close()
			out, err := e.Rollback(ctx)
			if err != nil {
				return engineError(err)
			}
			if out.Status == "waiting" {
				fmt.Fprintf(cmd.OutOrStdout(), "stopped: run `cutover rollback --plan %s` again once the previous release is deployed everywhere\n", f.plan)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.plan, "plan", "", "the plan `FILE` the run used")
	fl.StringVar(&f.dbURL, "db", "", "the database `URL` (default DATABASE_URL, else the PG* variables and ~/.pgpass)")
	fl.BoolVar(&f.yes, "yes", false, "confirm that the application release that preceded the plan is deployed again")
	addLockFlags(cmd, &f)
	return cmd
}
