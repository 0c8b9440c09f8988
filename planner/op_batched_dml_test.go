package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

func TestBatchedUpdate(t *testing.T) {
	p := mustPlan(t, "UPDATE film SET rental_rate = 1.99, special_features = NULL WHERE rating = 'G'", pagila(t))
	if got := shape(p); got != "migrate:db" {
		t.Errorf("shape = %q", got)
	}
	s := step(t, p, "B1-update-film")
	need := `(rating = 'G') AND (("rental_rate" IS DISTINCT FROM (1.99)) OR ("special_features" IS DISTINCT FROM (NULL)))`
	if s.SQL != `UPDATE "public"."film" SET "rental_rate" = 1.99, "special_features" = NULL WHERE `+need {
		t.Errorf("sql = %s", s.SQL)
	}
	bf := s.Backfill
	if bf == nil || bf.Where != need || bf.Delete || strings.Join(bf.Key, ",") != `"film_id"` || len(bf.Set) != 2 {
		t.Fatalf("backfill: %+v", bf)
	}
	if strings.Join(bf.Triggers, ",") != "film_fulltext_trigger,last_updated" || !hasHazard(s, plans.HazardFiresTriggers) {
		t.Errorf("triggers: %v", bf.Triggers)
	}
	if s.Gate == nil || s.Gate.SQL != `SELECT count(*) FROM "public"."film" WHERE `+need {
		t.Errorf("gate: %+v", s.Gate)
	}
	if !s.Irreversible || s.Lock != plans.LockRowExclusive || s.Rewrite != plans.ImpactBatched || !s.Transactional {
		t.Errorf("step: %+v", s)
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "fires its UPDATE trigger(s) film_fulltext_trigger, last_updated")
}

func TestBatchedUpdateAliasAndSubquery(t *testing.T) {
	p := mustPlan(t, `UPDATE customer AS c SET active = 0
WHERE c.store_id = 2 AND NOT EXISTS (SELECT 1 FROM rental r WHERE r.customer_id = c.customer_id)`, pagila(t))
	s := step(t, p, "B1-update-customer")
	containsAll(t, "where", s.Backfill.Where, "customer.store_id = 2", "r.customer_id = customer.customer_id", `"active" IS DISTINCT FROM (0)`)
	if strings.Contains(s.SQL, "c.") {
		t.Errorf("alias left in %s", s.SQL)
	}
}

func TestBatchedDelete(t *testing.T) {
	p := mustPlan(t, "DELETE FROM customer WHERE activebool = false", pagila(t))
	s := step(t, p, "B1-delete-customer")
	if s.SQL != `DELETE FROM "public"."customer" WHERE activebool = false` || !s.Backfill.Delete || s.Backfill.Where != "activebool = false" ||
		len(s.Backfill.Set) != 0 || !hasHazard(s, plans.HazardDataLoss) || !s.Irreversible {
		t.Errorf("delete: %+v", s)
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "still referenced from", "public.payment_p2022_01 (payment_p2022_01_customer_id_fkey)", "public.rental (rental_customer_id_fkey)")

	cascade := schemaOf(t, `
CREATE TABLE public.a (id integer NOT NULL);
ALTER TABLE ONLY public.a ADD CONSTRAINT a_pkey PRIMARY KEY (id);
CREATE TABLE public.b (a_id integer);
ALTER TABLE ONLY public.b ADD CONSTRAINT b_a_id_fkey FOREIGN KEY (a_id) REFERENCES public.a(id) ON DELETE CASCADE;
CREATE TABLE public.c (a_id integer);
ALTER TABLE ONLY public.c ADD CONSTRAINT c_a_id_fkey FOREIGN KEY (a_id) REFERENCES public.a(id) ON DELETE SET NULL;
`)
	p = mustPlan(t, "DELETE FROM a WHERE id > 10", cascade)
	s = step(t, p, "B1-delete-a")
	var msgs []string
	for _, h := range s.Hazards {
		msgs = append(msgs, string(h.Type)+": "+h.Message)
	}
	containsAll(t, "hazards", strings.Join(msgs, "\n"), "DATA_LOSS: ON DELETE CASCADE also deletes the referencing rows of public.b", "HEAVY_WRITE: ON DELETE SET NULL also updates the referencing rows of public.c")
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "also deletes the rows of public.b")

	p = mustPlan(t, "DELETE FROM b", cascade)
	containsAll(t, "no key", strings.Join(p.Warnings, "\n"), "without WHERE", "has no primary key")
	if s := step(t, p, "B1-delete-b"); s.Backfill.Where != "true" || len(s.Backfill.Key) != 0 {
		t.Errorf("delete all: %+v", s.Backfill)
	}
}

