package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/plans"
)

// cutover check, driven through the real binary.

const (
	corpus       = "testdata/migrations"
	corpusSchema = "testdata/migrations/schema.sql"
)

// writeFiles writes name -> content under a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// findings asserts exit 1: the report on stdout and one summary line on
// stderr.
func findings(t *testing.T, r result) {
	t.Helper()
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (stderr %q)", r.code, r.stderr)
	}
	if r.stdout == "" {
		t.Error("no report on stdout")
	}
	if !strings.HasPrefix(r.stderr, "cutover: ") || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "unsafe finding") {
		t.Errorf("stderr %q, want one summary line", r.stderr)
	}
}

func TestCheckExitCodes(t *testing.T) {
	clean := writeFiles(t, map[string]string{
		"001_create.sql": "CREATE TABLE t (id bigint PRIMARY KEY, a int);\nCREATE INDEX t_a_idx ON t (a);\n",
		"002_alter.sql":  "SET lock_timeout = '2s';\nALTER TABLE t ADD COLUMN b text;\nCREATE INDEX CONCURRENTLY t_b_idx ON t (b);\n",
	})
	r := run(t, "", "check", clean)
	ok(t, r)
	if !strings.Contains(r.stdout, "Nothing unsafe. 5 statements in 2 files checked.") {
		t.Errorf("clean output:\n%s", r.stdout)
	}

	suppressed := writeFiles(t, map[string]string{
		"1.sql": "SET lock_timeout = '2s';\n-- cutover:ignore CUT004 the table was never used\nDROP TABLE old_stuff;\n",
	})
	r = run(t, "", "check", suppressed)
	ok(t, r)
	if !strings.Contains(r.stdout, "CUT004 drop-table  suppressed: the table was never used") {
		t.Errorf("suppressed finding not listed:\n%s", r.stdout)
	}

	findings(t, run(t, "", "check", "--schema", corpusSchema, filepath.Join(corpus, "goose")))

	bad := writeFiles(t, map[string]string{
		"1_ok.sql":      "SELECT 1;",
		"2_syntax.sql":  "-- a comment\n\nALTER TABLE t\n  ADD COLUMN;\n",
		"goose/1_x.sql": "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
		"unknown.sql":   "SET lock_timeout = '2s';\n  ALTER TABLE nope ADD COLUMN a int;\n",
		"plan-dir-file": "",
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"syntax error", []string{"check", bad + "/1_ok.sql", bad + "/2_syntax.sql"}, bad + "/2_syntax.sql:4:13: syntax error: syntax error at or near \";\""},
		{"goose block", []string{"check", bad + "/goose"}, bad + "/goose/1_x.sql:2: -- +goose StatementBegin has no -- +goose StatementEnd"},
		{"contradicts the schema", []string{"check", "--schema", corpusSchema, bad + "/unknown.sql"}, bad + "/unknown.sql:2:3: \"ALTER TABLE nope ADD COLUMN a int\": table public.nope does not exist in the schema"},
		{"missing path", []string{"check", bad + "/nope"}, bad + "/nope: no such file or directory"},
		{"no path", []string{"check"}, "no migrations to check"},
		{"unknown format", []string{"check", "--format", "sarif", clean}, `unknown --format "sarif": use text, json or github`},
		{"schema twice", []string{"check", "--schema", corpusSchema, "--db", "postgres://x", clean}, "one way only"},
		{"plan dir is a file", []string{"check", "--plan-dir", bad + "/plan-dir-file", clean}, "--plan-dir " + bad + "/plan-dir-file is not a directory"},
		{"schema file missing", []string{"check", "--schema", bad + "/nope.sql", clean}, "cannot read --schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			badInput(t, run(t, "", tc.args...), tc.want)
		})
	}
}

// findingJSON and checkJSON are the documented fields of the JSON report.
type findingJSON struct {
	Rule        string   `json:"rule"`
	Name        string   `json:"name"`
	File        string   `json:"file"`
	Line        int      `json:"line"`
	Column      int      `json:"column"`
	Statement   string   `json:"statement"`
	Table       string   `json:"table"`
	Lock        string   `json:"lock"`
	Hazards     []string `json:"hazards"`
	Reason      string   `json:"reason"`
	Alternative string   `json:"alternative"`
	Suppressed  string   `json:"suppressed"`
	PlanFile    string   `json:"plan_file"`
	PlanError   string   `json:"plan_error"`
}

type checkJSON struct {
	Version    int           `json:"version"`
	Files      int           `json:"files"`
	Statements int           `json:"statements"`
	Unjudged   int           `json:"unjudged"`
	Findings   []findingJSON `json:"findings"`
	Suppressed []findingJSON `json:"suppressed"`
}

