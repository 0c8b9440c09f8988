package db_test

import (
	"context"
	"testing"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/plans"
)

// A run stopped after its expand phase is listed with the plan stored
// with it (the same SQL no longer plans against the changed schema) and
// the deploy it goes on with; a finished run is not listed.
func TestRunsInProgress(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	ctx := context.Background()

	runs, err := db.RunsInProgress(ctx, url)
	if err != nil || len(runs) != 0 {
		t.Fatalf("no state yet: %+v, %v", runs, err)
	}

	rename := planFor(t, conn, "ALTER TABLE customer RENAME COLUMN email TO email_address;")
	if out, err := applyOnce(t, url, rename, db.ApplyOptions{Through: plans.Expand}); err != nil || out.Status != "through" {
		t.Fatalf("expand: %+v, %v", out, err)
	}
	add := planFor(t, conn, "CREATE INDEX customer_last_update_idx ON customer (last_update);")
	applyToEnd(t, url, add, db.ApplyOptions{})

	runs, err = db.RunsInProgress(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("%d runs in progress, want the rename only: %+v", len(runs), runs)
	}
	r := runs[0]
	if r.PlanID != db.PlanID(rename) || r.PlanErr != nil || r.Plan == nil {
		t.Fatalf("run %+v", r)
	}
	if r.Plan.Hash() != rename.Hash() {
		t.Fatalf("stored plan content %.12s, want %.12s", r.Plan.Hash(), rename.Hash())
	}
	if r.Status != "stopped" || r.NextDeploy != 2 || r.Deploys != 4 || r.Holder != "" || r.StartedBy == "" || r.StartedAt.IsZero() {
		t.Fatalf("run %s next %d/%d holder %q by %q at %v", r.Status, r.NextDeploy, r.Deploys, r.Holder, r.StartedBy, r.StartedAt)
	}
	if r.Input != rename.Input {
		t.Fatalf("input %q", r.Input)
	}
}

// A version 2 state made by an earlier build, without cutover.runs.plan:
// listing works (no plan: the error says to open the plan file) and the
// next engine adds the column and stores the plan.
func TestRunsInProgressUpgradesState(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	ctx := context.Background()
	p := planFor(t, conn, "ALTER TABLE customer RENAME COLUMN email TO email_address;")
	if _, err := applyOnce(t, url, p, db.ApplyOptions{ThroughDeploy: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ALTER TABLE cutover.runs DROP COLUMN plan`); err != nil {
		t.Fatal(err)
	}
	var version string
	if err := conn.QueryRow(ctx, `SELECT value FROM cutover.meta WHERE key = 'schema_version'`).Scan(&version); err != nil || version != "2" {
		t.Fatalf("schema_version %q, %v", version, err)
	}
	runs, err := db.RunsInProgress(ctx, url)
	if err != nil || len(runs) != 1 || runs[0].Plan != nil || runs[0].PlanErr == nil {
		t.Fatalf("without the column: %+v, %v", runs, err)
	}
	if _, err := applyOnce(t, url, p, db.ApplyOptions{ThroughDeploy: 2}); err != nil {
		t.Fatal(err)
	}
	runs, err = db.RunsInProgress(ctx, url)
	if err != nil || len(runs) != 1 || runs[0].Plan == nil || runs[0].Plan.Hash() != p.Hash() || runs[0].NextDeploy != 3 {
		t.Fatalf("after the upgrade: %+v, %v", runs, err)
	}
}
