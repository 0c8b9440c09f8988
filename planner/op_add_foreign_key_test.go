package planner

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
)

func TestAddForeignKeyWithIndex(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE rental ADD FOREIGN KEY (staff_id) REFERENCES staff (staff_id)", pagila(t))
	if got := shape(p); got != "expand:db migrate:db" {
		t.Errorf("shape = %q", got)
	}
	// rental_staff_id_fkey exists already: PostgreSQL names the new one
	// rental_staff_id_fkey1.
	want := []string{
		"E1-create-index-rental-staff-id-idx",
		"E2-check-orphans-rental-staff-id-fkey1",
		"E3-add-foreign-key-rental-staff-id-fkey1",
		"M1-validate-rental-staff-id-fkey1",
	}
	if got := stepIDs(p); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("steps = %v, want %v", got, want)
	}

	ix := step(t, p, want[0])
	if ix.Transactional || ix.Lock != plans.LockShareUpdateExclusive || ix.Rewrite != plans.ImpactScan || ix.Gate == nil {
		t.Errorf("index step: %+v", ix)
	}
	containsAll(t, "index sql", ix.SQL, "CREATE INDEX CONCURRENTLY rental_staff_id_idx ON public.rental", "(staff_id)")
	containsAll(t, "index rollback", ix.Rollback, `DROP INDEX CONCURRENTLY IF EXISTS "public"."rental_staff_id_idx"`)
	containsAll(t, "index gate", ix.Gate.SQL, "indisvalid", `'"public"."rental_staff_id_idx"'::regclass`)

	orphans := step(t, p, want[1])
	containsAll(t, "orphan gate", orphans.Gate.SQL,
		`FROM "public"."rental" AS c LEFT JOIN "public"."staff" AS p ON p."staff_id" = c."staff_id"`,
		`c."staff_id" IS NOT NULL AND p."staff_id" IS NULL`)
	if orphans.Lock != plans.LockAccessShare || orphans.SQL != orphans.Gate.SQL {
		t.Errorf("orphan check: %+v", orphans)
	}

	add := step(t, p, want[2])
	containsAll(t, "add sql", add.SQL, `ALTER TABLE "public"."rental" ADD CONSTRAINT "rental_staff_id_fkey1" FOREIGN KEY ("staff_id") REFERENCES "public"."staff" ("staff_id") NOT VALID`)
	if add.Lock != plans.LockShareRowExclusive || !add.Transactional || add.Rewrite != plans.ImpactNone || !hasHazard(add, plans.HazardBlocksWrites) {
		t.Errorf("add step: %+v", add)
	}
	containsAll(t, "add hazard", add.Hazards[0].Message, "public.rental", "public.staff")
	containsAll(t, "add rollback", add.Rollback, `DROP CONSTRAINT IF EXISTS "rental_staff_id_fkey1"`)

	v := step(t, p, want[3])
	if v.SQL != `ALTER TABLE "public"."rental" VALIDATE CONSTRAINT "rental_staff_id_fkey1"` || v.Lock != plans.LockShareUpdateExclusive || v.Rewrite != plans.ImpactScan {
		t.Errorf("validate step: %+v", v)
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "rental_staff_id_idx", "added for foreign key rental_staff_id_fkey1", "does not create it")
}

func TestAddForeignKeyExistingIndexAndImplicitColumns(t *testing.T) {
	// idx_fk_inventory_id leads with inventory_id; REFERENCES without
	// columns means inventory's primary key.
	p := mustPlan(t, "ALTER TABLE rental ADD CONSTRAINT rental_inv FOREIGN KEY (inventory_id) REFERENCES inventory ON DELETE CASCADE", pagila(t))
	want := "E1-check-orphans-rental-inv E2-add-foreign-key-rental-inv M1-validate-rental-inv"
	if got := strings.Join(stepIDs(p), " "); got != want {
		t.Fatalf("steps = %s, want %s", got, want)
	}
	containsAll(t, "orphan gate", step(t, p, "E1-check-orphans-rental-inv").Gate.SQL, `p."inventory_id" = c."inventory_id"`)
	containsAll(t, "add", step(t, p, "E2-add-foreign-key-rental-inv").SQL, `REFERENCES "public"."inventory" ("inventory_id") ON DELETE CASCADE NOT VALID`)
}

