package main

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/cutover/cutover/db/dbtest"
)

// cutover plan --db: the live schema, with its sizes, reaches the plan.
func TestPlanAgainstLiveDatabase(t *testing.T) {
	dbURL := dbtest.Pagila(t)
	conn := dbtest.Connect(t, dbURL)
	if _, err := conn.Exec(context.Background(), "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "plan", "--db", dbURL, "--format", "json",
		"--sql", "ALTER TABLE rental ALTER COLUMN rental_id TYPE bigint")
	ok(t, r)
	p := decode(t, r.stdout)
	if !strings.HasPrefix(p.Facts.Source, "live database ") || p.Facts.ServerVersion < 150000 {
		t.Errorf("facts source %q, server version %d: want the live database and its version", p.Facts.Source, p.Facts.ServerVersion)
	}
	var rental bool
	for _, tf := range p.Facts.Tables {
		if tf.Name != "public.rental" {
			continue
		}
		rental = true
		if tf.Rows < 16000 || tf.Rows > 16100 {
			t.Errorf("public.rental estimated rows %d, want about 16,044", tf.Rows)
		}
		if tf.Bytes <= 0 || tf.BackfillSeconds <= 0 {
			t.Errorf("public.rental bytes %d and backfill estimate %v s: want both known", tf.Bytes, tf.BackfillSeconds)
		}
	}
	if !rental {
		t.Errorf("plan facts do not mention public.rental: %+v", p.Facts.Tables)
	}
	md := run(t, "", "plan", "--db", dbURL, "--format", "md", "--sql", "ALTER TABLE rental ALTER COLUMN rental_id TYPE bigint")
	ok(t, md)
	if !strings.Contains(md.stdout, "16,0") {
		t.Errorf("runbook does not show rental's row estimate:\n%s", md.stdout)
	}
}

// Bad connection input: one line, exit 2, never the password.
func TestPlanBadConnection(t *testing.T) {
	good, err := url.Parse(dbtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	const secret = "s3cr3t-Pa55"
	refused := *good
	refused.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(closedPort))
	refused.User = url.UserPassword("cutover", secret)
	missing := *good
	missing.Path = "/no_such_database_here"

	cases := []struct{ name, url, want string }{
		{"unreachable", refused.String(), "cannot reach"},
		{"database missing", missing.String(), "does not exist"},
		{"malformed", "postgres://app:" + secret + "@[::1", "--db"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, "", "plan", "--db", tc.url, "--sql", "ALTER TABLE customer ALTER COLUMN email SET NOT NULL")
			badInput(t, r, tc.want)
			if strings.Contains(r.stderr, secret) {
				t.Errorf("the password appears in the error: %q", r.stderr)
			}
		})
	}
	r := run(t, "", "plan", "--db", good.String(), "--schema", pagila, "--sql", "SELECT 1")
	badInput(t, r, "one way only")
}
