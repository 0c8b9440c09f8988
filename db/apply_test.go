package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/plans"
)

// The engine, run unattended on every change kind of the proof, reaches
// the naive statement's end state (what proof_test's plain executor
// proves of the plans, proved here of the engine that runs them).
func TestEngineReachesTheNaiveEndState(t *testing.T) {
	for _, tc := range proofCases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			url := dbtest.Pagila(t)
			planned := dbtest.Connect(t, url)
			naive := dbtest.Connect(t, dbtest.Pagila(t))
			exec(t, planned, tc.setup)
			exec(t, naive, tc.setup)
			withStatements(t, planned)
			p := planFor(t, planned, tc.input)
			applyToEnd(t, url, p, confirmAll(p, newEvents(t)))

			naiveSQL := tc.naive
			if naiveSQL == "" {
				naiveSQL = tc.input
			}
			if tc.keepViews {
				runKeepingViews(t, naive, naiveSQL)
			} else {
				exec(t, naive, naiveSQL)
			}
			compareSnapshots(t, snapshot(t, naive, tc.dataIgnore), snapshot(t, planned, tc.dataIgnore))

			// Every step done, its gate passed, each statement of a
			// transactional step executed once.
			id := db.PlanID(p)
			rows := audit(t, planned, id)
			for _, ref := range p.Steps() {
				s := ref.Step
				if st := stepStatus(t, planned, id, s.ID); st != "done" {
					t.Errorf("step %s is %s, want done", s.ID, st)
				}
				if s.Backfill != nil || !s.Transactional {
					continue
				}
				ok := 0
				for _, a := range rows {
					if a.step == s.ID && a.action == "apply" && a.outcome == "ok" {
						ok++
					}
				}
				if n := len(splitStatements(t, s.SQL)); ok != n {
					t.Errorf("step %s: %d statements executed ok, want %d", s.ID, ok, n)
				}
			}
		})
	}
}

// Rolling back after the expand phase restores the original catalog and
// data exactly, for every change kind; a plan whose expand phase has an
// irreversible step (ADD VALUE to an enum) is refused, untouched.
func TestEngineRollbackAfterExpand(t *testing.T) {
	for _, tc := range proofCases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			url := dbtest.Pagila(t)
			conn := dbtest.Connect(t, url)
			exec(t, conn, tc.setup)
			before := snapshot(t, conn, nil)
			p := planFor(t, conn, tc.input)
			ev := newEvents(t)
			opts := confirmAll(p, ev)
			opts.Through = plans.Expand
			out, err := applyOnce(t, url, p, opts)
			if err != nil {
				t.Fatalf("apply --through expand: %v", err)
			}
			if out.Status != "through" && out.Status != "done" {
				t.Fatalf("apply --through expand ended %q", out.Status)
			}
			irreversible := false
			for _, r := range p.Steps() {
				if r.Phase == plans.Expand && r.Step.Irreversible {
					irreversible = true
				}
			}
			_, err = rollback(t, url, p, opts)
			if irreversible {
				var ae *db.ApplyError
				if !errors.As(err, &ae) || ae.Kind != db.Refused || !strings.Contains(err.Error(), "irreversible") {
					t.Fatalf("rollback past an irreversible step: got %v, want a refusal naming it", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("rollback: %v", err)
			}
			compareSnapshots(t, before, snapshot(t, conn, nil))
			// And the plan can be applied again from the start.
			if _, err := applyOnce(t, url, p, opts); err != nil {
				t.Fatalf("apply after rollback: %v", err)
			}
		})
	}
}

// Rollback after an irreversible step ran refuses (exit 2 in the CLI) and
// undoes nothing.
func TestRollbackRefusedPastIrreversibleStep(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	withStatements(t, conn)
	p := planFor(t, conn, "ALTER TABLE staff DROP COLUMN picture")
	applyToEnd(t, url, p, confirmAll(p, newEvents(t)))
	before := snapshot(t, conn, nil)
	_, err := rollback(t, url, p, confirmAll(p, newEvents(t)))
	var ae *db.ApplyError
	if !errors.As(err, &ae) || ae.Kind != db.Refused {
		t.Fatalf("got %v, want a refusal", err)
	}
	for _, want := range []string{"C1-drop-column-picture", "irreversible", "nothing was rolled back"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}
	compareSnapshots(t, before, snapshot(t, conn, nil))
}

// An irreversible step runs only with --confirm-irreversible naming its
// table; without it the run stops there, refused, before the step.
func TestIrreversibleStepNeedsConfirmation(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	withStatements(t, conn)
	p := planFor(t, conn, "ALTER TABLE staff DROP COLUMN picture")
	opts := confirmAll(p, newEvents(t))
	opts.ConfirmIrreversible = []string{"public.customer"} // another table
	_, err := applyOnce(t, url, p, opts)
	var ae *db.ApplyError
	if !errors.As(err, &ae) || ae.Kind != db.Refused || !strings.Contains(err.Error(), "--confirm-irreversible public.staff") {
		t.Fatalf("got %v, want a refusal asking for --confirm-irreversible public.staff", err)
	}
	if st := stepStatus(t, conn, db.PlanID(p), "C1-drop-column-picture"); st != "pending" {
		t.Errorf("the irreversible step is %s, want pending", st)
	}
	opts.ConfirmIrreversible = []string{"staff"} // unqualified works too
	if out, err := applyOnce(t, url, p, opts); err != nil || out.Status != "done" {
		t.Fatalf("with the confirmation: %v %v", out, err)
	}
}