func TestAddForeignKeyMatchFull(t *testing.T) {
	s := schemaOf(t, `
CREATE TABLE public.parent (a integer NOT NULL, b integer NOT NULL);
ALTER TABLE ONLY public.parent ADD CONSTRAINT parent_pkey PRIMARY KEY (a, b);
CREATE TABLE public.child (id integer, a integer, b integer);
CREATE INDEX child_b_a_idx ON public.child USING btree (b, a);
`)
	p := mustPlan(t, "ALTER TABLE child ADD FOREIGN KEY (a, b) REFERENCES parent (a, b) MATCH FULL", s)
	// child_b_a_idx leads with both columns (in another order): no index.
	if got := strings.Join(stepIDs(p), " "); got != "E1-check-orphans-child-a-b-fkey E2-add-foreign-key-child-a-b-fkey M1-validate-child-a-b-fkey" {
		t.Fatalf("steps = %s", got)
	}
	containsAll(t, "MATCH FULL orphans", step(t, p, "E1-check-orphans-child-a-b-fkey").Gate.SQL,
		`(c."a" IS NOT NULL OR c."b" IS NOT NULL) AND p."a" IS NULL`)
	containsAll(t, "add", step(t, p, "E2-add-foreign-key-child-a-b-fkey").SQL, "MATCH FULL", "NOT VALID")
}

func TestAddForeignKeyPartitioned(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE payment ADD FOREIGN KEY (rental_id) REFERENCES rental (rental_id)", pagila(t))
	add := step(t, p, "E11-add-foreign-key-payment-rental-id-fkey")
	if strings.Contains(add.SQL, "NOT VALID") || add.Lock != plans.LockShareRowExclusive || add.Rewrite != plans.ImpactScan ||
		!hasHazard(add, plans.HazardBlocksWrites) || !hasHazard(add, plans.HazardTableScan) {
		t.Errorf("partitioned add: %+v", add)
	}
	for _, id := range stepIDs(p) {
		if strings.Contains(id, "validate") {
			t.Errorf("unexpected validate step %s", id)
		}
	}
	// The index for the key is built partition by partition.
	step(t, p, "E1-create-index-payment-rental-id-idx-on-only")
	step(t, p, "E9-attach-index-payment-rental-id-idx")
	step(t, p, "E10-check-orphans-payment-rental-id-fkey")
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "cannot add a NOT VALID foreign key to a partitioned table")

	wantInvalid(t, "ALTER TABLE payment ADD FOREIGN KEY (rental_id) REFERENCES rental (rental_id) NOT VALID", pagila(t), "NOT VALID", "partitioned")
}

func TestAddForeignKeyWrittenNotValid(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE rental ADD CONSTRAINT r_staff FOREIGN KEY (staff_id) REFERENCES staff NOT VALID", pagila(t))
	if got := strings.Join(stepIDs(p), " "); got != "E1-create-index-rental-staff-id-idx E2-add-foreign-key-r-staff" {
		t.Fatalf("steps = %s", got)
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "written NOT VALID")
}

func TestAddForeignKeyWithoutSchema(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE rental ADD FOREIGN KEY (staff_id) REFERENCES staff (staff_id)", nil)
	if got := strings.Join(stepIDs(p), " "); got != "E1-check-orphans-rental-staff-id-fkey E2-add-foreign-key-rental-staff-id-fkey M1-validate-rental-staff-id-fkey" {
		t.Fatalf("steps = %s", got)
	}
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "has an index whose leading columns are (staff_id)", "not a partitioned table")

	// Without a column list and without a schema, the orphan count cannot
	// be written.
	p = mustPlan(t, "ALTER TABLE rental ADD FOREIGN KEY (staff_id) REFERENCES staff", nil)
	if got := strings.Join(stepIDs(p), " "); got != "E1-add-foreign-key-rental-staff-id-fkey M1-validate-rental-staff-id-fkey" {
		t.Fatalf("steps = %s", got)
	}
}

func TestAddForeignKeyNamesAreNumberedWithinThePlan(t *testing.T) {
	p := mustPlan(t, `ALTER TABLE film ADD FOREIGN KEY (length) REFERENCES language (language_id);
ALTER TABLE film ADD FOREIGN KEY (length) REFERENCES language (language_id)`, pagila(t))
	// The second key uses the index the first one builds, and gets the
	// next name, as the naive statements run in sequence would.
	want := "E1-create-index-film-length-idx E2-check-orphans-film-length-fkey E3-add-foreign-key-film-length-fkey " +
		"E4-check-orphans-film-length-fkey1 E5-add-foreign-key-film-length-fkey1 M1-validate-film-length-fkey M2-validate-film-length-fkey1"
	if got := strings.Join(stepIDs(p), " "); got != want {
		t.Errorf("steps = %s, want %s", got, want)
	}
}