func TestCheckFormats(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"0001_a,b.up.sql":   "SET lock_timeout = '2s';\nCREATE INDEX users_email_idx ON users (email);\n-- cutover:ignore CUT004 empty since 2021\nDROP TABLE audit_log;\n",
		"0001_a,b.down.sql": "DROP INDEX users_email_idx;\n",
	})
	file := filepath.Join(dir, "0001_a,b.up.sql")

	r := run(t, "", "check", "--schema", corpusSchema, "--format", "json", dir)
	findings(t, r)
	var rep checkJSON
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, r.stdout)
	}
	if rep.Version != 1 || rep.Files != 1 || rep.Statements != 3 || rep.Unjudged != 0 || len(rep.Findings) != 1 || len(rep.Suppressed) != 1 {
		t.Fatalf("report %+v", rep)
	}
	f := rep.Findings[0]
	if f.Rule != "CUT013" || f.Name != "create-index" || f.File != file || f.Line != 2 || f.Column != 1 ||
		f.Statement != "CREATE INDEX users_email_idx ON users (email)" || f.Table != "public.users" || f.Lock != "SHARE" ||
		strings.Join(f.Hazards, ",") != "BLOCKS_WRITES,TABLE_SCAN" || f.Reason == "" || !strings.Contains(f.Alternative, "CONCURRENTLY") || f.Suppressed != "" {
		t.Errorf("finding %+v", f)
	}
	if s := rep.Suppressed[0]; s.Rule != "CUT004" || s.Suppressed != "empty since 2021" {
		t.Errorf("suppressed %+v", s)
	}

	r = run(t, "", "check", "--schema", corpusSchema, "--format", "github", dir)
	findings(t, r)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	escaped := strings.ReplaceAll(file, ",", "%2C")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "::error file="+escaped+",line=2,col=1,title=CUT013 create-index::CUT013 CREATE INDEX users_email_idx ON users (email): Takes SHARE on public.users") {
		t.Errorf("github output:\n%s", r.stdout)
	}
	if !strings.HasPrefix(lines[1], "cutover check: 1 unsafe finding (3 statements in 1 file checked, 1 finding suppressed)") {
		t.Errorf("github summary %q", lines[1])
	}

	r = run(t, "", "check", "--schema", corpusSchema, dir)
	findings(t, r)
	for _, want := range []string{
		file + "\n  2:1     CUT013 create-index\n          CREATE INDEX users_email_idx ON users (email)\n          Takes SHARE on public.users",
		"          Instead: CREATE INDEX CONCURRENTLY, alone, outside a transaction block.\n",
		"  4:1     CUT004 drop-table  suppressed: empty since 2021\n",
		"\n1 unsafe finding. 3 statements in 1 file checked, 1 finding suppressed.\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestCheckPlanDir(t *testing.T) {
	out := filepath.Join(t.TempDir(), "plans")
	dir := writeFiles(t, map[string]string{
		"db/0002_rename.up.sql": "SET lock_timeout = '2s';\nALTER TABLE users RENAME COLUMN name TO full_name;\nVACUUM FULL orders;\n",
	})
	r := run(t, "", "check", "--schema", corpusSchema, "--plan-dir", out, "--format", "json", filepath.Join(dir, "db"))
	findings(t, r)
	var rep checkJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	var rename, vacuum string
	for _, f := range rep.Findings {
		switch f.Rule {
		case "CUT001":
			rename = f.PlanFile
		case "CUT017":
			vacuum = f.PlanFile
			if !strings.Contains(f.PlanError, "pg_repack") {
				t.Errorf("VACUUM FULL plan_error %q", f.PlanError)
			}
		}
	}
	if vacuum != "" {
		t.Errorf("a plan was written for VACUUM FULL: %s", vacuum)
	}
	if rename == "" || !strings.HasSuffix(rename, "_db_0002_rename.up.sql-L2.md") || filepath.Dir(rename) != out {
		t.Fatalf("rename plan file %q", rename)
	}
	md, err := os.ReadFile(rename)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(md), "# cutover plan\n") || !strings.Contains(string(md), "ALTER TABLE users RENAME COLUMN name TO full_name") {
		t.Errorf("Markdown plan:\n%s", md)
	}
	js, err := os.ReadFile(strings.TrimSuffix(rename, ".md") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := plans.Decode(js)
	if err != nil {
		t.Fatal(err)
	}
	if p.Input != "ALTER TABLE users RENAME COLUMN name TO full_name" || p.Facts.Source != "schema file "+corpusSchema || len(p.Phases) != 3 {
		t.Errorf("JSON plan: input %q, source %q, %d phases", p.Input, p.Facts.Source, len(p.Phases))
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 2 {
		t.Errorf("%d files in --plan-dir, want the rename's .md and .json", len(entries))
	}
	text := run(t, "", "check", "--schema", corpusSchema, "--plan-dir", out, filepath.Join(dir, "db"))
	if !strings.Contains(text.stdout, "Safe plan: "+rename+"\n") || !strings.Contains(text.stdout, "No safe plan: ") {
		t.Errorf("text output does not name the plans:\n%s", text.stdout)
	}
}

// Done when: cutover check over a directory of 1,000 migration files
// takes under 1 s (here the whole binary: start, read, parse, check).
func TestCheckThousandFiles(t *testing.T) {
	files := map[string]string{}
	for i := 1; i <= 1000; i++ {
		files[fmt.Sprintf("%06d_change.up.sql", i)] = generatedMigration(i)
	}
	dir := writeFiles(t, files)
	start := time.Now()
	r := run(t, "", "check", dir)
	took := time.Since(start)
	findings(t, r)
	if !strings.Contains(r.stdout, "in 1000 files checked") {
		t.Errorf("summary: %s", r.stdout[max(0, len(r.stdout)-300):])
	}
	t.Logf("cutover check over 1,000 files: %v", took)
	if took > 3*time.Second {
		t.Errorf("cutover check over 1,000 files took %v (the goal is under 1 s)", took)
	}
}

// generatedMigration is a typical small migration: a new table, its
// index and a column on it, a change of an existing table, a backfill.
func generatedMigration(i int) string {
	return fmt.Sprintf(`-- Migration %d
SET lock_timeout = '2s';
CREATE TABLE items_%d (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX items_%d_name_idx ON items_%d (name);
ALTER TABLE items_%d ADD COLUMN price numeric(10,2);
ALTER TABLE orders ADD COLUMN note_%d text;
CREATE INDEX orders_note_%d_idx ON orders (note_%d);
UPDATE orders SET note_%d = 'n/a' WHERE note_%d IS NULL;
`, i, i, i, i, i, i, i, i, i, i)
}
