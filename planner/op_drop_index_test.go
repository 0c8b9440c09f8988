package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

func TestDropIndex(t *testing.T) {
	p := mustPlan(t, "DROP INDEX idx_title", pagila(t))
	if got := shape(p); got != "contract:db" {
		t.Errorf("shape = %q", got)
	}
	s := step(t, p, "C1-drop-index-idx-title")
	if s.SQL != `DROP INDEX CONCURRENTLY "public"."idx_title"` || s.Transactional || s.Lock != plans.LockShareUpdateExclusive || s.Table != "public.film" {
		t.Errorf("step: %+v", s)
	}
	if s.Irreversible || s.Rollback != "CREATE INDEX CONCURRENTLY idx_title ON public.film USING btree (title)" {
		t.Errorf("rollback: %q (irreversible %v)", s.Rollback, s.Irreversible)
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "pg_stat_user_indexes")
}

func TestDropIndexSeveralAndIfExists(t *testing.T) {
	p := mustPlan(t, "DROP INDEX IF EXISTS idx_title, nope, public.idx_unq_manager_staff_id", pagila(t))
	if got := strings.Join(stepIDs(p), " "); got != "C1-drop-index-idx-title C2-drop-index-idx-unq-manager-staff-id" {
		t.Fatalf("steps = %s", got)
	}
	containsAll(t, "sql", step(t, p, "C1-drop-index-idx-title").SQL, "DROP INDEX CONCURRENTLY IF EXISTS")
	containsAll(t, "rollback", step(t, p, "C2-drop-index-idx-unq-manager-staff-id").Rollback, "CREATE UNIQUE INDEX CONCURRENTLY idx_unq_manager_staff_id")
	w := strings.Join(p.Warnings, "\n")
	containsAll(t, "warnings", w, "public.nope does not exist", "stops enforcing uniqueness of (manager_staff_id)")
}

func TestDropIndexWithoutSchema(t *testing.T) {
	p := mustPlan(t, `DROP INDEX "Order Items_Unit Price_idx"`, nil)
	s := step(t, p, "C1-drop-index-order-items-unit-price-idx")
	if s.SQL != `DROP INDEX CONCURRENTLY "public"."Order Items_Unit Price_idx"` || !s.Irreversible || !strings.Contains(s.IrreversibleReason, "--schema") {
		t.Errorf("step: %+v", s)
	}
}

func TestDropIndexPartitioned(t *testing.T) {
	s := schemaOf(t, noKeySchema+`
CREATE INDEX pnopk_v_idx ON ONLY public.pnopk USING btree (v);
CREATE INDEX pnopk_2020_v_idx ON public.pnopk_2020 USING btree (v);
ALTER INDEX public.pnopk_v_idx ATTACH PARTITION public.pnopk_2020_v_idx;
`)
	p := mustPlan(t, "DROP INDEX pnopk_v_idx", s)
	d := step(t, p, "C1-drop-index-pnopk-v-idx")
	if d.SQL != `DROP INDEX "public"."pnopk_v_idx"` || !d.Transactional || d.Lock != plans.LockAccessExclusive {
		t.Errorf("step: %+v", d)
	}
	// The rollback rebuilds it on the partitions too (not ON ONLY).
	if d.Rollback != "CREATE INDEX pnopk_v_idx ON public.pnopk USING btree (v)" {
		t.Errorf("rollback = %s", d.Rollback)
	}
	wantInvalid(t, "DROP INDEX pnopk_2020_v_idx", s, "does not exist in the schema", "drop the parent's index")
}

func TestDropIndexInvalid(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "DROP INDEX nope", s, "index public.nope does not exist")
	wantInvalid(t, "DROP INDEX film_pkey", s, "backs constraint film_pkey", `DROP CONSTRAINT "film_pkey"`)
	wantUnsupported(t, "DROP INDEX idx_title CASCADE", s, "CASCADE")
	fk := schemaOf(t, `
CREATE TABLE public.a (id integer NOT NULL);
CREATE UNIQUE INDEX a_id_uq ON public.a USING btree (id);
CREATE TABLE public.b (a_id integer);
ALTER TABLE ONLY public.b ADD CONSTRAINT b_a_id_fkey FOREIGN KEY (a_id) REFERENCES public.a(id);
`)
	wantInvalid(t, "DROP INDEX a_id_uq", fk, "foreign key b_a_id_fkey of public.b")
}
