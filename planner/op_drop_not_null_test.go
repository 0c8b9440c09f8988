package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

func TestDropNotNull(t *testing.T) {
	p := mustPlan(t, `ALTER TABLE "Order Items" ALTER COLUMN "Unit Price" DROP NOT NULL`, schemaOf(t, quotingSchema))
	if got := shape(p); got != "expand:db" {
		t.Fatalf("shape = %q", got)
	}
	s := step(t, p, "E1-drop-not-null-unit-price")
	if s.SQL != `ALTER TABLE "public"."Order Items" ALTER COLUMN "Unit Price" DROP NOT NULL` ||
		s.Rollback != `ALTER TABLE "public"."Order Items" ALTER COLUMN "Unit Price" SET NOT NULL` {
		t.Errorf("%s / %s", s.SQL, s.Rollback)
	}
	if s.Lock != plans.LockAccessExclusive || s.Rewrite != plans.ImpactNone || !s.Transactional {
		t.Errorf("lock %s rewrite %s", s.Lock, s.Rewrite)
	}
	// The rollback scans: the step says so.
	if !hasHazard(s, plans.HazardTableScan) {
		t.Errorf("hazards = %v", s.Hazards)
	}
}

func TestDropNotNullInvalid(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "ALTER TABLE film ALTER COLUMN film_id DROP NOT NULL", s, "primary key film_pkey")
	wantInvalid(t, "ALTER TABLE payment_p2022_01 ALTER COLUMN amount DROP NOT NULL", s, "public.payment")
	wantInvalid(t, "ALTER TABLE film ALTER COLUMN nope DROP NOT NULL", s, "column nope does not exist")
	p := mustPlan(t, "ALTER TABLE film ALTER COLUMN description DROP NOT NULL", s)
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "already nullable")
}
