package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

// A NOT NULL column without default is made nullable first, so the release
// that stops writing it can still insert; the drop itself is irreversible.
func TestDropColumnNotNullWithoutDefault(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE rental DROP COLUMN staff_id", pagila(t))
	if got, want := shape(p), "expand:db migrate:app contract:db"; got != want {
		t.Fatalf("shape = %q, want %q", got, want)
	}
	if got := strings.Join(stepIDs(p), " "); got != "E1-drop-not-null-staff-id C1-drop-column-staff-id" {
		t.Fatalf("steps = %s", got)
	}
	e := step(t, p, "E1-drop-not-null-staff-id")
	if e.SQL != `ALTER TABLE "public"."rental" ALTER COLUMN "staff_id" DROP NOT NULL` ||
		e.Rollback != `ALTER TABLE "public"."rental" ALTER COLUMN "staff_id" SET NOT NULL` {
		t.Errorf("drop not null: %s / %s", e.SQL, e.Rollback)
	}
	c := step(t, p, "C1-drop-column-staff-id")
	if c.SQL != `ALTER TABLE "public"."rental" DROP COLUMN "staff_id"` {
		t.Errorf("drop = %s", c.SQL)
	}
	if !c.Irreversible || c.Rollback != "" || !strings.Contains(c.IrreversibleReason, "discards") {
		t.Errorf("drop must be irreversible with a reason: %+v", c)
	}
	if c.Lock != plans.LockAccessExclusive || !hasHazard(c, plans.HazardDataLoss) {
		t.Errorf("lock %s hazards %v", c.Lock, c.Hazards)
	}
	containsAll(t, "instructions", instructions(p), "Stop reading and writing public.rental.staff_id")
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "FOREIGN KEY rental_staff_id_fkey")
}

func TestDropColumnNullable(t *testing.T) {
	p := mustPlan(t, `ALTER TABLE "Order Items" DROP COLUMN note`, schemaOf(t, quotingSchema))
	if got, want := shape(p), "migrate:app contract:db"; got != want {
		t.Fatalf("shape = %q, want %q", got, want)
	}
	if s := step(t, p, "C1-drop-column-note"); s.SQL != `ALTER TABLE "public"."Order Items" DROP COLUMN "note"` {
		t.Errorf("drop = %s", s.SQL)
	}
}

// Views reading the column: PostgreSQL refuses the drop without CASCADE,
// so does the plan; with CASCADE the plan drops them explicitly.
func TestDropColumnWithViews(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "ALTER TABLE film DROP COLUMN rental_rate", s,
		"public.film_list", "public.nicer_but_slower_film_list", "CASCADE")
	p := mustPlan(t, "ALTER TABLE film DROP COLUMN rental_rate CASCADE", s)
	c := step(t, p, "C1-drop-column-rental-rate")
	want := `DROP VIEW "public"."film_list";` + "\n" + `DROP VIEW "public"."nicer_but_slower_film_list";` + "\n" +
		`ALTER TABLE "public"."film" DROP COLUMN "rental_rate" CASCADE`
	if c.SQL != want {
		t.Errorf("drop =\n%s\nwant\n%s", c.SQL, want)
	}
	containsAll(t, "reason", c.IrreversibleReason, "public.film_list")
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "CASCADE drops the view(s) public.film_list")
	containsAll(t, "instructions", instructions(p), "Stop using the view(s)")

	// Quoting: "Big Orders" reads "user".
	q := schemaOf(t, quotingSchema)
	wantInvalid(t, `ALTER TABLE "Order Items" DROP COLUMN "user"`, q, "public.Big Orders")
	p = mustPlan(t, `ALTER TABLE "Order Items" DROP COLUMN "user" CASCADE`, q)
	containsAll(t, "drop", step(t, p, "C1-drop-column-user").SQL, `DROP VIEW "public"."Big Orders"`, `DROP COLUMN "user" CASCADE`)
}

func TestDropColumnReferencedByForeignKeys(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "ALTER TABLE customer DROP COLUMN customer_id", s,
		"foreign key payment_p2022_01_customer_id_fkey of public.payment_p2022_01", "CASCADE")
	p := mustPlan(t, "ALTER TABLE language DROP COLUMN language_id CASCADE", s)
	w := strings.Join(p.Warnings, "\n")
	containsAll(t, "warnings", w, "CASCADE drops foreign key film_language_id_fkey of public.film", "primary key")
}

func TestDropColumnPartitions(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "ALTER TABLE payment DROP COLUMN payment_date", s, "partition key")
	wantInvalid(t, "ALTER TABLE payment_p2022_01 DROP COLUMN amount", s, "inherited from public.payment")
	p := mustPlan(t, "ALTER TABLE payment DROP COLUMN staff_id", s)
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"),
		"idx_fk_payment_p2022_01_staff_id (on partition public.payment_p2022_01)",
		"FOREIGN KEY payment_p2022_01_staff_id_fkey (on partition public.payment_p2022_01)")
}

func TestDropColumnDependents(t *testing.T) {
	s := schemaOf(t, `
CREATE SEQUENCE public.t_id_seq;
CREATE TABLE public.t (id integer DEFAULT nextval('public.t_id_seq'::regclass), a integer, b integer GENERATED ALWAYS AS (a * 2) STORED);
ALTER SEQUENCE public.t_id_seq OWNED BY public.t.id;
CREATE FUNCTION public.f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER on_a BEFORE UPDATE OF a ON public.t FOR EACH ROW EXECUTE FUNCTION public.f();
`)
	wantInvalid(t, "ALTER TABLE t DROP COLUMN a", s, "generated column(s) b", "trigger(s) on_a")
	p := mustPlan(t, "ALTER TABLE t DROP COLUMN a CASCADE", s)
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "generated column(s) b", "trigger(s) on_a")
	p = mustPlan(t, "ALTER TABLE t DROP COLUMN id", s)
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "Sequence(s) public.t_id_seq are owned by public.t.id")
}

func TestDropColumnIfExistsMissing(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE film DROP COLUMN IF EXISTS nope", pagila(t))
	if len(p.Steps()) != 0 {
		t.Errorf("steps = %v", stepIDs(p))
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "changes nothing")
	wantInvalid(t, "ALTER TABLE film DROP COLUMN nope", pagila(t), "column nope does not exist in table public.film")
}

func TestDropColumnWithoutSchema(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE t DROP COLUMN c", nil)
	if got, want := shape(p), "migrate:app contract:db"; got != want {
		t.Fatalf("shape = %q, want %q", got, want)
	}
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "nullable or has a default", "No view")
}
