package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

// Every statement that passes through is one expand step with a real
// rollback where the inverse is obvious.
func TestPassthroughRollbacks(t *testing.T) {
	cases := []struct {
		sql, id, rollback string
		lock              plans.Lock
	}{
		{`CREATE TABLE "Order Items" (id int PRIMARY KEY, "user" text)`, "E1-create-table-order-items", `DROP TABLE IF EXISTS "public"."Order Items"`, plans.LockNone},
		{"CREATE TABLE t1 (id int, film_id int REFERENCES film)", "E1-create-table-t1", `DROP TABLE IF EXISTS "public"."t1"`, plans.LockShareRowExclusive},
		{"CREATE TABLE payment_p2022_08 PARTITION OF payment FOR VALUES FROM ('2022-08-01') TO ('2022-09-01')", "E1-create-table-payment-p2022-08", `DROP TABLE IF EXISTS "public"."payment_p2022_08"`, plans.LockAccessExclusive},
		{"CREATE VIEW v1 AS SELECT 1 AS x", "E1-create-view-v1", `DROP VIEW IF EXISTS "public"."v1"`, plans.LockNone},
		{"CREATE SEQUENCE s.seq1", "E1-create-sequence-seq1", `DROP SEQUENCE IF EXISTS "s"."seq1"`, plans.LockNone},
		{"CREATE TYPE e1 AS ENUM ('a')", "E1-create-type-e1", `DROP TYPE IF EXISTS "public"."e1"`, plans.LockNone},
		{"CREATE TYPE c1 AS (a int)", "E1-create-type-c1", `DROP TYPE IF EXISTS "public"."c1"`, plans.LockNone},
		{"CREATE DOMAIN d1 AS int CHECK (VALUE > 0)", "E1-create-domain-d1", `DROP DOMAIN IF EXISTS "public"."d1"`, plans.LockNone},
		{"CREATE FUNCTION f1(a int, OUT b text, VARIADIC c text[]) LANGUAGE sql AS 'select 1::text'", "E1-create-function-f1", "DROP FUNCTION IF EXISTS f1(int, text[])", plans.LockNone},
		{"CREATE PROCEDURE p1(a int) LANGUAGE sql AS 'select 1'", "E1-create-function-p1", "DROP PROCEDURE IF EXISTS p1(int)", plans.LockNone},
		{`CREATE SCHEMA "New Schema"`, "E1-create-schema-new-schema", `DROP SCHEMA IF EXISTS "New Schema"`, plans.LockNone},
		{"CREATE EXTENSION pg_trgm", "E1-create-extension-pg-trgm", `DROP EXTENSION IF EXISTS "pg_trgm"`, plans.LockNone},
		{"CREATE MATERIALIZED VIEW mv1 AS SELECT 1 AS x", "E1-create-materialized-view-mv1", `DROP MATERIALIZED VIEW IF EXISTS "public"."mv1"`, plans.LockNone},
		{"CREATE TABLE t2 AS SELECT 1 AS y", "E1-create-table-t2", `DROP TABLE IF EXISTS "public"."t2"`, plans.LockNone},
		{"ALTER INDEX idx_title RENAME TO idx_film_title", "E1-rename-index-idx-film-title", "ALTER INDEX public.idx_film_title RENAME TO idx_title", plans.LockShareUpdateExclusive},
		{"ALTER TABLE film RENAME CONSTRAINT film_pkey TO film_pk", "E1-rename-constraint-film-pk", "ALTER TABLE film RENAME CONSTRAINT film_pk TO film_pkey", plans.LockAccessExclusive},
		{"ALTER VIEW film_list RENAME TO films", "E1-rename-view-films", "ALTER VIEW public.films RENAME TO film_list", plans.LockAccessExclusive},
		{"ALTER TABLE address DROP CONSTRAINT address_city_id_fkey", "E1-drop-constraint-address-city-id-fkey",
			`ALTER TABLE "public"."address" ADD CONSTRAINT "address_city_id_fkey" FOREIGN KEY (city_id) REFERENCES public.city (city_id) ON UPDATE CASCADE ON DELETE RESTRICT`, plans.LockAccessExclusive},
		{"ALTER TABLE film VALIDATE CONSTRAINT film_language_id_fkey", "E1-validate-film-language-id-fkey", "SELECT 1 /* validation changes no data and needs no undo */", plans.LockShareUpdateExclusive},
	}
	for _, c := range cases {
		p := mustPlan(t, c.sql, pagila(t))
		if got := strings.Join(stepIDs(p), " "); got != c.id {
			t.Errorf("%s: steps = %s, want %s", c.sql, got, c.id)
			continue
		}
		s := step(t, p, c.id)
		if s.Irreversible || s.Rollback != c.rollback {
			t.Errorf("%s: rollback = %q (irreversible %v), want %q", c.sql, s.Rollback, s.Irreversible, c.rollback)
		}
		if s.Lock != c.lock {
			t.Errorf("%s: lock = %s, want %s", c.sql, s.Lock, c.lock)
		}
	}
}

