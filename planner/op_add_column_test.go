package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

// Safe forms are one expand step: a nullable column, a non-volatile
// default (PostgreSQL 11+ stores it in the catalog), now() included.
func TestAddColumnOneStep(t *testing.T) {
	cases := []struct {
		sql, want string
	}{
		{"ALTER TABLE customer ADD COLUMN nickname text",
			`ALTER TABLE "public"."customer" ADD COLUMN "nickname" text`},
		{"ALTER TABLE customer ADD COLUMN score int NOT NULL DEFAULT 0",
			`ALTER TABLE "public"."customer" ADD COLUMN "score" int NOT NULL DEFAULT 0`},
		{"ALTER TABLE customer ADD COLUMN seen timestamptz NOT NULL DEFAULT now()",
			`ALTER TABLE "public"."customer" ADD COLUMN "seen" timestamptz NOT NULL DEFAULT now()`},
		{"ALTER TABLE customer ADD COLUMN tier varchar(10) COLLATE \"C\" DEFAULT lower('GOLD')",
			`ALTER TABLE "public"."customer" ADD COLUMN "tier" varchar(10) COLLATE "C" DEFAULT lower('GOLD')`},
		{"ALTER TABLE customer ADD COLUMN rating public.mpaa_rating DEFAULT 'G'",
			`ALTER TABLE "public"."customer" ADD COLUMN "rating" public.mpaa_rating DEFAULT 'G'`},
	}
	for _, c := range cases {
		p := mustPlan(t, c.sql, pagila(t))
		if got := shape(p); got != "expand:db" {
			t.Errorf("%s: shape %q, want expand:db", c.sql, got)
			continue
		}
		s := p.Phases[0].Deploys[0].Steps[0]
		if s.SQL != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.sql, s.SQL, c.want)
		}
		if s.Lock != plans.LockAccessExclusive || s.Rewrite != plans.ImpactNone || s.Rollback == "" {
			t.Errorf("%s: lock %s rewrite %s rollback %q", c.sql, s.Lock, s.Rewrite, s.Rollback)
		}
	}
}

// A volatile default: add without default, set the default for new rows,
// backfill the existing ones, then the NOT NULL sequence.
func TestAddColumnVolatileDefault(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE customer ADD COLUMN uid uuid NOT NULL DEFAULT gen_random_uuid()", pagila(t))
	if got, want := shape(p), "expand:db migrate:db migrate:db"; got != want {
		t.Fatalf("shape = %q, want %q", got, want)
	}
	want := []string{"E1-add-column-uid", "B1-backfill-customer", "M1-add-not-null-check-uid", "M2-validate-not-null-check-uid", "M3-set-not-null-uid"}
	if got := strings.Join(stepIDs(p), " "); got != strings.Join(want, " ") {
		t.Fatalf("steps = %s, want %s", got, strings.Join(want, " "))
	}
	add := step(t, p, "E1-add-column-uid")
	if add.SQL != `ALTER TABLE "public"."customer" ADD COLUMN "uid" uuid;`+"\n"+`ALTER TABLE "public"."customer" ALTER COLUMN "uid" SET DEFAULT gen_random_uuid()` {
		t.Errorf("add = %s", add.SQL)
	}
	bf := step(t, p, "B1-backfill-customer")
	if bf.Backfill == nil || bf.Backfill.Where != `"uid" IS NULL` || bf.Backfill.Set[0] != `"uid" = COALESCE("uid", gen_random_uuid())` {
		t.Errorf("backfill = %+v", bf.Backfill)
	}
	if bf.Rewrite != plans.ImpactBatched {
		t.Errorf("backfill rewrite = %s", bf.Rewrite)
	}
	containsAll(t, "not null", step(t, p, "M3-set-not-null-uid").SQL,
		`ALTER TABLE "public"."customer" ALTER COLUMN "uid" SET NOT NULL`, `DROP CONSTRAINT "customer_uid_not_null"`)
	if v := step(t, p, "M2-validate-not-null-check-uid"); v.Lock != plans.LockShareUpdateExclusive || v.Rewrite != plans.ImpactScan {
		t.Errorf("validate: lock %s rewrite %s", v.Lock, v.Rewrite)
	}
}

// Two new columns of one table share one backfill pass.
func TestAddColumnsShareOneBackfill(t *testing.T) {
	p := mustPlan(t, `ALTER TABLE "Order Items" ADD COLUMN token uuid DEFAULT gen_random_uuid(), ADD COLUMN "Created At" timestamptz DEFAULT clock_timestamp();
ALTER TABLE "Order Items" ADD COLUMN plain int`, schemaOf(t, quotingSchema))
	var backfills []*plans.Step
	for _, ref := range p.Steps() {
		if ref.Step.Backfill != nil {
			backfills = append(backfills, ref.Step)
		}
	}
	if len(backfills) != 1 {
		t.Fatalf("want one backfill, got %d: %v", len(backfills), stepIDs(p))
	}
	bf := backfills[0].Backfill
	if len(bf.Set) != 2 || bf.Table != `"public"."Order Items"` {
		t.Fatalf("backfill = %+v", bf)
	}
	containsAll(t, "backfill", backfills[0].SQL, `"token" = COALESCE("token", gen_random_uuid())`,
		`"Created At" = COALESCE("Created At", clock_timestamp())`, `("token" IS NULL) OR ("Created At" IS NULL)`)
	if len(bf.Key) != 1 || bf.Key[0] != `"id"` {
		t.Errorf("batch key = %v", bf.Key)
	}
	containsAll(t, "plain column", step(t, p, "E3-add-column-plain").SQL, `ALTER TABLE "public"."Order Items" ADD COLUMN "plain" int`)
}

