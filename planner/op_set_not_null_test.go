package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

func TestSetNotNull(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE address ALTER COLUMN postal_code SET NOT NULL", pagila(t))
	if got, want := shape(p), "expand:db migrate:db"; got != want {
		t.Fatalf("shape = %q, want %q", got, want)
	}
	want := "E1-check-no-nulls-postal-code E2-add-not-null-check-postal-code M1-validate-not-null-check-postal-code M2-set-not-null-postal-code"
	if got := strings.Join(stepIDs(p), " "); got != want {
		t.Fatalf("steps = %s, want %s", got, want)
	}
	pre := step(t, p, "E1-check-no-nulls-postal-code")
	if pre.Lock != plans.LockAccessShare || pre.Gate == nil ||
		pre.Gate.SQL != `SELECT NOT EXISTS (SELECT 1 FROM "public"."address" WHERE "postal_code" IS NULL)` {
		t.Errorf("pre-check: lock %s gate %+v", pre.Lock, pre.Gate)
	}
	add := step(t, p, "E2-add-not-null-check-postal-code")
	if add.SQL != `ALTER TABLE "public"."address" ADD CONSTRAINT "address_postal_code_not_null" CHECK ("postal_code" IS NOT NULL) NOT VALID` ||
		add.Lock != plans.LockAccessExclusive || add.Rewrite != plans.ImpactNone {
		t.Errorf("add: %s (%s, %s)", add.SQL, add.Lock, add.Rewrite)
	}
	if add.Rollback != `ALTER TABLE "public"."address" DROP CONSTRAINT IF EXISTS "address_postal_code_not_null"` {
		t.Errorf("add rollback: %s", add.Rollback)
	}
	v := step(t, p, "M1-validate-not-null-check-postal-code")
	if v.Lock != plans.LockShareUpdateExclusive || v.Rewrite != plans.ImpactScan || !hasHazard(v, plans.HazardTableScan) {
		t.Errorf("validate: %s %s %v", v.Lock, v.Rewrite, v.Hazards)
	}
	set := step(t, p, "M2-set-not-null-postal-code")
	if set.SQL != `ALTER TABLE "public"."address" ALTER COLUMN "postal_code" SET NOT NULL;`+"\n"+`ALTER TABLE "public"."address" DROP CONSTRAINT "address_postal_code_not_null"` ||
		set.Rewrite != plans.ImpactNone || set.Rollback != `ALTER TABLE "public"."address" ALTER COLUMN "postal_code" DROP NOT NULL` {
		t.Errorf("set: %s / %s (%s)", set.SQL, set.Rollback, set.Rewrite)
	}
}

func TestSetNotNullOldServerScans(t *testing.T) {
	s := schemaOf(t, `CREATE TABLE public."Order Items" (id integer, "user" text);`)
	s.ServerVersion = 110012
	p := mustPlan(t, `ALTER TABLE "Order Items" ALTER COLUMN "user" SET NOT NULL`, s)
	set := step(t, p, "M2-set-not-null-user")
	if set.Rewrite != plans.ImpactScan || !hasHazard(set, plans.HazardTableScan) {
		t.Errorf("PostgreSQL 11: SET NOT NULL scans; got %s %v", set.Rewrite, set.Hazards)
	}
	containsAll(t, "quoting", set.SQL, `ALTER TABLE "public"."Order Items" ALTER COLUMN "user" SET NOT NULL`, `"Order Items_user_not_null"`)
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "PostgreSQL 11.0")
	s.ServerVersion = 150004
	p = mustPlan(t, `ALTER TABLE "Order Items" ALTER COLUMN "user" SET NOT NULL`, s)
	if set := step(t, p, "M2-set-not-null-user"); set.Rewrite != plans.ImpactNone {
		t.Errorf("PostgreSQL 15: SET NOT NULL uses the check; got %s", set.Rewrite)
	}
	if strings.Contains(strings.Join(p.Assumptions, "\n"), "PostgreSQL 12 or later") {
		t.Errorf("known server version: no assumption expected: %v", p.Assumptions)
	}
}

func TestSetNotNullAlreadyAndInvalid(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE film ALTER COLUMN title SET NOT NULL", pagila(t))
	if len(p.Steps()) != 0 {
		t.Errorf("steps = %v", stepIDs(p))
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "already NOT NULL")
	wantInvalid(t, "ALTER TABLE film ALTER COLUMN nope SET NOT NULL", pagila(t), "column nope does not exist")
	p = mustPlan(t, "ALTER TABLE t ALTER COLUMN c SET NOT NULL", nil)
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "PostgreSQL 12 or later")
}
