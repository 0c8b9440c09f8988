package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/plans"
)

// These tests drive the real binary, built once, and check what a user
// sees: stdout, stderr and the exit code.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cutover")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := dbtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

const pagila = "testdata/pagila/schema.sql"

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run cutover %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok asserts success with output on stdout only.
func ok(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 || r.stderr != "" || r.stdout == "" {
		t.Fatalf("want exit 0, stdout and no stderr; got exit %d, stderr %q, %d bytes of stdout", r.code, r.stderr, len(r.stdout))
	}
}

// badInput asserts exit 2, nothing on stdout and exactly one line on
// stderr, "cutover: ...", containing want.
func badInput(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != 2 {
		t.Errorf("exit code %d, want 2 (stderr %q)", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout must be empty on bad input, got %q", r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "cutover: ") || !strings.HasSuffix(r.stderr, "\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr must be one line starting \"cutover: \", got %q", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not contain %q", r.stderr, want)
	}
}

const renameEmail = "ALTER TABLE customer RENAME COLUMN email TO email_address"

func decode(t *testing.T, js string) *plans.Plan {
	t.Helper()
	p, err := plans.Decode([]byte(js))
	if err != nil {
		t.Fatalf("stdout is not a plan: %v\n%s", err, js)
	}
	return p
}

func TestPlanFormats(t *testing.T) {
	for _, tc := range []struct {
		format string
		want   []string
	}{
		{"", []string{"cutover plan: ", "EXPAND", "E1-add-column-email-address"}},
		{"text", []string{"cutover plan: ", "EXPAND", "E1-add-column-email-address"}},
		{"md", []string{"# cutover plan\n", "## Summary", "- [ ] **E1-add-column-email-address**", "```sql\n"}},
		{"json", []string{`"version": 1`, `"id": "E1-add-column-email-address"`}},
	} {
		t.Run("format="+tc.format, func(t *testing.T) {
			args := []string{"plan", "--schema", pagila, "--sql", renameEmail}
			if tc.format != "" {
				args = append(args, "--format", tc.format)
			}
			r := run(t, "", args...)
			ok(t, r)
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if tc.format == "json" {
				p := decode(t, r.stdout)
				if p.Input != renameEmail || p.Facts.Source == "none" {
					t.Errorf("plan input %q, source %q", p.Input, p.Facts.Source)
				}
			}
			if again := run(t, "", args...); again.stdout != r.stdout {
				t.Error("two runs with the same input print different plans")
			}
		})
	}
}

func TestPlanInputSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "change.sql")
	if err := os.WriteFile(file, []byte(renameEmail), 0o644); err != nil {
		t.Fatal(err)
	}
	want := run(t, "", "plan", "--schema", pagila, "--format", "json", "--sql", renameEmail)
	ok(t, want)
	for name, r := range map[string]result{
		"-f FILE": run(t, "", "plan", "--schema", pagila, "--format", "json", "-f", file),
		"--file":  run(t, "", "plan", "--schema", pagila, "--format", "json", "--file="+file),
		"-":       run(t, renameEmail, "plan", "--schema", pagila, "--format", "json", "-"),
		"-f -":    run(t, renameEmail, "plan", "--schema", pagila, "--format", "json", "-f", "-"),
	} {
		ok(t, r)
		if r.stdout != want.stdout {
			t.Errorf("%s: plan differs from the --sql plan", name)
		}
	}
}

func TestPlanWithoutSchemaListsAssumptions(t *testing.T) {
	r := run(t, "", "plan", "--format", "json", "--sql", "CREATE TABLE t (id bigint PRIMARY KEY)")
	ok(t, r)
	p := decode(t, r.stdout)
	if p.Facts.Source != "none" || len(p.Assumptions) == 0 {
		t.Errorf("source %q, %d assumptions; want none and some", p.Facts.Source, len(p.Assumptions))
	}
}

func TestPlanBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.sql", renameEmail)
	badSQL := write("bad.sql", "-- a comment\nALTER TABLE customer\n  RENAME COLUMN email TO;\n")
	badSchema := write("bad-schema.sql", "CREATE TABLE public.t (\n    id integer NOT NULL,\n    name text\n;\n")

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no input", "", []string{"plan"}, "no SQL to plan"},
		{"--sql and -f", "", []string{"plan", "--sql", renameEmail, "-f", good}, "one way only"},
		{"--sql and -", renameEmail, []string{"plan", "--sql", renameEmail, "-"}, "one way only"},
		{"missing file", "", []string{"plan", "-f", filepath.Join(dir, "nope.sql")}, "cannot read -f " + filepath.Join(dir, "nope.sql") + ": no such file or directory"},
		{"file is a directory", "", []string{"plan", "-f", dir}, "cannot read -f " + dir},
		{"unknown format", "", []string{"plan", "--sql", renameEmail, "--format", "xml"}, `unknown --format "xml": use text, md or json`},
		{"missing schema file", "", []string{"plan", "--sql", renameEmail, "--schema", filepath.Join(dir, "nope.sql")}, "cannot read --schema"},
		{"schema does not parse", "", []string{"plan", "--sql", renameEmail, "--schema", badSchema}, "--schema " + badSchema + ":4:1: "},
		{"-o into a missing directory", "", []string{"plan", "--sql", renameEmail, "-o", filepath.Join(dir, "missing", "plan.md")}, "directory " + filepath.Join(dir, "missing") + " does not exist"},
		{"-o is a directory", "", []string{"plan", "--sql", renameEmail, "-o", dir}, "it is a directory"},
		{"syntax error", "", []string{"plan", "--sql", "ALTER TABL customer"}, "syntax error at line 1, column 7"},
		{"syntax error in a file", "", []string{"plan", "-f", badSQL}, badSQL + ": syntax error at line 3, column 25"},
		{"syntax error quoting a line break", "", []string{"plan", "--sql", "ALTER \"abc\ndef"}, `unterminated quoted identifier at or near ""abc\ndef"`},
		{"empty SQL", "", []string{"plan", "--sql", "  "}, "no SQL statement"},
		{"empty stdin", "", []string{"plan", "-"}, "stdin: syntax error at line 1, column 1: no SQL statement"},
		{"unknown table", "", []string{"plan", "--schema", pagila, "--sql", "ALTER TABLE nope RENAME COLUMN a TO b"}, "table public.nope does not exist"},
		{"unknown column", "", []string{"plan", "--schema", pagila, "--sql", "ALTER TABLE customer RENAME COLUMN nope TO b"}, "column nope does not exist"},
		{"unsupported statement", "", []string{"plan", "--sql", "VACUUM FULL customer"}, "cannot plan"},
		{"unknown flag", "", []string{"plan", "--nope"}, "unknown flag: --nope"},
		{"stray argument", "", []string{"plan", "--sql", renameEmail, "extra"}, `unexpected argument "extra"`},
		{"unknown command", "", []string{"nope"}, `unknown command "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			badInput(t, run(t, tc.stdin, tc.args...), tc.want)
		})
	}
}

func TestPlanOutputFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "PLAN.md")
	want := run(t, "", "plan", "--schema", pagila, "--format", "md", "--sql", renameEmail)
	ok(t, want)

	r := run(t, "", "plan", "--schema", pagila, "--format", "md", "--sql", renameEmail, "-o", out)
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("with -o: exit %d, stdout %q, stderr %q; want 0 and no output", r.code, r.stdout, r.stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.stdout {
		t.Error("the -o file differs from what stdout gets")
	}

	// A failing run leaves an existing file as it was, and no temporary
	// file behind.
	badInput(t, run(t, "", "plan", "--sql", "ALTER TABL x", "-o", out), "syntax error")
	if again, _ := os.ReadFile(out); string(again) != want.stdout {
		t.Error("a failed run changed the -o file")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only PLAN.md", names)
	}
}

// Done when: the rename on pagila has at least three deploys: expand db,
// an application release, contract db.
func TestRenameEmailDeploys(t *testing.T) {
	r := run(t, "", "plan", "--schema", pagila, "--format", "json", "--sql", renameEmail)
	ok(t, r)
	p := decode(t, r.stdout)
	type deploy struct {
		phase plans.PhaseName
		kind  plans.DeployKind
	}
	var ds []deploy
	for _, ph := range p.Phases {
		for _, d := range ph.Deploys {
			ds = append(ds, deploy{ph.Name, d.Kind})
		}
	}
	if len(ds) < 3 {
		t.Fatalf("%d deploys, want at least 3: %v", len(ds), ds)
	}
	if ds[0] != (deploy{plans.Expand, plans.DB}) {
		t.Errorf("first deploy is %v, want expand db", ds[0])
	}
	if last := ds[len(ds)-1]; last != (deploy{plans.Contract, plans.DB}) {
		t.Errorf("last deploy is %v, want contract db", last)
	}
	app := false
	for _, d := range ds[1 : len(ds)-1] {
		if d.kind == plans.App {
			app = true
		}
	}
	if !app {
		t.Errorf("no application release between expand and contract: %v", ds)
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	r := run(t, "", "plan", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--schema") || r.stderr != "" {
		t.Errorf("plan --help: exit %d, stderr %q", r.code, r.stderr)
	}
}
