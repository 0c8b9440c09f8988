package planner_test

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// Golden plans live in planner/testdata/golden: <case>.json (plans.Encode)
// and <case>.md (plans.Markdown). Regenerate them with
//
//	go test ./planner -run TestGolden -update
//
// and read the diff: it is the review of what the planner now emits.

var updateFlag = defineUpdate()

// defineUpdate defines -update unless another test file of this test
// binary already has (flags may be defined only once).
func defineUpdate() *bool {
	if f := flag.Lookup("update"); f != nil {
		return nil
	}
	return flag.Bool("update", false, "rewrite the golden files in testdata/golden")
}

func updating() bool {
	if updateFlag != nil {
		return *updateFlag
	}
	return flag.Lookup("update").Value.String() == "true"
}

const goldenDir = "testdata/golden"

// The schemas cases are planned against: pagila (the project's copy of
// the sample database) and a small schema with names that need quoting
// and a table without a primary key (pagila has none).
var schemaFiles = map[string]string{
	"pagila":  "../testdata/pagila/schema.sql",
	"quoting": "testdata/quoting.sql",
}

var (
	schemaMu    sync.Mutex
	schemaCache = map[string]*schema.Schema{}
)

// loadSchema parses a schema once per test binary. The planner must not
// modify the schema it plans against, so sharing it is safe.
func loadSchema(t testing.TB, name string) *schema.Schema {
	t.Helper()
	schemaMu.Lock()
	defer schemaMu.Unlock()
	if s := schemaCache[name]; s != nil {
		return s
	}
	path := schemaFiles[name]
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.ParseDump(path, string(src))
	if err != nil {
		t.Fatal(err)
	}
	// Name the file from the repository root, as the CLI would be run.
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		t.Fatal(err)
	}
	s.Source = "schema file " + rel
	schemaCache[name] = s
	return s
}

type goldenCase struct {
	name   string
	schema string // key of schemaFiles; "" plans without a schema
	sql    string
}

