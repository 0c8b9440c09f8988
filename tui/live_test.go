package tui

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/plans"
)

// A server that is not there: a *db.ConnectError, one line, without the
// password.
func TestNewLiveBackendConnectError(t *testing.T) {
	for _, u := range []string{
		"postgres://app:s3cr3t-pw@127.0.0.1:1/shop?connect_timeout=2",
		"host=127.0.0.1 port=1 user=app password=s3cr3t-pw dbname=shop connect_timeout=2",
		"postgres://app:s3cr3t-pw@[::1:bad/shop",
	} {
		_, err := NewLiveBackend(context.Background(), u)
		var ce *db.ConnectError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: %v, want a *db.ConnectError", u, err)
		}
		if msg := err.Error(); strings.Contains(msg, "s3cr3t-pw") || strings.Contains(msg, "\n") {
			t.Errorf("%s: %q", u, msg)
		}
	}
}

// The header shows the URL without its password; plans are made against
// the live schema, with its tables' sizes.
func TestLiveBackendSourceAndPlan(t *testing.T) {
	raw := dbtest.Pagila(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	user := "postgres"
	if u.User != nil {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, "s3cr3t-pw")
	b, err := NewLiveBackend(context.Background(), u.String())
	if err != nil {
		t.Fatalf("connecting with a password the server does not check: %v", err)
	}
	if !b.Connected() || strings.Contains(b.Source(), "s3cr3t-pw") || !strings.Contains(b.Source(), u.Host) {
		t.Fatalf("source %q", b.Source())
	}
	p, err := b.Plan(context.Background(), renameSQL)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64 = -1
	for _, tf := range p.Facts.Tables {
		if tf.Name == "public.customer" {
			rows = tf.Rows
		}
	}
	if rows != 599 {
		t.Fatalf("customer rows in the plan's facts: %d, want 599 (read live)", rows)
	}
	rep, err := b.ReadRun(context.Background(), p)
	if err != nil || rep.Run != nil {
		t.Fatalf("a fresh database has no run: %+v, %v", rep, err)
	}
}

// The run screen opens at an application release the headless apply
// stopped at, and says the engine waits for it.
func TestRunOpensAtWaitingRelease(t *testing.T) {
	url := dbtest.Pagila(t)
	b := liveBackend(t, url)
	ctx := context.Background()
	p, err := b.Plan(ctx, renameSQL)
	if err != nil {
		t.Fatal(err)
	}
	e, err := db.Open(ctx, url, p, db.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Apply(ctx)
	e.Close()
	if err != nil || out.Status != "waiting" {
		t.Fatalf("headless apply: %+v, %v", out, err)
	}
	m := New(Options{Backend: b, Renderer: asciiRenderer(), Plan: p})
	l := newLoop(t, m, 80, 24)
	l.until("the plan", func() bool { return m.Plan() != nil })
	l.keys("r")
	l.until("the state", l.idle)
	if d := m.run.nextDeploy(); d == nil || d.d.Kind != plans.App || m.run.apps[d.number] != appWaiting {
		t.Fatalf("next %+v, apps %v", d, m.run.apps)
	}
	v := m.View()
	for _, want := range []string{"Run · waiting for application release 3/4", "use the new shape · waiting"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
}

// A run stopped after its expand phase (headless) is offered on the
// compose screen of a TUI opened with the URL only (its SQL no longer
// plans against the changed schema); the resume key opens the plan
// stored with the run on the run screen at the migrate deploy, which
// runs on from there. Nothing is written into the working directory.
func TestResumeRunInProgressFromDatabase(t *testing.T) {
	url := dbtest.Pagila(t)
	ctx := context.Background()
	p, err := liveBackend(t, url).Plan(ctx, renameSQL)
	if err != nil {
		t.Fatal(err)
	}
	e, err := db.Open(ctx, url, p, db.ApplyOptions{Through: plans.Expand})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	e.Close()
	cwd := t.TempDir()
	t.Chdir(cwd)

	b := liveBackend(t, url)
	if _, err := b.Plan(ctx, renameSQL); err == nil || !strings.Contains(err.Error(), "ctrl+o on the compose screen") {
		t.Fatalf("planning the SQL again: %v", err)
	}
	m := New(Options{Backend: b, Renderer: asciiRenderer(), Debounce: time.Millisecond})
	l := newLoop(t, m, 80, 24)
	l.until("the runs in progress", func() bool { return len(m.inProgress) > 0 })
	want := "run in progress · plan " + db.PlanID(p)[:12] + " · next: deploy 2/4 · ctrl+o resumes it · AL…"
	if v := m.View(); !strings.Contains(v, want) {
		t.Fatalf("compose screen lacks %q (or the key in the help bar):\n%s", want, v)
	}
	m.showHelp = true
	if v := m.View(); !strings.Contains(v, "ctrl+o resume run") {
		t.Fatalf("the help overlay lacks the resume key:\n%s", v)
	}
	m.showHelp = false
	l.keys("ctrl+o")
	if m.Screen() != "Run" || m.Plan() == nil || m.Plan().Hash() != p.Hash() {
		t.Fatalf("ctrl+o: screen %s, plan %v", m.Screen(), m.Plan() != nil)
	}
	l.until("the run's state", l.idle)
	if d := m.run.nextDeploy(); d == nil || d.number != 2 {
		t.Fatalf("resumed at %+v, want deploy 2", d)
	}
	if v := m.View(); !strings.Contains(v, "resuming: 2 of 4 steps done") {
		t.Fatalf("run screen:\n%s", v)
	}
	if m.compose.Value() != renameSQL {
		t.Fatalf("editor %q", m.compose.Value())
	}
	l.keys("enter", "y")
	if !m.run.running {
		t.Fatalf("deploy 2 did not start:\n%s", m.View())
	}
	l.until("the backfill", l.idle)
	if s := m.run.steps["B1-backfill-customer"]; s.status != stDone || m.run.err != "" {
		t.Fatalf("B1 %+v, err %s", s, m.run.err)
	}
	// After the run the list is read again: the run goes on at deploy 3.
	l.until("the list read again", func() bool { return len(m.inProgress) == 1 && m.inProgress[0].NextDeploy == 3 })
	if ents, err := os.ReadDir(cwd); err != nil || len(ents) != 0 {
		t.Fatalf("files in the working directory: %v, %v", ents, err)
	}
}

// Offline, nothing is listed and the resume key is not offered.
func TestNoRunsInProgressOffline(t *testing.T) {
	m := New(Options{Backend: pagilaBackend(), Renderer: asciiRenderer()})
	if cmd := m.listRuns(); cmd != nil || m.keys.Resume.Enabled() {
		t.Fatal("offline model lists runs or offers ctrl+o")
	}
}
