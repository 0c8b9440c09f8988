package db_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
)

// connectErr connects and returns the *db.ConnectError it must fail with,
// checking that the message is one line and does not contain secret.
func connectErr(t *testing.T, connString, secret string) *db.ConnectError {
	t.Helper()
	conn, err := db.Connect(context.Background(), connString)
	if err == nil {
		conn.Close(context.Background())
		t.Fatalf("connecting to %s succeeded, want an error", db.Redact(connString))
	}
	var ce *db.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error is %T (%v), want *db.ConnectError", err, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if secret != "" && strings.Contains(msg, secret) {
		t.Errorf("error reveals the password: %q", msg)
	}
	if secret != "" && strings.Contains(fmt.Sprintf("%+v", err), secret) {
		t.Errorf("error reveals the password when printed with %%+v")
	}
	return ce
}

func TestConnectRefused(t *testing.T) {
	// A port nothing listens on: take a free one and release it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	const secret = "Refused-Pw-81723"
	ce := connectErr(t, fmt.Sprintf("postgres://app:%s@127.0.0.1:%d/shop", secret, port), secret)
	want := fmt.Sprintf("cannot reach PostgreSQL at 127.0.0.1:%d: connection refused — is the server running?", port)
	if ce.Kind != db.Unreachable || ce.Msg != want {
		t.Errorf("got kind %d %q\nwant kind %d %q", ce.Kind, ce.Msg, db.Unreachable, want)
	}
}

func TestConnectUnknownHost(t *testing.T) {
	const secret = "Dns-Pw-55510"
	ce := connectErr(t, "postgres://app:"+secret+"@no-such-host.invalid:5432/shop", secret)
	if ce.Kind != db.Unreachable || !strings.HasPrefix(ce.Msg, "cannot reach PostgreSQL at no-such-host.invalid:5432: ") {
		t.Errorf("got kind %d %q, want Unreachable for no-such-host.invalid:5432", ce.Kind, ce.Msg)
	}
}

