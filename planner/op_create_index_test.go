package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

func TestCreateIndexBecomesConcurrent(t *testing.T) {
	for _, sql := range []string{
		"CREATE INDEX ON film (length)",
		"CREATE INDEX CONCURRENTLY film_length_idx ON film (length)",
		"CREATE INDEX film_length_idx ON public.film USING btree (length)",
	} {
		p := mustPlan(t, sql, pagila(t))
		if got := strings.Join(stepIDs(p), " "); got != "E1-create-index-film-length-idx" {
			t.Fatalf("%s: steps = %s", sql, got)
		}
		s := step(t, p, "E1-create-index-film-length-idx")
		if s.SQL != "CREATE INDEX CONCURRENTLY film_length_idx ON public.film USING btree (length)" {
			t.Errorf("%s: sql = %s", sql, s.SQL)
		}
		if s.Transactional || s.Lock != plans.LockShareUpdateExclusive || s.Rewrite != plans.ImpactScan || !hasHazard(s, plans.HazardIndexBuild) {
			t.Errorf("%s: step %+v", sql, s)
		}
		if s.Rollback != `DROP INDEX CONCURRENTLY IF EXISTS "public"."film_length_idx"` {
			t.Errorf("%s: rollback = %s", sql, s.Rollback)
		}
		if s.Gate == nil || s.Gate.SQL != `SELECT indisvalid FROM pg_catalog.pg_index WHERE indexrelid = '"public"."film_length_idx"'::regclass` {
			t.Errorf("%s: gate = %+v", sql, s.Gate)
		}
	}
}

// Unnamed indexes get PostgreSQL's names, numbered on a clash with the
// schema or with an earlier index of the plan (checked against PostgreSQL 15).
func TestCreateIndexDefaultNames(t *testing.T) {
	p := mustPlan(t, `CREATE INDEX ON film (length);
CREATE INDEX ON film (length);
CREATE UNIQUE INDEX ON film (lower(title), (length + 1), release_year) INCLUDE (rating) WHERE length > 10;
CREATE INDEX ON film_actor (actor_id)`, pagila(t))
	want := "E1-create-index-film-length-idx E2-create-index-film-length-idx1 E3-create-index-film-expr-expr1-release-year-rating E4-create-index-film-actor-actor-id-idx"
	if got := strings.Join(stepIDs(p), " "); got != want {
		t.Errorf("steps = %s\nwant    %s", got, want)
	}
	// Step ids are cut at 48 characters; the SQL has the full name.
	u := step(t, p, "E3-create-index-film-expr-expr1-release-year-rating")
	containsAll(t, "unique", u.SQL, "CREATE UNIQUE INDEX CONCURRENTLY film_expr_expr1_release_year_rating_idx ON public.film", "INCLUDE (rating) WHERE length > 10")
	if len(u.Hazards) != 2 {
		t.Errorf("a unique build warns about the INVALID index it leaves on failure: %+v", u.Hazards)
	}
}

func TestCreateIndexPartitioned(t *testing.T) {
	p := mustPlan(t, "CREATE INDEX ON payment (staff_id, amount)", pagila(t))
	ids := stepIDs(p)
	if len(ids) != 9 || ids[0] != "E1-create-index-payment-staff-id-amount-idx-on-only" || ids[8] != "E9-attach-index-payment-staff-id-amount-idx" {
		t.Fatalf("steps = %v", ids)
	}
	only := step(t, p, ids[0])
	if only.SQL != "CREATE INDEX payment_staff_id_amount_idx ON ONLY public.payment USING btree (staff_id, amount)" ||
		!only.Transactional || only.Lock != plans.LockShare || only.Rollback != `DROP INDEX IF EXISTS "public"."payment_staff_id_amount_idx"` {
		t.Errorf("on only: %+v", only)
	}
	part := step(t, p, "E2-create-index-payment-p2022-01-staff-id-amount-id")
	if part.SQL != "CREATE INDEX CONCURRENTLY payment_p2022_01_staff_id_amount_idx ON public.payment_p2022_01 USING btree (staff_id, amount)" || part.Transactional {
		t.Errorf("partition build: %+v", part)
	}
	attach := step(t, p, ids[8])
	if n := strings.Count(attach.SQL, `ALTER INDEX "public"."payment_staff_id_amount_idx" ATTACH PARTITION`); n != 7 {
		t.Errorf("want 7 attaches:\n%s", attach.SQL)
	}
	if attach.Gate == nil || !strings.Contains(attach.Gate.SQL, `'"public"."payment_staff_id_amount_idx"'::regclass`) || attach.Rollback != only.Rollback {
		t.Errorf("attach: %+v", attach)
	}
}

