package db_test

import (
	"testing"

	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/plans"
)

// The DROP TABLE of a partition starts by detaching it; the rollback of
// that step (a contract step, which the expand-rollback proof does not
// reach) attaches it again with its bound, and removes what the detach
// left: the CHECK constraint DETACH ... CONCURRENTLY adds, the comment the
// bound was saved in.
func TestDetachPartitionRollback(t *testing.T) {
	conn := dbtest.Connect(t, dbtest.Pagila(t))
	before := snapshot(t, conn, nil)
	p := planFor(t, conn, "DROP TABLE payment_p2022_07")
	done := runSteps(t, conn, p, func(ref plans.StepRef) bool { return ref.Step.ID == "C1-detach-partition-payment-p2022-07" })
	if len(done) != 1 {
		t.Fatalf("ran %d steps, want the detach step", len(done))
	}
	var attached bool
	if err := conn.QueryRow(t.Context(), `SELECT relispartition FROM pg_class WHERE oid = 'public.payment_p2022_07'::regclass`).Scan(&attached); err != nil || attached {
		t.Fatalf("after the detach step: relispartition %v, %v", attached, err)
	}
	runSQL(t, conn, done[0].Rollback, true)
	var comment *string
	if err := conn.QueryRow(t.Context(), `SELECT obj_description('public.payment_p2022_07'::regclass, 'pg_class')`).Scan(&comment); err != nil || comment != nil {
		t.Errorf("comment left after the rollback: %v, %v", comment, err)
	}
	compareSnapshots(t, before, snapshot(t, conn, nil))
}
