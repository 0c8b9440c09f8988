package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

// noKeySchema has tables without a primary key: a plain one with nullable
// columns, a partitioned one, and one with names that need quoting.
const noKeySchema = `
CREATE TABLE public.nopk (id integer, d date NOT NULL, v integer, note text);
CREATE TABLE public.pnopk (id integer, d date NOT NULL, v integer) PARTITION BY RANGE (d);
CREATE TABLE public.pnopk_2020 (id integer, d date NOT NULL, v integer);
CREATE TABLE public.pnopk_2021 (id integer, d date NOT NULL, v integer);
ALTER TABLE ONLY public.pnopk ATTACH PARTITION public.pnopk_2020 FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
ALTER TABLE ONLY public.pnopk ATTACH PARTITION public.pnopk_2021 FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
CREATE TABLE public."Order Items" (id integer NOT NULL, "Unit Price" numeric(8,2) NOT NULL, "user" text);
CREATE UNIQUE INDEX "Order Items_id_uq" ON public."Order Items" USING btree (id);
`

func TestAddUnique(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE customer ADD UNIQUE (email)", pagila(t))
	if got := shape(p); got != "expand:db" {
		t.Errorf("shape = %q", got)
	}
	want := "E1-check-duplicates-email E2-create-index-customer-email-key E3-add-constraint-customer-email-key"
	if got := strings.Join(stepIDs(p), " "); got != want {
		t.Fatalf("steps = %s, want %s", got, want)
	}
	dup := step(t, p, "E1-check-duplicates-email")
	if dup.Gate == nil || dup.Gate.SQL != `SELECT count(*) FROM (SELECT 1 FROM "public"."customer" WHERE "email" IS NOT NULL GROUP BY "email" HAVING count(*) > 1) AS dup` {
		t.Errorf("duplicates check: %+v", dup.Gate)
	}
	build := step(t, p, "E2-create-index-customer-email-key")
	if build.SQL != "CREATE UNIQUE INDEX CONCURRENTLY customer_email_key ON public.customer USING btree (email)" ||
		build.Transactional || build.Lock != plans.LockShareUpdateExclusive || build.Gate == nil || !strings.Contains(build.Gate.SQL, "indisvalid") {
		t.Errorf("build: %+v", build)
	}
	attach := step(t, p, "E3-add-constraint-customer-email-key")
	if attach.SQL != "ALTER TABLE public.customer ADD CONSTRAINT customer_email_key UNIQUE USING INDEX customer_email_key" ||
		attach.Lock != plans.LockAccessExclusive || attach.Rewrite != plans.ImpactNone {
		t.Errorf("attach: %+v", attach)
	}
	if attach.Rollback != `ALTER TABLE "public"."customer" DROP CONSTRAINT IF EXISTS "customer_email_key"` {
		t.Errorf("attach rollback: %s", attach.Rollback)
	}
}

// Every clause of the constraint reaches the index or the constraint.
func TestAddUniqueClauses(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE film ADD CONSTRAINT film_title_uq UNIQUE NULLS NOT DISTINCT (title, release_year) INCLUDE (length) WITH (fillfactor = 80) DEFERRABLE INITIALLY DEFERRED", pagila(t))
	containsAll(t, "build", step(t, p, "E2-create-index-film-title-uq").SQL,
		"CREATE UNIQUE INDEX CONCURRENTLY film_title_uq ON public.film USING btree (title, release_year) INCLUDE (length) NULLS NOT DISTINCT WITH (fillfactor=80)")
	containsAll(t, "attach", step(t, p, "E3-add-constraint-film-title-uq").SQL, "UNIQUE USING INDEX film_title_uq DEFERRABLE INITIALLY DEFERRED")
	// NULLS NOT DISTINCT: rows with NULL keys collide too.
	if g := step(t, p, "E1-check-duplicates-title-release-year").Gate.SQL; strings.Contains(g, "IS NOT NULL") {
		t.Errorf("duplicates check filters NULLs: %s", g)
	}
	// The default name includes the INCLUDE columns, as PostgreSQL's does.
	p = mustPlan(t, "ALTER TABLE film ADD UNIQUE (title) INCLUDE (length)", pagila(t))
	step(t, p, "E3-add-constraint-film-title-length-key")
}

func TestAddPrimaryKeyOnNullableColumn(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE nopk ADD PRIMARY KEY (id)", schemaOf(t, noKeySchema))
	if got := shape(p); got != "expand:db migrate:db" {
		t.Errorf("shape = %q", got)
	}
	want := []string{
		"E1-check-no-nulls-id", "E2-add-not-null-check-id",
		"M1-validate-not-null-check-id", "M2-set-not-null-id",
		"M3-check-duplicates-id", "M4-create-index-nopk-pkey", "M5-add-constraint-nopk-pkey",
	}
	if got := strings.Join(stepIDs(p), " "); got != strings.Join(want, " ") {
		t.Fatalf("steps = %s\nwant    %s", got, strings.Join(want, " "))
	}
	containsAll(t, "attach", step(t, p, "M5-add-constraint-nopk-pkey").SQL, "ADD CONSTRAINT nopk_pkey PRIMARY KEY USING INDEX nopk_pkey")
	containsAll(t, "build", step(t, p, "M4-create-index-nopk-pkey").SQL, "CREATE UNIQUE INDEX CONCURRENTLY nopk_pkey ON public.nopk USING btree (id)")
	// A primary key has no NULLs: the duplicates check needs no filter.
	if g := step(t, p, "M3-check-duplicates-id").Gate.SQL; strings.Contains(g, "IS NOT NULL") {
		t.Errorf("duplicates check: %s", g)
	}
	// Already NOT NULL: no SET NOT NULL sequence.
	p = mustPlan(t, "ALTER TABLE nopk ADD PRIMARY KEY (d)", schemaOf(t, noKeySchema))
	if got := strings.Join(stepIDs(p), " "); got != "E1-check-duplicates-d E2-create-index-nopk-pkey E3-add-constraint-nopk-pkey" {
		t.Errorf("steps = %s", got)
	}
}

