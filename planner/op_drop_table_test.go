package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

func TestDropTable(t *testing.T) {
	s := schemaOf(t, noKeySchema)
	p := mustPlan(t, "DROP TABLE nopk", s)
	if got := shape(p); got != "migrate:app contract:db contract:app contract:db" {
		t.Errorf("shape = %q", got)
	}
	if got := strings.Join(stepIDs(p), " "); got != "C1-rename-aside-nopk F1-drop-table-nopk" {
		t.Fatalf("steps = %s", got)
	}
	aside := step(t, p, "C1-rename-aside-nopk")
	if aside.SQL != `ALTER TABLE "public"."nopk" RENAME TO "nopk_cutover_dropped"` ||
		aside.Rollback != `ALTER TABLE "public"."nopk_cutover_dropped" RENAME TO "nopk"` || aside.Irreversible {
		t.Errorf("aside: %+v", aside)
	}
	drop := step(t, p, "F1-drop-table-nopk")
	if drop.SQL != `DROP TABLE "public"."nopk_cutover_dropped"` || !drop.Irreversible || drop.Rollback != "" ||
		!hasHazard(drop, plans.HazardDataLoss) || drop.Table != "public.nopk_cutover_dropped" {
		t.Errorf("drop: %+v", drop)
	}
	containsAll(t, "instructions", instructions(p), "Stop reading and writing the table `nopk`", "cooling-off period", "relation \"nopk\" does not exist")
}

func TestDropTableDependents(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "DROP TABLE staff", s, "foreign key payment_p2022_01_staff_id_fkey of public.payment_p2022_01", "view public.staff_list", "CASCADE")
	wantInvalid(t, "DROP TABLE film_category", s, "view public.film_list", "materialized view public.rental_by_category")

	p := mustPlan(t, "DROP TABLE film_category CASCADE", s)
	drop := step(t, p, "F1-drop-table-film-category")
	if !strings.HasSuffix(drop.SQL, " CASCADE") {
		t.Errorf("drop: %s", drop.SQL)
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "CASCADE also drops", "view public.actor_info", "materialized view public.rental_by_category")

	// Foreign keys among the tables dropped together do not count.
	fk := schemaOf(t, `
CREATE TABLE public.a (id integer NOT NULL);
ALTER TABLE ONLY public.a ADD CONSTRAINT a_pkey PRIMARY KEY (id);
CREATE TABLE public.b (a_id integer);
ALTER TABLE ONLY public.b ADD CONSTRAINT b_a_id_fkey FOREIGN KEY (a_id) REFERENCES public.a(id);
`)
	wantInvalid(t, "DROP TABLE a", fk, "foreign key b_a_id_fkey of public.b")
	p = mustPlan(t, "DROP TABLE b, a", fk)
	if got := strings.Join(stepIDs(p), " "); got != "C1-rename-aside-b C2-rename-aside-a F1-drop-table-b F2-drop-table-a" {
		t.Errorf("steps = %s", got)
	}
}

func TestDropTableIfExistsAndQuoting(t *testing.T) {
	p := mustPlan(t, `DROP TABLE IF EXISTS "Order Items", nope`, schemaOf(t, noKeySchema))
	if got := strings.Join(stepIDs(p), " "); got != "C1-rename-aside-order-items F1-drop-table-order-items" {
		t.Fatalf("steps = %s", got)
	}
	containsAll(t, "aside", step(t, p, "C1-rename-aside-order-items").SQL, `RENAME TO "Order Items_cutover_dropped"`)
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "public.nope does not exist")
}

func TestDropTableWithoutSchema(t *testing.T) {
	p := mustPlan(t, "DROP TABLE t", nil)
	step(t, p, "C1-rename-aside-t")
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "No foreign key of another table and no view references public.t")
}

func TestDropTableInvalid(t *testing.T) {
	wantInvalid(t, "DROP TABLE nope", pagila(t), "table public.nope does not exist")
}

// A partition is detached before it is set aside: renamed, its rows would
// still be read and written through its parent, and the final DROP would
// lock the parent.
func TestDropTablePartition(t *testing.T) {
	p := mustPlan(t, "DROP TABLE payment_p2022_07", pagila(t))
	if got := strings.Join(stepIDs(p), " "); got != "C1-detach-partition-payment-p2022-07 C2-rename-aside-payment-p2022-07 F1-drop-table-payment-p2022-07" {
		t.Fatalf("steps = %s", got)
	}
	if got := shape(p); got != "migrate:app contract:db contract:app contract:db" {
		t.Errorf("shape = %q", got)
	}
	d := step(t, p, "C1-detach-partition-payment-p2022-07")
	if d.Lock != plans.LockShareUpdateExclusive || d.Table != "public.payment" || d.Transactional || d.Irreversible {
		t.Errorf("detach: %+v", d)
	}
	containsAll(t, "detach", d.SQL, `ALTER TABLE "public"."payment" DETACH PARTITION "public"."payment_p2022_07" CONCURRENTLY`, "pg_get_expr(c.relpartbound, c.oid)")
	containsAll(t, "detach rollback", d.Rollback, "ATTACH PARTITION", `'"public"."payment"'`, "obj_description")
	containsAll(t, "detach hazards", d.Hazards[len(d.Hazards)-1].Message, "default partition", "FINALIZE")
	containsAll(t, "instructions", instructions(p), "Stop relying on the rows of `payment_p2022_07`", "through `payment`")
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "PostgreSQL 14 or later")

	// Before PostgreSQL 14: a plain DETACH, under ACCESS EXCLUSIVE on the
	// parent.
	old := pagila(t).Clone()
	old.ServerVersion = 130011
	p = mustPlan(t, "DROP TABLE payment_p2022_07", old)
	d = step(t, p, "C1-detach-partition-payment-p2022-07")
	if d.Lock != plans.LockAccessExclusive || !d.Transactional || strings.Contains(d.SQL, "CONCURRENTLY") || !hasHazard(d, plans.HazardAccessExclusive) {
		t.Errorf("detach before 14: %+v", d)
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "PostgreSQL 13.0 cannot detach a partition CONCURRENTLY")
}

// The backup command in the irreversible reason survives the shell: the
// argument is single-quoted, the double quotes of the name kept.
func TestDropTableBackupCommandIsShellSafe(t *testing.T) {
	p := mustPlan(t, "DROP TABLE nopk", schemaOf(t, noKeySchema))
	containsAll(t, "reason", step(t, p, "F1-drop-table-nopk").IrreversibleReason, `pg_dump -t '"public"."nopk_cutover_dropped"'`)
	if got, want := shellQuote(`"public"."it's"`), `'"public"."it'\''s"'`; got != want {
		t.Errorf("shellQuote = %s, want %s", got, want)
	}
}