func TestConnectDatabaseMissing(t *testing.T) {
	u, err := url.Parse(dbtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/no_such_database"
	ce := connectErr(t, u.String(), "")
	want := "database no_such_database does not exist on " + u.Host
	if ce.Kind != db.NoDatabase || ce.Msg != want {
		t.Errorf("got kind %d %q\nwant kind %d %q", ce.Kind, ce.Msg, db.NoDatabase, want)
	}
}

// TestConnectWrongPassword runs a cluster of its own that requires
// scram-sha-256 on TCP, so that a wrong password is really rejected by the
// server, and checks that the right one, from the URL or from a .pgpass
// file, is accepted.
func TestConnectWrongPassword(t *testing.T) {
	const right, wrong = "Right-Pw-30917", "Wrong-Pw-66241"
	ctx := context.Background()
	c, err := db.StartCluster(ctx, db.ClusterOptions{AuthHost: "scram-sha-256", Password: right})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	good, err := url.Parse(c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	bad := *good
	bad.User = url.UserPassword("postgres", wrong)
	ce := connectErr(t, bad.String(), wrong)
	want := fmt.Sprintf("authentication failed for user postgres on %s (check the password / .pgpass)", good.Host)
	if ce.Kind != db.AuthFailed || ce.Msg != want {
		t.Errorf("got kind %d %q\nwant kind %d %q", ce.Kind, ce.Msg, db.AuthFailed, want)
	}
	if strings.Contains(ce.Msg, right) {
		t.Errorf("error reveals the server's password: %q", ce.Msg)
	}

	// Without a password at all the server rejects the login as well.
	none := *good
	none.User = url.User("postgres")
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "missing"))
	if ce := connectErr(t, none.String(), right); ce.Kind != db.AuthFailed {
		t.Errorf("no password: got kind %d %q, want AuthFailed", ce.Kind, ce.Msg)
	}

	conn, err := db.Connect(ctx, good.String())
	if err != nil {
		t.Fatalf("the right password is rejected: %v", err)
	}
	conn.Close(ctx)

	// The PG* variables and a .pgpass file are honoured when neither --db
	// nor DATABASE_URL is given.
	pgpass := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(pgpass, []byte(fmt.Sprintf("127.0.0.1:%d:*:postgres:%s\n", c.Port, right)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATABASE_URL", "")
	t.Setenv("PGPASSFILE", pgpass)
	t.Setenv("PGHOST", "127.0.0.1")
	t.Setenv("PGPORT", fmt.Sprint(c.Port))
	t.Setenv("PGUSER", "postgres")
	t.Setenv("PGDATABASE", "postgres")
	t.Setenv("PGSSLMODE", "disable")
	conn, err = db.Connect(ctx, "")
	if err != nil {
		t.Fatalf("connecting with PG* variables and .pgpass: %v", err)
	}
	conn.Close(ctx)

	// DATABASE_URL wins over the PG* variables.
	t.Setenv("DATABASE_URL", bad.String())
	if ce := connectErr(t, "", wrong); ce.Kind != db.AuthFailed {
		t.Errorf("DATABASE_URL with a wrong password: got kind %d %q, want AuthFailed", ce.Kind, ce.Msg)
	}
}

func TestConnectMalformed(t *testing.T) {
	for _, tc := range []struct{ connString, secret string }{
		{"postgres://app:Malformed-Pw-1@db.example.com:notaport/shop", "Malformed-Pw-1"},
		{"postgres://app:Malformed Pw 2@db example com/shop", "Malformed Pw 2"},
		{"postgres://app:Pw%zz3@db.example.com/shop", "Pw%zz3"},
		{"host=db.example.com password=Malformed-Pw-4 port=notaport", "Malformed-Pw-4"},
		{"host=db.example.com password='Malformed Pw 5' sslmode=bogus", "Malformed Pw 5"},
	} {
		ce := connectErr(t, tc.connString, tc.secret)
		if ce.Kind != db.BadConnString || !strings.HasPrefix(ce.Msg, "invalid connection string from --db") {
			t.Errorf("%s: got kind %d %q, want BadConnString", db.Redact(tc.connString), ce.Kind, ce.Msg)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://app:s3cret@db:5432/shop", "postgres://app:xxxxx@db:5432/shop"},
		{"postgresql://app@db/shop", "postgresql://app@db/shop"},
		{"postgres://db/shop?sslmode=require&password=s3cret", "postgres://db/shop?sslmode=require&password=xxxxx"},
		{"postgres://app:p@ss/w?rd@db:5432/shop", "postgres://app:xxxxx@db:5432/shop"},
		{"postgres://app:s3cret@h1:5432,h2:5433/shop?target_session_attrs=read-write", "postgres://app:xxxxx@h1:5432,h2:5433/shop?target_session_attrs=read-write"},
		{"host=db user=app password=s3cret dbname=shop", "host=db user=app password=xxxxx dbname=shop"},
		{`host=db password = 'it\'s a secret' dbname=shop`, "host=db password = xxxxx dbname=shop"},
		{"host=db dbname=shop", "host=db dbname=shop"},
		{"", ""},
	} {
		if got := db.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzRedact: Redact never panics, and a password written in a well-formed
// URL never survives it.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{"postgres://", "postgres://@", "postgres://:@", "postgres://a:b", "postgres://a:b@h/d?password=c&x=y",
		"password=", "password='unterminated", "host=h password", "= =", `password='a\'`} {
		f.Add(s, "s3cr3t")
	}
	f.Fuzz(func(t *testing.T, s, pw string) {
		db.Redact(s)
		if pw == "" || strings.ContainsAny(pw, "@/?#:%& \t\n") {
			return
		}
		u := "postgres://user:" + pw + "@host:5432/db"
		if got := db.Redact(u); strings.Contains(got, pw) && !strings.Contains("postgres://user:xxxxx@host:5432/db", pw) {
			t.Errorf("Redact(%q) = %q keeps the password", u, got)
		}
	})
}
