package main

// cutover apply / status / rollback / export, driven through the real
// binary against the throwaway server: output, exit codes, one-line
// errors, and a SIGKILL in the middle of a concurrent index build.

import (
	"bytes"
	"context"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db/dbtest"
)

// applyDB returns a pagila database URL carrying a password (ignored by the
// test server's trust authentication) that must never be printed or
// stored, a connection, and a plan file for input.
func applyDB(t *testing.T, setup, input string) (dbURL string, conn *pgx.Conn, planFile string) {
	t.Helper()
	u, err := url.Parse(dbtest.Pagila(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("postgres", secretPassword)
	dbURL = u.String()
	conn = dbtest.Connect(t, dbURL)
	for _, sql := range []string{"CREATE EXTENSION pg_stat_statements", setup} {
		if sql == "" {
			continue
		}
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	planFile = filepath.Join(t.TempDir(), "plan.json")
	ok(t, withStdout(run(t, "", "plan", "--db", dbURL, "--sql", input, "--format", "json", "-o", planFile)))
	return dbURL, conn, planFile
}

const secretPassword = "Sup3r-s3cret-pw"

// withStdout lets ok() accept a command that writes a file and no stdout.
func withStdout(r result) result {
	if r.stdout == "" {
		r.stdout = "(file)"
	}
	return r
}

// succeeded asserts exit 0, no stderr, and stdout containing want.
func succeeded(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, want 0 and nothing\nstdout:\n%s", r.code, r.stderr, r.stdout)
	}
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, secretPassword) {
		t.Errorf("the password appears in the output")
	}
}

// failed asserts the exit code and exactly one "cutover: " line on stderr.
func failed(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d (stderr %q)\nstdout:\n%s", r.code, code, r.stderr, r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "cutover: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr must be one line starting \"cutover: \", got %q", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q lacks %q", r.stderr, w)
		}
	}
	if strings.Contains(r.stderr+r.stdout, secretPassword) {
		t.Errorf("the password appears in the output")
	}
}

// The whole rename headless: apply stops at the application release, a
// second apply confirms it and finishes; status and export tell the story;
// the password appears nowhere, not even in the state tables.
func TestApplyRenameHeadless(t *testing.T) {
	dbURL, conn, plan := applyDB(t, "", renameEmail)
	succeeded(t, run(t, "", "status", "--plan", plan, "--db", dbURL), "not applied to this database yet")

	first := run(t, "", "apply", "--plan", plan, "--db", dbURL, "--observe", "0")
	succeeded(t, first, "E1-add-column-email-address: done", "B1-backfill-customer: gate passed",
		"waiting for application release: Application release: use the new shape", "    - Switch reads and writes", "stopped: waiting for application release 3")
	if strings.Contains(first.stdout, "C1-swap") {
		t.Errorf("the contract step ran before the application release was confirmed")
	}
	succeeded(t, run(t, "", "status", "--plan", plan, "--db", dbURL), "status: waiting for application release", "done        E2-sync-trigger-email-address", "pending     C1-swap-email-address")

	second := run(t, "", "apply", "--plan", plan, "--db", dbURL, "--observe", "0")
	succeeded(t, second, "confirmed by running apply again", "usage check of public.customer.email", "C1-swap-email-address: done", "plan applied: all 4 steps done")
	succeeded(t, run(t, "", "status", "--plan", plan, "--db", dbURL), "status: done at")

	export := run(t, "", "export", "--plan", plan, "--db", dbURL, "--format", "md")
	succeeded(t, export, "# cutover plan", "## As executed", "| `C1-swap-email-address` | done | 1 |", "### Application releases", "confirmed",
		`ALTER TABLE "public"."customer" RENAME COLUMN "email" TO "email_address"`, "lock_timeout 250ms, statement_timeout 5s", "committed", "writes the range's checkpoint (cutover.backfill_ranges)", "WITH batch AS (SELECT")

	var state string
	if err := conn.QueryRow(context.Background(), `SELECT concat_ws(' ', (SELECT string_agg(r::text, ' ') FROM cutover.runs r), (SELECT string_agg(s::text, ' ') FROM cutover.statements s),
		(SELECT string_agg(n::text, ' ') FROM cutover.notes n), (SELECT string_agg(a::text, ' ') FROM cutover.app_releases a))`).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(state, secretPassword) || !strings.Contains(state, "RENAME COLUMN") {
		t.Errorf("state: password present %v, statements present %v", strings.Contains(state, secretPassword), strings.Contains(state, "RENAME COLUMN"))
	}

	// Rolling back needs the previous application release deployed again.
	rb := run(t, "", "rollback", "--plan", plan, "--db", dbURL)
	succeeded(t, rb, "waiting for application release: deploy again the application release that preceded this plan")
	succeeded(t, run(t, "", "rollback", "--plan", plan, "--db", dbURL), "confirmed by running rollback again", "C1-swap-email-address (rollback): undone", "rolled back: 4 steps undone")
	var col string
	if err := conn.QueryRow(context.Background(), `SELECT string_agg(attname, ',') FROM pg_attribute WHERE attrelid = 'customer'::regclass AND attname LIKE 'email%' AND NOT attisdropped`).Scan(&col); err != nil || col != "email" {
		t.Errorf("after rollback the customer's email columns are %q (%v), want email", col, err)
	}
}