// Partitions that already have an equivalent index get it attached, as the
// naive statement does; rolling back rebuilds it, since dropping the parent
// index drops the attached ones.
func TestCreateIndexPartitionedReusesEquivalentIndexes(t *testing.T) {
	p := mustPlan(t, "CREATE INDEX ON payment (customer_id)", pagila(t))
	want := "E1-create-index-payment-customer-id-idx-on-only E2-create-index-payment-p2022-07-customer-id-idx E3-attach-index-payment-customer-id-idx"
	if got := strings.Join(stepIDs(p), " "); got != want {
		t.Fatalf("steps = %s", got)
	}
	attach := step(t, p, "E3-attach-index-payment-customer-id-idx")
	containsAll(t, "attach", attach.SQL, `ATTACH PARTITION "public"."idx_fk_payment_p2022_01_customer_id"`, `ATTACH PARTITION "public"."payment_p2022_07_customer_id_idx"`)
	containsAll(t, "rollback", attach.Rollback, `DROP INDEX IF EXISTS "public"."payment_customer_id_idx"`,
		"CREATE INDEX idx_fk_payment_p2022_01_customer_id ON public.payment_p2022_01")
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "reuses the equivalent existing index(es)")

	// A second index of the same shape cannot attach the same indexes.
	p = mustPlan(t, "CREATE INDEX ON payment (customer_id); CREATE INDEX ON payment (customer_id)", pagila(t))
	containsAll(t, "second attach", step(t, p, "E6-attach-index-payment-customer-id-idx1").SQL,
		`ATTACH PARTITION "public"."payment_p2022_01_customer_id_idx"`, `ATTACH PARTITION "public"."payment_p2022_07_customer_id_idx1"`)
}

func TestCreateIndexOnOnly(t *testing.T) {
	p := mustPlan(t, "CREATE INDEX payment_x ON ONLY payment (amount)", pagila(t))
	if got := strings.Join(stepIDs(p), " "); got != "E1-create-index-payment-x-on-only" {
		t.Fatalf("steps = %s", got)
	}
}

func TestCreateIndexQuoting(t *testing.T) {
	p := mustPlan(t, `CREATE INDEX ON "Order Items" ("user", lower("user")) WHERE "Unit Price" > 0`, schemaOf(t, quotingSchema))
	s := step(t, p, "E1-create-index-order-items-user-expr-idx")
	if s.SQL != `CREATE INDEX CONCURRENTLY "Order Items_user_expr_idx" ON public."Order Items" USING btree ("user", lower("user")) WHERE "Unit Price" > 0` {
		t.Errorf("sql = %s", s.SQL)
	}
	if s.Rollback != `DROP INDEX CONCURRENTLY IF EXISTS "public"."Order Items_user_expr_idx"` {
		t.Errorf("rollback = %s", s.Rollback)
	}
}

func TestCreateIndexIfNotExistsOnExisting(t *testing.T) {
	p := mustPlan(t, "CREATE INDEX IF NOT EXISTS idx_title ON film (title)", pagila(t))
	if len(p.Steps()) != 0 {
		t.Errorf("want no step: %v", stepIDs(p))
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "idx_title already exists")
}

func TestCreateIndexWithoutSchema(t *testing.T) {
	p := mustPlan(t, "CREATE INDEX ON film (length)", nil)
	step(t, p, "E1-create-index-film-length-idx")
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "not a partitioned table")
}

// An index on data an earlier statement backfills is built after the
// backfill.
func TestCreateIndexAfterBackfill(t *testing.T) {
	p := mustPlan(t, "UPDATE film SET length = 1 WHERE length IS NULL; CREATE INDEX ON film (length)", pagila(t))
	if got := strings.Join(stepIDs(p), " "); got != "B1-update-film M1-create-index-film-length-idx" {
		t.Errorf("steps = %s", got)
	}
}

func TestCreateIndexInvalid(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "CREATE INDEX ON nope (a)", s, "table public.nope does not exist")
	wantInvalid(t, "CREATE INDEX ON film (nope)", s, "column nope does not exist in table public.film")
	wantInvalid(t, "CREATE INDEX ON film (lower(nope))", s, "column nope does not exist")
	wantInvalid(t, "CREATE INDEX ON film (title) WHERE nope", s, "column nope does not exist")
	wantInvalid(t, "CREATE INDEX film ON film (title)", s, "a relation named film already exists")
}
