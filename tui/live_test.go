package tui

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

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