// goldenCases: one per change kind of the plan engine, plus the cases the
// issue's Done-when list names.
var goldenCases = []goldenCase{
	{"rename-column", "pagila", "ALTER TABLE customer RENAME COLUMN email TO email_address"},
	{"change-type", "pagila", "ALTER TABLE film ALTER COLUMN length TYPE integer"},
	{"change-type-using", "pagila", "ALTER TABLE customer ALTER COLUMN active TYPE boolean USING active <> 0"},
	{"change-type-widening", "pagila", "ALTER TABLE film ALTER COLUMN rental_rate TYPE numeric(6,2)"},
	{"change-type-primary-key", "pagila", "ALTER TABLE rental ALTER COLUMN rental_id TYPE bigint"},
	{"drop-column", "pagila", "ALTER TABLE customer DROP COLUMN active"},
	{"add-column-not-null-default", "pagila", "ALTER TABLE customer ADD COLUMN loyalty_points integer NOT NULL DEFAULT 0"},
	{"add-column-not-null-no-default", "pagila", "ALTER TABLE customer ADD COLUMN referral_code text NOT NULL"},
	{"add-column-volatile-default", "pagila", "ALTER TABLE customer ADD COLUMN external_id uuid DEFAULT gen_random_uuid()"},
	{"add-two-columns", "pagila", "ALTER TABLE customer ADD COLUMN external_id uuid DEFAULT gen_random_uuid(), ADD COLUMN signup_at timestamptz DEFAULT clock_timestamp()"},
	{"set-not-null", "pagila", "ALTER TABLE address ALTER COLUMN postal_code SET NOT NULL"},
	{"drop-not-null", "pagila", "ALTER TABLE address ALTER COLUMN phone DROP NOT NULL"},
	{"add-foreign-key", "pagila", "ALTER TABLE store ADD CONSTRAINT store_manager_staff_id_fkey FOREIGN KEY (manager_staff_id) REFERENCES staff (staff_id)"},
	{"add-check", "pagila", "ALTER TABLE film ADD CONSTRAINT film_length_positive CHECK (length > 0)"},
	{"add-unique", "pagila", "ALTER TABLE customer ADD CONSTRAINT customer_email_key UNIQUE (email)"},
	{"add-primary-key", "quoting", "ALTER TABLE events ADD PRIMARY KEY (id)"},
	{"create-index", "pagila", "CREATE INDEX idx_customer_email ON customer (email)"},
	{"drop-index", "pagila", "DROP INDEX idx_last_name"},
	{"rename-table", "pagila", "ALTER TABLE language RENAME TO languages"},
	{"drop-table", "pagila", "DROP TABLE film_actor CASCADE"},
	{"drop-table-partition", "pagila", "DROP TABLE payment_p2022_07"},
	{"set-default", "pagila", "ALTER TABLE film ALTER COLUMN rental_duration SET DEFAULT 5"},
	{"drop-default", "pagila", "ALTER TABLE film ALTER COLUMN rental_rate DROP DEFAULT"},
	{"add-enum-value", "pagila", "ALTER TYPE mpaa_rating ADD VALUE 'NR'"},
	{"big-update", "pagila", "UPDATE rental SET return_date = rental_date + interval '3 days' WHERE return_date IS NULL"},
	{"big-delete", "pagila", "DELETE FROM rental WHERE rental_date < '2022-02-01'"},
	{"create-table", "pagila", "CREATE TABLE loyalty_tier (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE)"},
	{"multi-statement", "pagila", `-- a migration file as a framework would write it
BEGIN;
ALTER TABLE customer ADD COLUMN external_id uuid DEFAULT gen_random_uuid();
ALTER TABLE customer RENAME COLUMN email TO email_address;
CREATE INDEX idx_rental_return_date ON rental (return_date);
ALTER TABLE film ADD CONSTRAINT film_length_positive CHECK (length > 0);
COMMIT;
`},
	// Statements that build on each other (each is planned against the
	// schema as the statements before it leave it).
	{"multi-drop-views-then-table", "pagila", "DROP VIEW actor_info; DROP VIEW film_list; DROP VIEW nicer_but_slower_film_list; DROP TABLE film_actor"},
	{"multi-new-table", "pagila", `CREATE TABLE loyalty_card (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id integer NOT NULL);
CREATE INDEX ON loyalty_card (customer_id);
ALTER TABLE loyalty_card ADD COLUMN points integer NOT NULL DEFAULT 0;
ALTER TABLE loyalty_card ADD FOREIGN KEY (customer_id) REFERENCES customer (customer_id);`},
	{"multi-rename-then-index", "pagila", "ALTER TABLE customer RENAME COLUMN email TO email_address; CREATE INDEX ON customer (email_address)"},
	{"no-schema-rename-table", "", "ALTER TABLE language RENAME TO languages"},
	// Identifiers that need quoting: a name with a space and capitals, and
	// a reserved word as a column name.
	{"quoting-rename", "quoting", `ALTER TABLE "Order Items" RENAME COLUMN "Unit Price" TO "Price Per Unit"`},
	{"quoting-change-type", "quoting", `ALTER TABLE "Order Items" ALTER COLUMN "Unit Price" TYPE numeric(14,4)`},
	{"quoting-rename-user", "quoting", `ALTER TABLE "Order Items" RENAME COLUMN "user" TO "User Name"`},
}

// refusedCases are input the planner must refuse with one clear line; the
// golden file <case>.err holds it.
var refusedCases = []goldenCase{
	{"refuse-drop-column-used-by-view", "pagila", "ALTER TABLE customer DROP COLUMN activebool"},
	{"refuse-unknown-column", "pagila", "ALTER TABLE customer RENAME COLUMN mail TO email_address"},
	{"refuse-name-taken", "pagila", "ALTER TABLE customer RENAME COLUMN email TO last_name"},
	{"refuse-drop-table-used", "pagila", "DROP TABLE film_actor"},
}

func TestGoldenRefused(t *testing.T) {
	for _, c := range refusedCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := planner.Plan(c.sql, planner.Options{Schema: loadSchema(t, c.schema)})
			if err == nil {
				t.Fatal("planned input that must be refused")
			}
			compareGolden(t, c.name+".err", []byte(err.Error()+"\n"))
		})
	}
}