// A user's UPDATE is never merged with another backfill of the table: its
// WHERE applies to its own assignments only.
func TestBatchedUpdatesStayApart(t *testing.T) {
	p := mustPlan(t, "UPDATE film SET length = 1 WHERE length IS NULL; UPDATE film SET rating = 'G' WHERE rating IS NULL", pagila(t))
	if got := strings.Join(stepIDs(p), " "); got != "B1-update-film B2-update-film" {
		t.Errorf("steps = %s", got)
	}
}

func TestBatchedDMLQuoting(t *testing.T) {
	s := schemaOf(t, quotingSchema+`CREATE TABLE public.j (id integer NOT NULL, doc json);
ALTER TABLE ONLY public.j ADD CONSTRAINT j_pkey PRIMARY KEY (id);`)
	p := mustPlan(t, `UPDATE "Order Items" SET "user" = 'x' WHERE "Unit Price" > 10`, s)
	containsAll(t, "update", step(t, p, "B1-update-order-items").SQL,
		`UPDATE "public"."Order Items" SET "user" = 'x' WHERE ("Unit Price" > 10) AND ("user" IS DISTINCT FROM ('x'))`)
	p = mustPlan(t, `DELETE FROM "Order Items" WHERE "user" = 'x'`, s)
	containsAll(t, "delete", step(t, p, "B1-delete-order-items").SQL, `DELETE FROM "public"."Order Items" WHERE "user" = 'x'`)
	// json has no equality operator: the text is compared.
	p = mustPlan(t, `UPDATE j SET doc = '{"a": 1}'`, s)
	containsAll(t, "json", step(t, p, "B1-update-j").Backfill.Where, `"doc"::text IS DISTINCT FROM (('{"a": 1}')::json)::text`)
}

func TestBatchedDMLWithoutSchema(t *testing.T) {
	p := mustPlan(t, "DELETE FROM t WHERE a < 5", nil)
	if s := step(t, p, "B1-delete-t"); len(s.Backfill.Key) != 0 {
		t.Errorf("key: %v", s.Backfill.Key)
	}
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "primary key usable for keyset batching", "ON DELETE CASCADE")
}

func TestBatchedDMLRefused(t *testing.T) {
	s := pagila(t)
	cases := []struct{ sql, want string }{
		{"UPDATE film SET length = length + 1", "reads length, which the statement assigns"},
		{"UPDATE film SET length = rental_duration, rental_duration = length", "reads"},
		{"UPDATE film SET last_update = now() WHERE film_id < 10", "now()"},
		{"UPDATE film SET last_update = CURRENT_TIMESTAMP", "current date or time"},
		{"UPDATE film SET description = gen_random_uuid()::text", "gen_random_uuid()"},
		{"UPDATE film SET length = DEFAULT", "DEFAULT"},
		{"UPDATE film SET (length, rating) = (1, 'G')", "one assignment per column"},
		{"UPDATE film SET special_features[1] = 'x'", "array elements or fields"},
		{"UPDATE film f SET length = 1 FROM language l WHERE l.language_id = f.language_id", "correlated subquery"},
		{"UPDATE film SET length = 1 RETURNING film_id", "RETURNING"},
		{"WITH x AS (SELECT 1) UPDATE film SET length = 1", "WITH"},
		{"DELETE FROM film USING language WHERE language.language_id = film.language_id", "WHERE EXISTS"},
		{"DELETE FROM ONLY film WHERE length = 1", "ONLY"},
	}
	for _, c := range cases {
		wantUnsupported(t, c.sql, s, c.want)
	}
	wantInvalid(t, "UPDATE nope SET a = 1", s, "table public.nope does not exist")
	wantInvalid(t, "UPDATE film SET nope = 1", s, "column nope does not exist")
	wantInvalid(t, "DELETE FROM film WHERE nope = 1", s, "column nope does not exist")
	wantUnsupported(t, "UPDATE film_list SET title = 'x'", s, "is a view")
}
