package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
)

// ThroughDeploy runs one deploy at a time (the TUI's key press);
// ConfirmApp confirms the named application release, and only it.
func TestApplyThroughDeployAndConfirmApp(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	p := planFor(t, conn, "ALTER TABLE customer RENAME COLUMN email TO email_address;")
	id := db.PlanID(p)

	out, err := applyOnce(t, url, p, db.ApplyOptions{ThroughDeploy: 1})
	if err != nil || out.Status != "through" {
		t.Fatalf("deploy 1: %+v, %v", out, err)
	}
	if got := stepStatus(t, conn, id, "E2-sync-trigger-email-address") + " " + stepStatus(t, conn, id, "B1-backfill-customer"); got != "done pending" {
		t.Fatalf("after deploy 1: E2 B1 = %s", got)
	}
	out, err = applyOnce(t, url, p, db.ApplyOptions{ThroughDeploy: 2})
	if err != nil || out.Status != "through" || stepStatus(t, conn, id, "B1-backfill-customer") != "done" {
		t.Fatalf("deploy 2: %+v, %v", out, err)
	}
	// A confirmation of another deploy does not confirm release 3.
	out, err = applyOnce(t, url, p, db.ApplyOptions{ThroughDeploy: 3, ConfirmApp: 4})
	if err != nil || out.Status != "waiting" || out.WaitingDeploy != 3 {
		t.Fatalf("release 3 unconfirmed: %+v, %v", out, err)
	}
	ctx := context.Background()
	out, err = applyOnce(t, url, p, db.ApplyOptions{ThroughDeploy: 3, ConfirmApp: 3})
	if err != nil || out.Status != "through" {
		t.Fatalf("release 3 confirmed: %+v, %v", out, err)
	}
	var note string
	if err := conn.QueryRow(ctx, `SELECT message FROM cutover.notes WHERE plan_id = $1 AND kind = 'app release' ORDER BY at DESC LIMIT 1`, id).Scan(&note); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(note, "confirmed in the terminal UI") {
		t.Fatalf("note %q", note)
	}
	if stepStatus(t, conn, id, "C1-swap-email-address") != "pending" {
		t.Fatal("ThroughDeploy 3 ran deploy 4")
	}
}

// An apply started as soon as the previous one closed (the TUI's next
// deploy, a script's retry) is never refused as busy: Close releases the
// advisory locks itself instead of leaving them to the server's backend
// exit, which can come after the next apply's try.
func TestApplyRightAfterClose(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	p := planFor(t, conn, "ALTER TABLE customer RENAME COLUMN email TO email_address;")
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		if out, err := applyOnce(t, url, p, db.ApplyOptions{ThroughDeploy: 1}); err != nil || out.Status != "through" {
			t.Fatalf("apply %d right after the previous one closed: %+v, %v", i+1, out, err)
		}
		// Close has returned: no advisory lock may be left.
		var held int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted`).Scan(&held); err != nil {
			t.Fatal(err)
		}
		if held != 0 {
			t.Fatalf("after apply %d closed, %d advisory locks are still held", i+1, held)
		}
	}
}
