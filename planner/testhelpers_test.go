package planner

// Helpers shared by the change kinds' tests (package planner).

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// assertParses fails the test unless every SQL text of the plan parses with
// pg_query: step SQL, rollbacks, gates, and the backfill's assignments and
// predicate; the bodies of PL/pgSQL functions the plan creates are parsed
// with the PL/pgSQL parser too.
func assertParses(t *testing.T, p *plans.Plan) {
	t.Helper()
	check := func(where, sql string) {
		t.Helper()
		if strings.TrimSpace(sql) == "" {
			t.Errorf("%s: empty SQL", where)
			return
		}
		tree, err := pg_query.Parse(sql)
		if err != nil {
			t.Errorf("%s does not parse: %v\n%s", where, err, sql)
			return
		}
		for _, raw := range tree.Stmts {
			fn := raw.Stmt.GetCreateFunctionStmt()
			if fn == nil || !isPlpgsql(fn) {
				continue
			}
			text := sql[raw.StmtLocation:]
			if raw.StmtLen > 0 {
				text = sql[raw.StmtLocation : raw.StmtLocation+raw.StmtLen]
			}
			if _, err := pg_query.ParsePlPgSqlToJSON(text); err != nil {
				t.Errorf("%s: PL/pgSQL body does not parse: %v\n%s", where, err, text)
			}
		}
	}
	for _, ref := range p.Steps() {
		s := ref.Step
		check(s.ID+" sql", s.SQL)
		if !s.Irreversible {
			check(s.ID+" rollback", s.Rollback)
		}
		if s.Gate != nil {
			check(s.ID+" gate", s.Gate.SQL)
		}
		if bf := s.Backfill; bf != nil {
			stmt := "UPDATE " + bf.Table + " SET " + strings.Join(bf.Set, ", ") + " WHERE " + bf.Where
			if bf.Delete {
				stmt = "DELETE FROM " + bf.Table + " WHERE " + bf.Where
			}
			check(s.ID+" backfill", stmt)
		}
	}
}

func isPlpgsql(fn *pg_query.CreateFunctionStmt) bool {
	for _, o := range fn.Options {
		de := o.GetDefElem()
		if de != nil && de.Defname == "language" && strings.EqualFold(de.Arg.GetString_().GetSval(), "plpgsql") {
			return true
		}
	}
	return false
}

var (
	testSchemaMu    sync.Mutex
	testSchemaCache = map[string]*schema.Schema{}
)

// pagila returns the project's pagila schema, parsed once per test binary.
// Plans must not modify the schema, so it is shared.
func pagila(t *testing.T) *schema.Schema {
	t.Helper()
	const path = "../testdata/pagila/schema.sql"
	testSchemaMu.Lock()
	defer testSchemaMu.Unlock()
	if s := testSchemaCache[path]; s != nil {
		return s
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.ParseDump(path, string(src))
	if err != nil {
		t.Fatal(err)
	}
	testSchemaCache[path] = s
	return s
}

// schemaOf parses a small schema written as SQL for one test.
func schemaOf(t *testing.T, sql string) *schema.Schema {
	t.Helper()
	s, err := schema.ParseDump("test", sql)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustPlan plans sql against s (nil: no schema), checks that every
// statement of the plan parses, and returns it.
func mustPlan(t *testing.T, sql string, s *schema.Schema) *plans.Plan {
	t.Helper()
	p, err := Plan(sql, Options{Schema: s})
	if err != nil {
		t.Fatalf("Plan(%q): %v", sql, err)
	}
	assertParses(t, p)
	return p
}

// planError plans sql and returns the error, failing the test when there
// is none.
func planError(t *testing.T, sql string, s *schema.Schema) error {
	t.Helper()
	_, err := Plan(sql, Options{Schema: s})
	if err == nil {
		t.Fatalf("Plan(%q): want an error, got a plan", sql)
	}
	return err
}

// wantInvalid checks that planning fails with an *InvalidError whose
// reason contains every fragment.
func wantInvalid(t *testing.T, sql string, s *schema.Schema, fragments ...string) {
	t.Helper()
	err := planError(t, sql, s)
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("Plan(%q): want *InvalidError, got %T: %v", sql, err, err)
	}
	for _, f := range fragments {
		if !strings.Contains(ie.Reason, f) {
			t.Errorf("Plan(%q): error %q lacks %q", sql, ie.Reason, f)
		}
	}
}

// wantUnsupported checks that planning fails with an *UnsupportedError
// whose reason contains every fragment.
func wantUnsupported(t *testing.T, sql string, s *schema.Schema, fragments ...string) {
	t.Helper()
	err := planError(t, sql, s)
	var ue *UnsupportedError
	if !errors.As(err, &ue) {
		t.Fatalf("Plan(%q): want *UnsupportedError, got %T: %v", sql, err, err)
	}
	for _, f := range fragments {
		if !strings.Contains(ue.Reason, f) {
			t.Errorf("Plan(%q): error %q lacks %q", sql, ue.Reason, f)
		}
	}
}

// shape describes a plan as "phase:kind" per deploy, e.g.
// "expand:db migrate:db migrate:app contract:db".
func shape(p *plans.Plan) string {
	var out []string
	for _, ph := range p.Phases {
		for _, d := range ph.Deploys {
			out = append(out, string(ph.Name)+":"+string(d.Kind))
		}
	}
	return strings.Join(out, " ")
}

// stepIDs lists the ids of every db step in order.
func stepIDs(p *plans.Plan) []string {
	var out []string
	for _, ref := range p.Steps() {
		out = append(out, ref.Step.ID)
	}
	return out
}

// step returns the step with the id, failing the test when there is none.
func step(t *testing.T, p *plans.Plan, id string) *plans.Step {
	t.Helper()
	for _, ref := range p.Steps() {
		if ref.Step.ID == id {
			return ref.Step
		}
	}
	t.Fatalf("no step %q in plan; steps: %v", id, stepIDs(p))
	return nil
}

// instructions returns every application release instruction, joined.
func instructions(p *plans.Plan) string {
	var out []string
	for _, ph := range p.Phases {
		for _, d := range ph.Deploys {
			if d.Kind == plans.App {
				out = append(out, d.Instructions...)
			}
		}
	}
	return strings.Join(out, "\n")
}

// containsAll fails the test unless text contains every fragment.
func containsAll(t *testing.T, what, text string, fragments ...string) {
	t.Helper()
	for _, f := range fragments {
		if !strings.Contains(text, f) {
			t.Errorf("%s lacks %q:\n%s", what, f, text)
		}
	}
}

// hasHazard reports whether the step has a hazard of the type.
func hasHazard(s *plans.Step, typ plans.HazardType) bool {
	for _, h := range s.Hazards {
		if h.Type == typ {
			return true
		}
	}
	return false
}

// quotingSchema has names that must be quoted: a table "Order Items" with
// columns "Unit Price" and user, a view on them, and an index.
const quotingSchema = `
CREATE TABLE public."Order Items" (
    id integer NOT NULL,
    "Unit Price" numeric(8,2) NOT NULL,
    "user" text,
    note character varying(20)
);
ALTER TABLE ONLY public."Order Items" ADD CONSTRAINT "Order Items_pkey" PRIMARY KEY (id);
CREATE INDEX "Order Items_Unit Price_idx" ON public."Order Items" USING btree ("Unit Price");
CREATE VIEW public."Big Orders" AS SELECT "Order Items".id, "Order Items"."Unit Price", "Order Items"."user" FROM public."Order Items" WHERE "Order Items"."Unit Price" > 100;
`
