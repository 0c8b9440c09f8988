package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

func TestAddEnumValue(t *testing.T) {
	p := mustPlan(t, "ALTER TYPE mpaa_rating ADD VALUE 'X' AFTER 'NC-17'", pagila(t))
	if got := shape(p); got != "expand:db migrate:app" {
		t.Errorf("shape = %q", got)
	}
	s := step(t, p, "E1-add-enum-value-mpaa-rating-x")
	if s.SQL != "ALTER TYPE public.mpaa_rating ADD VALUE 'X' AFTER 'NC-17'" || s.Transactional || s.Lock != plans.LockNone ||
		!s.Irreversible || s.Rollback != "" || !strings.Contains(s.IrreversibleReason, "cannot remove a value") {
		t.Errorf("step: %+v", s)
	}
	if s.Gate == nil || s.Gate.SQL != `SELECT count(*) = 1 FROM pg_catalog.pg_enum WHERE enumtypid = '"public"."mpaa_rating"'::regtype AND enumlabel = 'X'` {
		t.Errorf("gate: %+v", s.Gate)
	}
	containsAll(t, "instructions", instructions(p), "may write it", "every running release can read it")
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "cannot be used in the transaction that adds it")
}

func TestAddEnumValueQuoting(t *testing.T) {
	s := schemaOf(t, `CREATE TYPE public."Order State" AS ENUM ('new', 'it''s done');`)
	p := mustPlan(t, `ALTER TYPE "Order State" ADD VALUE 'user''s' BEFORE 'it''s done'`, s)
	st := step(t, p, "E1-add-enum-value-order-state-user-s")
	if st.SQL != `ALTER TYPE public."Order State" ADD VALUE 'user''s' BEFORE 'it''s done'` {
		t.Errorf("sql = %s", st.SQL)
	}
	containsAll(t, "gate", st.Gate.SQL, `'"public"."Order State"'::regtype`, `enumlabel = 'user''s'`)
}

func TestAddEnumValueIfNotExists(t *testing.T) {
	p := mustPlan(t, "ALTER TYPE mpaa_rating ADD VALUE IF NOT EXISTS 'G'", pagila(t))
	if len(p.Steps()) != 0 {
		t.Errorf("want no step: %v", stepIDs(p))
	}
	p = mustPlan(t, "ALTER TYPE mpaa_rating ADD VALUE IF NOT EXISTS 'X'", nil)
	containsAll(t, "sql", step(t, p, "E1-add-enum-value-mpaa-rating-x").SQL, "ADD VALUE IF NOT EXISTS 'X'")
}

func TestAddEnumValueInvalid(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "ALTER TYPE nope ADD VALUE 'x'", s, "enum type public.nope does not exist")
	wantInvalid(t, "ALTER TYPE mpaa_rating ADD VALUE 'G'", s, "already has the value 'G'")
	wantInvalid(t, "ALTER TYPE mpaa_rating ADD VALUE 'X' AFTER 'nope'", s, "has no value 'nope'")
	wantUnsupported(t, "ALTER TYPE mpaa_rating RENAME VALUE 'G' TO 'General'", s, "breaks every running release")
}