func planCase(t *testing.T, c goldenCase) *plans.Plan {
	t.Helper()
	var opts planner.Options
	if c.schema != "" {
		opts.Schema = loadSchema(t, c.schema)
	}
	p, err := planner.Plan(c.sql, opts)
	if err != nil {
		t.Fatalf("plan %s: %v", c.name, err)
	}
	return p
}

func TestGolden(t *testing.T) {
	if updating() {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			p := planCase(t, c)
			js, err := plans.Encode(p)
			if err != nil {
				t.Fatal(err)
			}
			// The encoding round-trips byte for byte.
			back, err := plans.Decode(js)
			if err != nil {
				t.Fatalf("decode own encoding: %v", err)
			}
			if js2, _ := plans.Encode(back); string(js2) != string(js) {
				t.Error("Decode then Encode changes the plan")
			}
			// Planning is deterministic.
			if js3, _ := plans.Encode(planCase(t, c)); string(js3) != string(js) {
				t.Error("planning the same input twice gives different plans")
			}
			compareGolden(t, c.name+".json", js)
			compareGolden(t, c.name+".md", []byte(plans.Markdown(p)))
		})
	}
}

func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if updating() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run go test ./planner -run TestGolden -update to create it", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file; run go test ./planner -run TestGolden -update and review the diff\n%s", path, firstDiff(string(want), string(got)))
	}
}

// firstDiff shows the first differing line, which is usually enough to
// see what changed.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + w + "\n  got:  " + g
		}
	}
	return ""
}

// goldenPlans reads every golden JSON plan.
func goldenPlans(t *testing.T) map[string]*plans.Plan {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden plans: run go test ./planner -run TestGolden -update")
	}
	out := map[string]*plans.Plan{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := plans.Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = p
	}
	return out
}

// Every SQL text in every golden plan parses with PostgreSQL's parser:
// step SQL, rollbacks, gates, and the backfill's assignments and
// predicate. Multi-statement SQL is split by the parser itself.
func TestGoldenSQLParses(t *testing.T) {
	for file, p := range goldenPlans(t) {
		for _, ref := range p.Steps() {
			s := ref.Step
			check := func(what, sql string, wantStmts int) {
				res, err := pg_query.Parse(sql)
				if err != nil {
					t.Errorf("%s %s %s does not parse: %v\n%s", file, s.ID, what, err, sql)
					return
				}
				if len(res.Stmts) == 0 || (wantStmts > 0 && len(res.Stmts) != wantStmts) {
					t.Errorf("%s %s %s has %d statements\n%s", file, s.ID, what, len(res.Stmts), sql)
				}
			}
			check("sql", s.SQL, 0)
			if !s.Irreversible {
				check("rollback", s.Rollback, 0)
			}
			if s.Gate != nil {
				check("gate", s.Gate.SQL, 1)
			}
			if b := s.Backfill; b != nil {
				if b.Delete {
					check("backfill", "DELETE FROM "+b.Table+" WHERE "+b.Where, 1)
				} else {
					check("backfill", "UPDATE "+b.Table+" SET "+strings.Join(b.Set, ", ")+" WHERE "+b.Where, 1)
				}
				if len(b.Key) > 0 {
					check("backfill key", "SELECT "+strings.Join(b.Key, ", ")+" FROM "+b.Table, 1)
				}
			}
		}
	}
}

// Identifiers that need quoting are quoted: the names survive a round
// trip through the parser exactly, and the column named user is never read
// as the CURRENT_USER function.
func TestGoldenQuoting(t *testing.T) {
	for file, p := range goldenPlans(t) {
		if !strings.HasPrefix(file, "quoting-") {
			continue
		}
		var all []string
		for _, ref := range p.Steps() {
			all = append(all, ref.Step.SQL, ref.Step.Rollback)
			if ref.Step.Gate != nil {
				all = append(all, ref.Step.Gate.SQL)
			}
		}
		var trees strings.Builder
		for _, sql := range all {
			if sql == "" {
				continue
			}
			js, err := pg_query.ParseToJSON(sql)
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			trees.WriteString(js)
		}
		tree := trees.String()
		if !strings.Contains(tree, `"relname":"Order Items"`) {
			t.Errorf("%s: no statement names the table \"Order Items\"", file)
		}
		if strings.Contains(tree, `"relname":"order"`) || strings.Contains(tree, `"relname":"order items"`) {
			t.Errorf("%s: the table name lost its quotes", file)
		}
		if strings.Contains(tree, "SQLValueFunction") {
			t.Errorf("%s: a column named user was read as CURRENT_USER", file)
		}
		want := map[string]string{
			"quoting-rename.json":      `{"String":{"sval":"Price Per Unit"}}`,
			"quoting-change-type.json": `{"String":{"sval":"Unit Price"}}`,
			"quoting-rename-user.json": `{"String":{"sval":"user"}}`,
		}[file]
		if want != "" && !strings.Contains(tree, want) {
			t.Errorf("%s: no statement uses the identifier %s", file, want)
		}
	}
}