func TestAddUniquePartitioned(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE pnopk ADD UNIQUE (v, d)", schemaOf(t, noKeySchema))
	want := []string{
		"E1-check-duplicates-v-d",
		"E2-create-index-pnopk-2020-v-d-key", "E3-add-constraint-pnopk-2020-v-d-key",
		"E4-create-index-pnopk-2021-v-d-key", "E5-add-constraint-pnopk-2021-v-d-key",
		"E6-add-constraint-pnopk-v-d-key",
	}
	if got := strings.Join(stepIDs(p), " "); got != strings.Join(want, " ") {
		t.Fatalf("steps = %s\nwant    %s", got, strings.Join(want, " "))
	}
	containsAll(t, "partition build", step(t, p, "E2-create-index-pnopk-2020-v-d-key").SQL, "CREATE UNIQUE INDEX CONCURRENTLY pnopk_2020_v_d_key ON public.pnopk_2020")
	containsAll(t, "partition constraint", step(t, p, "E3-add-constraint-pnopk-2020-v-d-key").SQL, "public.pnopk_2020 ADD CONSTRAINT pnopk_2020_v_d_key UNIQUE USING INDEX pnopk_2020_v_d_key")
	parent := step(t, p, "E6-add-constraint-pnopk-v-d-key")
	if parent.SQL != "ALTER TABLE public.pnopk ADD CONSTRAINT pnopk_v_d_key UNIQUE (v, d)" || parent.Gate == nil || parent.Lock != plans.LockAccessExclusive {
		t.Errorf("parent: %+v", parent)
	}

	p = mustPlan(t, "ALTER TABLE pnopk ADD PRIMARY KEY (id, d)", schemaOf(t, noKeySchema))
	step(t, p, "M1-validate-not-null-check-id")
	step(t, p, "M4-create-index-pnopk-2020-pkey")
	containsAll(t, "parent pk", step(t, p, "M8-add-constraint-pnopk-pkey").SQL, "ADD CONSTRAINT pnopk_pkey PRIMARY KEY (id, d)")
}

func TestAddUniqueUsingIndex(t *testing.T) {
	p := mustPlan(t, `ALTER TABLE "Order Items" ADD CONSTRAINT "Order Items_key" UNIQUE USING INDEX "Order Items_id_uq"`, schemaOf(t, noKeySchema))
	if got := strings.Join(stepIDs(p), " "); got != "E1-add-constraint-order-items-key" {
		t.Fatalf("steps = %s", got)
	}
	s := step(t, p, "E1-add-constraint-order-items-key")
	if s.SQL != `ALTER TABLE public."Order Items" ADD CONSTRAINT "Order Items_key" UNIQUE USING INDEX "Order Items_id_uq"` || !s.Irreversible {
		t.Errorf("using index: %+v", s)
	}
	containsAll(t, "reason", s.IrreversibleReason, "would drop the index Order Items_id_uq")
	wantInvalid(t, `ALTER TABLE "Order Items" ADD UNIQUE USING INDEX nope`, schemaOf(t, noKeySchema), "index nope does not exist")
}

func TestAddUniqueQuoting(t *testing.T) {
	p := mustPlan(t, `ALTER TABLE "Order Items" ADD UNIQUE ("user", "Unit Price")`, schemaOf(t, quotingSchema))
	containsAll(t, "dup", step(t, p, "E1-check-duplicates-user-unit-price").SQL,
		`FROM "public"."Order Items" WHERE "user" IS NOT NULL AND "Unit Price" IS NOT NULL GROUP BY "user", "Unit Price"`)
	containsAll(t, "build", step(t, p, "E2-create-index-order-items-user-unit-price-key").SQL,
		`CREATE UNIQUE INDEX CONCURRENTLY "Order Items_user_Unit Price_key" ON public."Order Items" USING btree ("user", "Unit Price")`)
	containsAll(t, "gate", step(t, p, "E2-create-index-order-items-user-unit-price-key").Gate.SQL, `'"public"."Order Items_user_Unit Price_key"'::regclass`)
}

func TestAddPrimaryKeyWithoutSchema(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE t ADD PRIMARY KEY (a, b)", nil)
	if n := strings.Count(strings.Join(stepIDs(p), " "), "set-not-null"); n != 2 {
		t.Errorf("want the SET NOT NULL sequence for both columns: %v", stepIDs(p))
	}
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "may hold NULL", "not a partitioned table")
}

func TestAddUniqueInvalid(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "ALTER TABLE nope ADD UNIQUE (a)", s, "table public.nope does not exist")
	wantInvalid(t, "ALTER TABLE film ADD UNIQUE (nope)", s, "column nope does not exist in table public.film")
	wantInvalid(t, "ALTER TABLE film ADD UNIQUE (title) INCLUDE (nope)", s, "column nope does not exist")
	wantInvalid(t, "ALTER TABLE film ADD PRIMARY KEY (title)", s, "already has a primary key (film_pkey)")
	wantInvalid(t, "ALTER TABLE film ADD CONSTRAINT film_pkey UNIQUE (title)", s, "already has a constraint named film_pkey")
	wantInvalid(t, "ALTER TABLE film ADD CONSTRAINT idx_title UNIQUE (title)", s, "a relation named idx_title already exists")
	wantInvalid(t, "ALTER TABLE film ADD UNIQUE USING INDEX idx_title", s, "cannot back a constraint")
}