// A plan file whose content differs from the run in the database (same
// input, edited plan) is refused, and nothing is done.
func TestApplyRefusesADifferentPlanOverARun(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	p := planFor(t, conn, "ALTER TABLE customer RENAME COLUMN email TO email_address")
	opts := confirmAll(p, newEvents(t))
	opts.Through = plans.Expand
	if _, err := applyOnce(t, url, p, opts); err != nil {
		t.Fatal(err)
	}
	js, err := plans.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	edited, err := plans.Decode(js)
	if err != nil {
		t.Fatal(err)
	}
	edited.Phases[0].Deploys[0].Steps[0].Summary += " (edited)"
	_, err = applyOnce(t, url, edited, opts)
	var ae *db.ApplyError
	if !errors.As(err, &ae) || ae.Kind != db.Refused || !strings.Contains(err.Error(), "different plan") {
		t.Fatalf("got %v, want a refusal of the different plan", err)
	}
}

// Two engines on the same plan: the second is told who holds it (Busy,
// exit 3 in the CLI), and the first finishes undisturbed.
func TestConcurrentApplyIsBusy(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	p := planFor(t, conn, "ALTER TABLE customer RENAME COLUMN email TO email_address")
	opts := confirmAll(p, newEvents(t))
	opts.Through = plans.Expand
	inside, release := make(chan struct{}), make(chan struct{})
	first := db.WithHook(opts, func(ctx context.Context, point, step string, n int) error {
		if point == "step-start" && step == "E2-sync-trigger-email-address" {
			close(inside)
			<-release
		}
		return nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := applyOnce(t, url, p, first)
		done <- err
	}()
	<-inside
	for _, other := range []*plans.Plan{p, planFor(t, conn, "ALTER TABLE customer ALTER COLUMN activebool DROP NOT NULL")} {
		_, err := db.Open(context.Background(), url, other, opts)
		var ae *db.ApplyError
		if !errors.As(err, &ae) || ae.Kind != db.Busy {
			t.Fatalf("second open: got %v, want Busy", err)
		}
		for _, want := range []string{"pid ", "user postgres", "application cutover", "client 127.0.0.1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("busy message %q lacks %q", err, want)
			}
		}
		t.Log(err)
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the first apply did not finish")
	}
}

// --skip-triggers needs the right to SET session_replication_role: a role
// without it is refused up front, with the reason, before any step runs.
// The same role applies the plan firing the triggers (the default).
func TestSkipTriggersRefusedWithoutThePrivilege(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	role := "cutover_app_" + mustDB(t, url)
	exec(t, conn, `CREATE ROLE `+role+` LOGIN`)
	exec(t, conn, `GRANT CREATE ON DATABASE `+pgx.Identifier{mustDB(t, url)}.Sanitize()+` TO `+role+`;
		GRANT ALL ON SCHEMA public TO `+role+`;
		GRANT ALL ON ALL TABLES IN SCHEMA public TO `+role+`;
		ALTER TABLE customer OWNER TO `+role)
	t.Cleanup(func() {
		c := dbtest.Connect(t, url)
		exec(t, c, `DROP OWNED BY `+role+` CASCADE; DROP ROLE `+role)
	})
	p := planFor(t, conn, "ALTER TABLE customer RENAME COLUMN email TO email_address")
	appURL := strings.Replace(url, "postgres@", role+"@", 1)
	if appURL == url {
		t.Fatalf("cannot make a URL for role %s from %s", role, url)
	}
	ev := newEvents(t)
	opts := db.ApplyOptions{SkipTriggers: true, Through: plans.Migrate, OnEvent: ev.on}
	_, err := applyOnce(t, appURL, p, opts)
	var ae *db.ApplyError
	if !errors.As(err, &ae) || ae.Kind != db.Refused || !strings.Contains(err.Error(), "session_replication_role") || !strings.Contains(err.Error(), role) {
		t.Fatalf("got %v, want a refusal saying the role may not set session_replication_role", err)
	}
	if st := stepStatus(t, conn, db.PlanID(p), "E1-add-column-email-address"); st != "pending" {
		t.Errorf("a step ran before the refusal: E1 is %s", st)
	}
	opts.SkipTriggers = false
	if _, err := applyOnce(t, appURL, p, opts); err != nil {
		t.Fatalf("firing the triggers: %v", err)
	}
	var fired int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM customer WHERE last_update > now() - interval '1 minute'`).Scan(&fired); err != nil || fired != 599 {
		t.Errorf("last_updated fired on %d rows (%v), want 599", fired, err)
	}
}

func mustDB(t *testing.T, url string) string {
	t.Helper()
	i := strings.LastIndex(url, "/")
	return strings.SplitN(url[i+1:], "?", 2)[0]
}