// Done when: the rename of customer.email has an expand db deploy, an
// application release and a contract db deploy.
func TestDoneWhenRenameEmail(t *testing.T) {
	p := planCase(t, goldenCase{"rename", "pagila", "ALTER TABLE customer RENAME COLUMN email TO email_address"})
	var kinds []string
	for _, ph := range p.Phases {
		for _, d := range ph.Deploys {
			kinds = append(kinds, string(ph.Name)+"/"+string(d.Kind))
		}
	}
	if len(kinds) < 3 || kinds[0] != "expand/db" || kinds[len(kinds)-1] != "contract/db" || !contains(kinds, "migrate/app") {
		t.Errorf("deploys %v: want at least expand/db, an app release, contract/db", kinds)
	}
}

// Done when: widening film.rental_rate is one safe db step that drops and
// recreates film_list and nicer_but_slower_film_list around the ALTER, in
// one transaction (PostgreSQL refuses to alter a column a view uses).
func TestDoneWhenRentalRateWidening(t *testing.T) {
	p := planCase(t, goldenCase{"widen", "pagila", "ALTER TABLE film ALTER COLUMN rental_rate TYPE numeric(6,2)"})
	steps := p.Steps()
	if len(steps) != 1 {
		t.Fatalf("%d steps, want 1", len(steps))
	}
	s := steps[0].Step
	if steps[0].Deploy.Kind != plans.DB || !s.Transactional || s.Rewrite != plans.ImpactNone {
		t.Errorf("step %s: kind %s, transactional %v, rewrite %s; want one transactional db step without rewrite", s.ID, steps[0].Deploy.Kind, s.Transactional, s.Rewrite)
	}
	res, err := pg_query.Parse(s.SQL)
	if err != nil {
		t.Fatal(err)
	}
	// Classify each statement of the step from its parse tree.
	const (
		dropView   = "drop view"
		alter      = "alter"
		createView = "create view"
	)
	var order []string
	dropped, created := map[string]bool{}, map[string]bool{}
	for _, raw := range res.Stmts {
		switch n := raw.Stmt.Node.(type) {
		case *pg_query.Node_DropStmt:
			if n.DropStmt.RemoveType == pg_query.ObjectType_OBJECT_VIEW {
				order = append(order, dropView)
				for _, o := range n.DropStmt.Objects {
					for _, part := range o.GetList().GetItems() {
						dropped[part.GetString_().GetSval()] = true
					}
				}
			}
		case *pg_query.Node_AlterTableStmt:
			if n.AlterTableStmt.Relation.GetRelname() == "film" {
				order = append(order, alter)
			}
		case *pg_query.Node_ViewStmt:
			order = append(order, createView)
			created[n.ViewStmt.View.GetRelname()] = true
		}
	}
	for _, v := range []string{"film_list", "nicer_but_slower_film_list"} {
		if !dropped[v] || !created[v] {
			t.Errorf("view %s: dropped %v, recreated %v; want both", v, dropped[v], created[v])
		}
	}
	ai := -1
	for i, o := range order {
		if o == alter {
			ai = i
		}
	}
	if ai < 0 {
		t.Fatalf("no ALTER TABLE film in the step:\n%s", s.SQL)
	}
	for i, o := range order {
		if (o == dropView && i > ai) || (o == createView && i < ai) {
			t.Errorf("statement order %v: views must be dropped before and recreated after the ALTER", order)
			break
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
