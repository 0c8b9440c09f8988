package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

const viewChainSchema = `
CREATE TABLE public.t (id integer NOT NULL, "Unit Price" numeric);
CREATE VIEW public.v1 AS SELECT t.id, t."Unit Price" FROM public.t;
CREATE VIEW public."Big v2" AS SELECT v1.id FROM public.v1 WHERE v1."Unit Price" > 100;
CREATE VIEW public.other AS SELECT t.id FROM public.t;
`

func TestDropView(t *testing.T) {
	p := mustPlan(t, "DROP VIEW sales_by_store", pagila(t))
	if got := shape(p); got != "migrate:app contract:db" {
		t.Errorf("shape = %q", got)
	}
	d := step(t, p, "C1-drop-view-sales-by-store")
	if d.SQL != `DROP VIEW "public"."sales_by_store"` || d.Lock != plans.LockAccessExclusive || d.Irreversible ||
		!strings.HasPrefix(d.Rollback, "CREATE VIEW public.sales_by_store AS SELECT") || !hasHazard(d, plans.HazardDeployBreakage) {
		t.Errorf("drop: %+v", d)
	}
	containsAll(t, "instructions", instructions(p), "Stop querying the view `sales_by_store`")
}

func TestDropViewDependents(t *testing.T) {
	s := schemaOf(t, viewChainSchema)
	wantInvalid(t, "DROP VIEW v1", s, "view public.Big v2", "CASCADE")

	// Dropping both together, or with CASCADE, is fine; the rollback of
	// CASCADE creates the view again before the views that read it.
	mustPlan(t, `DROP VIEW "Big v2", v1`, s)
	p := mustPlan(t, "DROP VIEW v1 CASCADE", s)
	d := step(t, p, "C1-drop-view-v1")
	stmts := strings.Split(d.Rollback, ";\n")
	if len(stmts) != 2 || !strings.HasPrefix(stmts[0], "CREATE VIEW public.v1 AS") || !strings.HasPrefix(stmts[1], `CREATE VIEW public."Big v2" AS`) {
		t.Errorf("rollback:\n%s", d.Rollback)
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "CASCADE also drops view public.Big v2")
}

func TestDropMaterializedView(t *testing.T) {
	p := mustPlan(t, "DROP MATERIALIZED VIEW rental_by_category", pagila(t))
	d := step(t, p, "C1-drop-view-rental-by-category")
	if d.SQL != `DROP MATERIALIZED VIEW "public"."rental_by_category"` || !strings.HasPrefix(d.Rollback, "CREATE MATERIALIZED VIEW public.rental_by_category AS") {
		t.Errorf("drop: %+v", d)
	}
	wantInvalid(t, "DROP VIEW rental_by_category", pagila(t), "not a view", "DROP MATERIALIZED VIEW")
	wantInvalid(t, "DROP MATERIALIZED VIEW film_list", pagila(t), "not a materialized view")
}

func TestDropViewWithoutSchemaAndIfExists(t *testing.T) {
	p := mustPlan(t, `DROP VIEW IF EXISTS "Big v2"`, nil)
	d := step(t, p, "C1-drop-view-big-v2")
	if d.SQL != `DROP VIEW IF EXISTS "public"."Big v2"` || !d.Irreversible {
		t.Errorf("drop: %+v", d)
	}
	p = mustPlan(t, "DROP VIEW IF EXISTS nope", pagila(t))
	if len(p.Steps()) != 0 {
		t.Errorf("want no step: %v", stepIDs(p))
	}
	wantInvalid(t, "DROP VIEW nope", pagila(t), "view public.nope does not exist")
}