func TestAddForeignKeyQuoting(t *testing.T) {
	s := schemaOf(t, quotingSchema+`
CREATE TABLE public."user" ("user" text NOT NULL);
ALTER TABLE ONLY public."user" ADD CONSTRAINT user_pkey PRIMARY KEY ("user");
`)
	p := mustPlan(t, `ALTER TABLE "Order Items" ADD FOREIGN KEY ("user") REFERENCES "user" ("user")`, s)
	add := step(t, p, "E3-add-foreign-key-order-items-user-fkey")
	containsAll(t, "add", add.SQL, `"public"."Order Items" ADD CONSTRAINT "Order Items_user_fkey" FOREIGN KEY ("user") REFERENCES "public"."user" ("user") NOT VALID`)
	containsAll(t, "index", step(t, p, "E1-create-index-order-items-user-idx").SQL, `"Order Items_user_idx" ON public."Order Items"`)
	containsAll(t, "orphans", step(t, p, "E2-check-orphans-order-items-user-fkey").Gate.SQL,
		`FROM "public"."Order Items" AS c LEFT JOIN "public"."user" AS p ON p."user" = c."user"`)
	containsAll(t, "validate", step(t, p, "M1-validate-order-items-user-fkey").SQL, `"public"."Order Items" VALIDATE CONSTRAINT "Order Items_user_fkey"`)
}

func TestAddForeignKeyInvalid(t *testing.T) {
	s := pagila(t)
	cases := []struct{ sql, want string }{
		{"ALTER TABLE nope ADD FOREIGN KEY (a) REFERENCES staff (staff_id)", "table public.nope does not exist"},
		{"ALTER TABLE rental ADD FOREIGN KEY (staff_id) REFERENCES nope (id)", "table public.nope does not exist"},
		{"ALTER TABLE rental ADD FOREIGN KEY (nope) REFERENCES staff (staff_id)", "column nope does not exist in table public.rental"},
		{"ALTER TABLE rental ADD FOREIGN KEY (staff_id) REFERENCES staff (nope)", "column nope does not exist in table public.staff"},
		{"ALTER TABLE rental ADD FOREIGN KEY (staff_id) REFERENCES staff (first_name)", "no PRIMARY KEY or UNIQUE constraint"},
		{"ALTER TABLE rental ADD CONSTRAINT rental_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff (staff_id)", "already has a constraint named rental_staff_id_fkey"},
		{"ALTER TABLE rental ADD FOREIGN KEY (staff_id, customer_id) REFERENCES staff", "2 column(s) but the primary key of public.staff has 1"},
		{"ALTER TABLE rental ADD FOREIGN KEY (staff_id, customer_id) REFERENCES staff (staff_id)", "2 column(s) but references 1"},
	}
	for _, c := range cases {
		wantInvalid(t, c.sql, s, c.want)
	}
}

// The referenced table is written schema-qualified and quoted, whatever the
// input said, so the step does not depend on the search_path; every other
// clause of the input is kept.
func TestAddForeignKeyQualifiedReference(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE store ADD CONSTRAINT s FOREIGN KEY (manager_staff_id) REFERENCES staff (staff_id) MATCH FULL ON UPDATE CASCADE ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED", pagila(t))
	add := step(t, p, "E2-add-foreign-key-s")
	want := `ALTER TABLE "public"."store" ADD CONSTRAINT "s" FOREIGN KEY ("manager_staff_id") REFERENCES "public"."staff" ("staff_id") MATCH FULL ON UPDATE CASCADE ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED NOT VALID`
	if add.SQL != want {
		t.Errorf("add:\n got  %s\n want %s", add.SQL, want)
	}
	tree, err := pg_query.Parse(add.SQL)
	if err != nil {
		t.Fatal(err)
	}
	con := tree.Stmts[0].Stmt.GetAlterTableStmt().Cmds[0].GetAlterTableCmd().Def.GetConstraint()
	if con.Pktable.Schemaname != "public" || con.Pktable.Relname != "staff" || !con.SkipValidation || !con.Deferrable || !con.Initdeferred {
		t.Errorf("parsed back: %+v", con)
	}
}
