package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

func TestSetDefault(t *testing.T) {
	s := pagila(t)
	cases := []struct {
		sql, id, want, rollback string
	}{
		{"ALTER TABLE film ALTER COLUMN rental_rate SET DEFAULT 5.99", "E1-set-default-rental-rate",
			`ALTER TABLE "public"."film" ALTER COLUMN "rental_rate" SET DEFAULT 5.99`,
			`ALTER TABLE "public"."film" ALTER COLUMN "rental_rate" SET DEFAULT 4.99`},
		{"ALTER TABLE film ALTER COLUMN length SET DEFAULT 90", "E1-set-default-length",
			`ALTER TABLE "public"."film" ALTER COLUMN "length" SET DEFAULT 90`,
			`ALTER TABLE "public"."film" ALTER COLUMN "length" DROP DEFAULT`},
		{"ALTER TABLE film ALTER COLUMN rating DROP DEFAULT", "E1-drop-default-rating",
			`ALTER TABLE "public"."film" ALTER COLUMN "rating" DROP DEFAULT`,
			`ALTER TABLE "public"."film" ALTER COLUMN "rating" SET DEFAULT 'G'::public.mpaa_rating`},
		// A volatile default is fine: it applies to new rows only.
		{"ALTER TABLE customer ALTER COLUMN create_date SET DEFAULT clock_timestamp()::date", "E1-set-default-create-date",
			`ALTER TABLE "public"."customer" ALTER COLUMN "create_date" SET DEFAULT clock_timestamp()::date`,
			`ALTER TABLE "public"."customer" ALTER COLUMN "create_date" SET DEFAULT current_date`},
	}
	for _, c := range cases {
		p := mustPlan(t, c.sql, s)
		if got := shape(p); got != "expand:db" {
			t.Errorf("%s: shape %q", c.sql, got)
			continue
		}
		st := step(t, p, c.id)
		if st.SQL != c.want || st.Rollback != c.rollback {
			t.Errorf("%s:\n got %s / %s\nwant %s / %s", c.sql, st.SQL, st.Rollback, c.want, c.rollback)
		}
		if st.Lock != plans.LockAccessExclusive || st.Rewrite != plans.ImpactNone || st.Irreversible {
			t.Errorf("%s: lock %s rewrite %s irreversible %v", c.sql, st.Lock, st.Rewrite, st.Irreversible)
		}
	}
}

func TestSetDefaultQuotingAndNoSchema(t *testing.T) {
	p := mustPlan(t, `ALTER TABLE "Order Items" ALTER COLUMN "user" SET DEFAULT current_user`, schemaOf(t, quotingSchema))
	st := step(t, p, "E1-set-default-user")
	if st.SQL != `ALTER TABLE "public"."Order Items" ALTER COLUMN "user" SET DEFAULT current_user` ||
		st.Rollback != `ALTER TABLE "public"."Order Items" ALTER COLUMN "user" DROP DEFAULT` {
		t.Errorf("%s / %s", st.SQL, st.Rollback)
	}
	// Without a schema the previous default is unknown.
	p = mustPlan(t, "ALTER TABLE t ALTER COLUMN c DROP DEFAULT", nil)
	st = step(t, p, "E1-drop-default-c")
	if !st.Irreversible || !strings.Contains(st.IrreversibleReason, "previous default is unknown") {
		t.Errorf("irreversible %v %q", st.Irreversible, st.IrreversibleReason)
	}
}

func TestSetDefaultInvalid(t *testing.T) {
	s := schemaOf(t, "CREATE TABLE public.t (id integer GENERATED ALWAYS AS IDENTITY, a integer, b integer GENERATED ALWAYS AS (a + 1) STORED, c integer NOT NULL DEFAULT 0);")
	wantInvalid(t, "ALTER TABLE t ALTER COLUMN id SET DEFAULT 1", s, "identity column")
	wantInvalid(t, "ALTER TABLE t ALTER COLUMN b SET DEFAULT 1", s, "generated column")
	wantInvalid(t, "ALTER TABLE t ALTER COLUMN nope SET DEFAULT 1", s, "column nope does not exist")
	p := mustPlan(t, "ALTER TABLE t ALTER COLUMN c DROP DEFAULT", s)
	if st := step(t, p, "C1-drop-default-c"); !hasHazard(st, plans.HazardDeployBreakage) {
		t.Errorf("dropping the default of a NOT NULL column breaks inserts that omit it: %v", st.Hazards)
	}
	p = mustPlan(t, "ALTER TABLE t ALTER COLUMN a DROP DEFAULT", s)
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "has no default")
}

// Dropping the default of a NOT NULL column breaks the INSERTs of running
// releases that leave the column out: an application release that always
// writes it comes first, and the DROP DEFAULT is a contract step.
func TestDropDefaultOfNotNullColumn(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE film ALTER COLUMN rental_rate DROP DEFAULT", pagila(t))
	if got := shape(p); got != "migrate:app contract:db" {
		t.Fatalf("shape = %q", got)
	}
	st := step(t, p, "C1-drop-default-rental-rate")
	if st.SQL != `ALTER TABLE "public"."film" ALTER COLUMN "rental_rate" DROP DEFAULT` ||
		st.Rollback != `ALTER TABLE "public"."film" ALTER COLUMN "rental_rate" SET DEFAULT 4.99` || !hasHazard(st, plans.HazardDeployBreakage) {
		t.Errorf("step: %+v", st)
	}
	containsAll(t, "instructions", instructions(p), "Write `rental_rate` explicitly in every INSERT into public.film", "4.99")
	// Without a schema nullability is unknown: one step, and an assumption.
	p = mustPlan(t, "ALTER TABLE film ALTER COLUMN rental_rate DROP DEFAULT", nil)
	step(t, p, "E1-drop-default-rental-rate")
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "rental_rate of public.film is nullable")
}