// Exit codes: 2 for refusals (bad flags, irreversible without
// confirmation, rollback past an irreversible step), 1 when retries run
// out, 3 when another session applies the plan.
func TestApplyExitCodes(t *testing.T) {
	dbURL, conn, plan := applyDB(t, "", "ALTER TABLE staff DROP COLUMN picture")
	failed(t, run(t, "", "apply", "--db", dbURL), 2, "--plan FILE")
	failed(t, run(t, "", "apply", "--plan", plan, "--db", dbURL, "--through", "soon"), 2, `unknown --through "soon"`)
	failed(t, run(t, "", "apply", "--plan", plan, "--db", dbURL, "--lock-timeout", "0"), 2, "--lock-timeout must be positive")
	failed(t, run(t, "", "export", "--plan", plan, "--db", dbURL, "--format", "pdf"), 2, `unknown --format "pdf"`)
	failed(t, run(t, "", "apply", "--plan", plan, "--db", dbURL, "--yes", "--observe", "0"), 2, "is irreversible", "--confirm-irreversible public.staff")
	succeeded(t, run(t, "", "apply", "--plan", plan, "--db", dbURL, "--yes", "--observe", "0", "--confirm-irreversible", "public.staff"), "C1-drop-column-picture: done")
	failed(t, run(t, "", "rollback", "--plan", plan, "--db", dbURL), 2, "irreversible step C1-drop-column-picture", "nothing was rolled back")

	// A transaction holds a lock on customer: with two attempts allowed,
	// apply gives up (exit 1) and says how to resume.
	dbURL2, _, plan2 := applyDB(t, "", renameEmail)
	blocker := dbtest.Connect(t, dbURL2)
	if _, err := blocker.Exec(context.Background(), "BEGIN; SELECT count(*) FROM customer"); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "apply", "--plan", plan2, "--db", dbURL2, "--max-attempts", "2")
	failed(t, r, 1, "gave up after 2 attempts", "run apply again to resume")
	if !strings.Contains(r.stdout, "E1-add-column-email-address: step attempt 1/2: lock not granted within lock_timeout 250ms (55P03), blocked by pid") {
		t.Errorf("the retry was not reported with its blocker:\n%s", r.stdout)
	}

	// A first apply retries behind the lock; a second one is busy.
	bg := exec.Command(binary, "apply", "--plan", plan2, "--db", dbURL2, "--max-retry-time", "1m")
	var bgOut bytes.Buffer
	bg.Stdout, bg.Stderr = &bgOut, &bgOut
	if err := bg.Start(); err != nil {
		t.Fatal(err)
	}
	// Connected is not enough: the first apply must hold the run's
	// advisory lock before the second one starts.
	waitFor(t, conn, `SELECT count(*) > 0 FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
		WHERE a.application_name = 'cutover' AND a.datname = '`+strings.TrimPrefix(mustURL(t, dbURL2).Path, "/")+`'`)
	failed(t, run(t, "", "apply", "--plan", plan2, "--db", dbURL2), 3, "is being applied on", "by another session: pid ", "user postgres, application cutover", "its run was started by postgres")
	if _, err := blocker.Exec(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := bg.Wait(); err != nil {
		t.Fatalf("the first apply: %v\n%s", err, bgOut.String())
	}
	if !strings.Contains(bgOut.String(), "waiting for application release") {
		t.Errorf("the first apply did not get to the application release:\n%s", bgOut.String())
	}
}

// SIGKILL in the middle of CREATE INDEX CONCURRENTLY (it waits for an old
// snapshot, the index exists INVALID): the next apply drops the INVALID
// index concurrently, builds it again and finishes.
func TestApplySIGKILLDuringIndexBuild(t *testing.T) {
	dbURL, conn, plan := applyDB(t, "CREATE INDEX idx_customer_email ON customer (email)", renameEmail)
	holder := dbtest.Connect(t, dbURL)
	if _, err := holder.Exec(context.Background(), "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM film"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "apply", "--plan", plan, "--db", dbURL, "--yes", "--observe", "0", "--lock-timeout", "1m")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, conn, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'cutover' AND wait_event_type = 'Lock')
		AND EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('public.idx_customer_email_cutover_email_address') AND NOT indisvalid)`)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	t.Logf("killed mid-build; its output (%d bytes):\n%s", out.Len(), out.String())
	// The server notices the dead client within a second and aborts the
	// build; then the old snapshot goes.
	waitFor(t, conn, `SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'cutover%' AND datname = current_database())`)
	if _, err := holder.Exec(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "apply", "--plan", plan, "--db", dbURL, "--yes", "--observe", "0")
	succeeded(t, r, "M1-index-email-address: was interrupted", "is INVALID (a concurrent build was interrupted or failed): dropping it concurrently", "M1-index-email-address: done", "plan applied")
	var actions string
	if err := conn.QueryRow(context.Background(), `SELECT string_agg(action || ':' || outcome, ' ' ORDER BY id) FROM cutover.statements WHERE step_id = 'M1-index-email-address'`).Scan(&actions); err != nil {
		t.Fatal(err)
	}
	if actions != "apply:interrupted repair:ok apply:ok" {
		t.Errorf("audit of the index build: %q, want the interrupted build, the drop and the build", actions)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// waitFor polls a boolean query for up to 20 seconds.
func waitFor(t *testing.T, conn *pgx.Conn, query string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var ok bool
		if err := conn.QueryRow(context.Background(), query).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for: %s", query)
}