// NOT NULL without a default: no value to backfill from, so the column is
// added nullable, the application fills it, and NOT NULL comes at contract.
func TestAddColumnNotNullWithoutDefault(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE rental ADD COLUMN channel text NOT NULL", pagila(t))
	if got, want := shape(p), "expand:db migrate:app contract:db"; got != want {
		t.Fatalf("shape = %q, want %q", got, want)
	}
	want := "E1-add-column-channel C1-check-no-nulls-channel C2-add-not-null-check-channel C3-validate-not-null-check-channel C4-set-not-null-channel"
	if got := strings.Join(stepIDs(p), " "); got != want {
		t.Fatalf("steps = %s, want %s", got, want)
	}
	if s := step(t, p, "E1-add-column-channel"); s.SQL != `ALTER TABLE "public"."rental" ADD COLUMN "channel" text` {
		t.Errorf("add = %s", s.SQL)
	}
	if g := step(t, p, "C1-check-no-nulls-channel").Gate; g == nil || !strings.Contains(g.SQL, `"channel" IS NULL`) {
		t.Errorf("gate = %+v", g)
	}
	containsAll(t, "instructions", instructions(p), "Write public.rental.channel in every INSERT", "existing row")
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "refuse the statement on a non-empty table")
}

// Inline constraints are planned by their own change kinds, after the
// column exists.
func TestAddColumnInlineConstraints(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE customer ADD COLUMN code text UNIQUE CHECK (length(code) < 10)", pagila(t))
	ids := strings.Join(stepIDs(p), " ")
	if !strings.HasPrefix(ids, "E1-add-column-code") {
		t.Fatalf("the column must come first: %s", ids)
	}
	var sqls []string
	for _, ref := range p.Steps() {
		sqls = append(sqls, ref.Step.SQL)
	}
	all := strings.Join(sqls, "\n")
	containsAll(t, "plan", all, "CREATE UNIQUE INDEX CONCURRENTLY customer_code_key", "ADD CONSTRAINT customer_code_key UNIQUE USING INDEX customer_code_key",
		"ADD CONSTRAINT customer_code_check CHECK (length(code) < 10) NOT VALID")
}

func TestAddColumnUnknownFunctionIsAssumedVolatile(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE customer ADD COLUMN ref text DEFAULT public.make_ref()", pagila(t))
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "public.make_ref", "volatile")
	step(t, p, "B1-backfill-customer")
}

func TestAddColumnWithoutSchema(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE t ADD COLUMN c int DEFAULT 1", nil)
	if got := shape(p); got != "expand:db" {
		t.Fatalf("shape = %q", got)
	}
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "not a domain with constraints")
}

func TestAddColumnIfNotExistsOnExistingColumn(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE customer ADD COLUMN IF NOT EXISTS email text", pagila(t))
	if len(p.Steps()) != 0 {
		t.Errorf("want no steps, got %v", stepIDs(p))
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "changes nothing")
}

func TestAddColumnInvalid(t *testing.T) {
	s := pagila(t)
	wantInvalid(t, "ALTER TABLE customer ADD COLUMN email text", s, "already has a column named email")
	wantInvalid(t, "ALTER TABLE nope ADD COLUMN x text", s, "table public.nope does not exist")
	wantInvalid(t, "ALTER TABLE customer ADD COLUMN x no_such_type", s, "type public.no_such_type does not exist")
	wantInvalid(t, "ALTER TABLE payment_p2022_01 ADD COLUMN x text", s, "partition of public.payment")
	wantInvalid(t, "ALTER TABLE customer ADD COLUMN x int NOT NULL DEFAULT NULL", s, "DEFAULT NULL")
	wantInvalid(t, "ALTER TABLE customer ADD COLUMN x int DEFAULT store_id + 1", s, "cannot refer to columns")
	wantInvalid(t, "ALTER TABLE film ADD COLUMN n bigint PRIMARY KEY", s, "PRIMARY KEY", "DEFAULT")
	wantUnsupported(t, "ALTER TABLE film ADD COLUMN remade public.year", s, "domain with constraints", "integer")
	wantUnsupported(t, "ALTER TABLE film ADD COLUMN n bigserial", s, "serial", "nextval")
	wantUnsupported(t, "ALTER TABLE film ADD COLUMN n int GENERATED ALWAYS AS (length * 2) STORED", s, "generated")
	wantUnsupported(t, "ALTER TABLE film ADD COLUMN n int GENERATED BY DEFAULT AS IDENTITY", s, "identity")
}