func TestPassthroughIrreversible(t *testing.T) {
	cases := []struct{ sql, reason string }{
		{"CREATE TABLE IF NOT EXISTS t1 (id int)", "may have existed before"},
		{"CREATE OR REPLACE FUNCTION f1() RETURNS int LANGUAGE sql AS 'select 1'", "previous body"},
		{"COMMENT ON TABLE film IS 'x'", "previous comment"},
		{"CREATE SCHEMA s1 CREATE TABLE t (a int)", "created with objects in it"},
	}
	for _, c := range cases {
		p := mustPlan(t, c.sql, pagila(t))
		s := p.Steps()[0].Step
		if !s.Irreversible || !strings.Contains(s.IrreversibleReason, c.reason) {
			t.Errorf("%s: %+v", c.sql, s)
		}
	}
	// CREATE OR REPLACE VIEW: without a schema the old definition is
	// unknown; with one, the rollback restores it.
	p := mustPlan(t, "CREATE OR REPLACE VIEW film_list AS SELECT 1 AS fid", nil)
	if !p.Steps()[0].Step.Irreversible {
		t.Errorf("replace view without schema: %+v", p.Steps()[0].Step)
	}
	p = mustPlan(t, "CREATE OR REPLACE VIEW sales_by_store AS SELECT 'x'::text AS store, 'y'::text AS manager, 1::numeric AS total_sales", pagila(t))
	s := p.Steps()[0].Step
	if !strings.HasPrefix(s.Rollback, "CREATE OR REPLACE VIEW public.sales_by_store AS SELECT") || s.Lock != plans.LockAccessExclusive {
		t.Errorf("replace view: %+v", s)
	}
}

func TestPassthroughNoOpsAndInvalid(t *testing.T) {
	s := pagila(t)
	p := mustPlan(t, "CREATE TABLE IF NOT EXISTS film (id int)", s)
	if len(p.Steps()) != 0 {
		t.Errorf("want no step: %v", stepIDs(p))
	}
	p = mustPlan(t, "ALTER TABLE film DROP CONSTRAINT IF EXISTS nope", s)
	if len(p.Steps()) != 0 {
		t.Errorf("want no step: %v", stepIDs(p))
	}
	wantInvalid(t, "CREATE TABLE film (id int)", s, "a relation named film already exists")
	wantInvalid(t, "CREATE VIEW film_list AS SELECT 1", s, "a relation named film_list already exists")
	wantInvalid(t, "CREATE TABLE p9 PARTITION OF film FOR VALUES FROM (1) TO (2)", s, "table public.film is not partitioned")
	wantInvalid(t, "ALTER TABLE film DROP CONSTRAINT nope", s, "has no constraint named nope")
	wantInvalid(t, "ALTER TABLE film DROP CONSTRAINT film_pkey", s, "foreign key film_actor_film_id_fkey of public.film_actor depends on constraint film_pkey")
	wantInvalid(t, "ALTER TABLE film RENAME CONSTRAINT nope TO x", s, "has no constraint named nope")
	wantInvalid(t, "ALTER INDEX nope RENAME TO x", s, "index public.nope does not exist")
	wantInvalid(t, "ALTER INDEX idx_title RENAME TO film", s, "a relation named film already exists")
	wantInvalid(t, "ALTER TABLE film VALIDATE CONSTRAINT nope", s, "has no constraint named nope")
}

func TestPassthroughWithoutSchema(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE film DROP CONSTRAINT film_check", nil)
	s := p.Steps()[0].Step
	if !s.Irreversible || !strings.Contains(s.IrreversibleReason, "--schema") {
		t.Errorf("drop constraint without schema: %+v", s)
	}
}
