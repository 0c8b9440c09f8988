package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

func TestRenameTable(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE actor RENAME TO performer", pagila(t))
	if got := shape(p); got != "expand:db migrate:app contract:db" {
		t.Errorf("shape = %q", got)
	}
	if got := strings.Join(stepIDs(p), " "); got != "E1-rename-table-performer C1-drop-view-actor" {
		t.Fatalf("steps = %s", got)
	}
	e := step(t, p, "E1-rename-table-performer")
	stmts := strings.Split(e.SQL, ";\n")
	if stmts[0] != `ALTER TABLE "public"."actor" RENAME TO "performer"` ||
		stmts[1] != `CREATE VIEW "public"."actor" AS SELECT * FROM "public"."performer"` ||
		!strings.HasPrefix(stmts[2], "DO $cutover$") {
		t.Errorf("expand sql:\n%s", e.SQL)
	}
	containsAll(t, "grants", e.SQL, `aclexplode(c.relacl)`, `c.oid = '"public"."performer"'::regclass`, `'"public"."actor"'`)
	if e.Rollback != "DROP VIEW IF EXISTS \"public\".\"actor\";\nALTER TABLE \"public\".\"performer\" RENAME TO \"actor\"" {
		t.Errorf("rollback:\n%s", e.Rollback)
	}
	if e.Lock != plans.LockAccessExclusive || !e.Transactional || e.Gate == nil {
		t.Errorf("expand step: %+v", e)
	}
	containsAll(t, "release", instructions(p), "use of the table `actor` to `performer`", "compatibility view `actor`")

	c := step(t, p, "C1-drop-view-actor")
	if c.SQL != `DROP VIEW "public"."actor"` || !strings.HasPrefix(c.Rollback, `CREATE VIEW "public"."actor" AS SELECT * FROM "public"."performer"`) ||
		!hasHazard(c, plans.HazardDeployBreakage) {
		t.Errorf("contract: %+v", c)
	}
	w := strings.Join(p.Warnings, "\n")
	containsAll(t, "warnings", w, "not TRUNCATE, COPY ... FROM", "actor_pkey", "actor_actor_id_seq", "row-level security")
}

func TestRenameTableSecurityInvoker(t *testing.T) {
	s := schemaOf(t, quotingSchema)
	s.ServerVersion = 150004
	p := mustPlan(t, `ALTER TABLE "Order Items" RENAME TO "user"`, s)
	e := step(t, p, "E1-rename-table-user")
	containsAll(t, "view", e.SQL, `CREATE VIEW "public"."Order Items" WITH (security_invoker = true) AS SELECT * FROM "public"."user"`)
	if strings.Contains(strings.Join(p.Warnings, "\n"), "row-level security") {
		t.Errorf("no row-level security warning wanted on PostgreSQL 15: %v", p.Warnings)
	}
}

func TestRenameTableWithoutSchema(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE actor RENAME TO performer", nil)
	step(t, p, "E1-rename-table-performer")
	step(t, p, "C1-drop-view-actor")
}

func TestRenameTableInvalid(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "ALTER TABLE nope RENAME TO x", s, "table public.nope does not exist")
	wantInvalid(t, "ALTER TABLE actor RENAME TO film", s, "a relation named film already exists")
	wantInvalid(t, "ALTER TABLE actor RENAME TO film_list", s, "a relation named film_list already exists")
	wantInvalid(t, "ALTER TABLE actor RENAME TO actor", s, "already has the name")
}
