package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

func TestAddCheck(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE film ADD CHECK (length > 0)", pagila(t))
	if got := shape(p); got != "expand:db migrate:db" {
		t.Errorf("shape = %q", got)
	}
	want := "E1-check-violations-film-length-check E2-add-check-film-length-check M1-validate-film-length-check"
	if got := strings.Join(stepIDs(p), " "); got != want {
		t.Fatalf("steps = %s, want %s", got, want)
	}
	pre := step(t, p, "E1-check-violations-film-length-check")
	if pre.Gate == nil || pre.Gate.SQL != `SELECT count(*) FROM "public"."film" WHERE NOT length > 0` || pre.Lock != plans.LockAccessShare {
		t.Errorf("pre-check: %+v", pre)
	}
	add := step(t, p, "E2-add-check-film-length-check")
	if add.SQL != "ALTER TABLE public.film ADD CONSTRAINT film_length_check CHECK (length > 0) NOT VALID" ||
		add.Lock != plans.LockAccessExclusive || add.Rewrite != plans.ImpactNone || !hasHazard(add, plans.HazardAccessExclusive) {
		t.Errorf("add: %+v", add)
	}
	if add.Rollback != `ALTER TABLE "public"."film" DROP CONSTRAINT IF EXISTS "film_length_check"` {
		t.Errorf("add rollback: %s", add.Rollback)
	}
	v := step(t, p, "M1-validate-film-length-check")
	if v.Lock != plans.LockShareUpdateExclusive || v.Rewrite != plans.ImpactScan || v.Irreversible || v.Rollback == "" {
		t.Errorf("validate: %+v", v)
	}
}

// PostgreSQL names a check after its column when it uses exactly one, else
// <table>_check; clashes are numbered (checked against PostgreSQL 15).
func TestAddCheckDefaultNames(t *testing.T) {
	p := mustPlan(t, `ALTER TABLE film ADD CHECK (length > 0), ADD CHECK (rental_rate >= 0 AND replacement_cost > rental_rate), ADD CHECK (length < 1000), ADD CHECK (true)`, pagila(t))
	for _, id := range []string{"E2-add-check-film-length-check", "E4-add-check-film-check", "E6-add-check-film-length-check1", "E8-add-check-film-check1"} {
		step(t, p, id)
	}
	// The negation keeps the precedence of the whole expression.
	containsAll(t, "pre-check", step(t, p, "E3-check-violations-film-check").SQL,
		`WHERE NOT (rental_rate >= 0 AND replacement_cost > rental_rate)`)
}

func TestAddCheckWrittenNotValid(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE film ADD CONSTRAINT film_len CHECK (length > 0) NOT VALID", pagila(t))
	if got := strings.Join(stepIDs(p), " "); got != "E1-add-check-film-len" {
		t.Fatalf("steps = %s", got)
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "written NOT VALID")
}

// A check after a batched UPDATE of the same table waits for that update,
// so its pre-check sees the final data.
func TestAddCheckAfterBackfill(t *testing.T) {
	p := mustPlan(t, "UPDATE film SET length = 1 WHERE length < 1; ALTER TABLE film ADD CHECK (length >= 1)", pagila(t))
	want := "B1-update-film M1-check-violations-film-length-check M2-add-check-film-length-check M3-validate-film-length-check"
	if got := strings.Join(stepIDs(p), " "); got != want {
		t.Fatalf("steps = %s, want %s", got, want)
	}
}

func TestAddCheckQuoting(t *testing.T) {
	p := mustPlan(t, `ALTER TABLE "Order Items" ADD CHECK ("Unit Price" > 0 AND "user" <> '')`, schemaOf(t, quotingSchema))
	add := step(t, p, "E2-add-check-order-items-check")
	containsAll(t, "add", add.SQL, `public."Order Items" ADD CONSTRAINT "Order Items_check" CHECK ("Unit Price" > 0 AND "user" <> '') NOT VALID`)
	containsAll(t, "pre-check", step(t, p, "E1-check-violations-order-items-check").SQL,
		`FROM "public"."Order Items" WHERE NOT ("Unit Price" > 0 AND "user" <> '')`)
	p = mustPlan(t, `ALTER TABLE "Order Items" ADD CHECK ("Unit Price" > 0)`, schemaOf(t, quotingSchema))
	containsAll(t, "validate", step(t, p, "M1-validate-order-items-unit-price-check").SQL, `VALIDATE CONSTRAINT "Order Items_Unit Price_check"`)
}

func TestAddCheckWithoutSchema(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE film ADD CHECK (length > 0)", nil)
	if got := strings.Join(stepIDs(p), " "); got != "E1-check-violations-film-length-check E2-add-check-film-length-check M1-validate-film-length-check" {
		t.Fatalf("steps = %s", got)
	}
}

func TestAddCheckInvalid(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "ALTER TABLE nope ADD CHECK (a > 0)", s, "table public.nope does not exist")
	wantInvalid(t, "ALTER TABLE film ADD CHECK (nope > 0)", s, "column nope does not exist in table public.film")
	wantInvalid(t, "ALTER TABLE film ADD CONSTRAINT film_pkey CHECK (length > 0)", s, "already has a constraint named film_pkey")
}
