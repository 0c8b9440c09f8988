package planner

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

// ids returns the plan's step ids, space separated.
func ids(p *plans.Plan) string { return strings.Join(stepIDs(p), " ") }

// before reports whether step a comes before step b in the plan.
func before(t *testing.T, p *plans.Plan, a, b string) bool {
	t.Helper()
	pos := map[string]int{}
	for i, id := range stepIDs(p) {
		pos[id] = i
	}
	ia, oka := pos[a]
	ib, okb := pos[b]
	if !oka || !okb {
		t.Fatalf("steps %s / %s not in plan: %s", a, b, ids(p))
	}
	return ia < ib
}

// Views dropped earlier in the input no longer hold the table.
func TestMultiDropViewsThenTable(t *testing.T) {
	p := mustPlan(t, "DROP VIEW actor_info; DROP VIEW film_list; DROP VIEW nicer_but_slower_film_list; DROP TABLE film_actor", pagila(t))
	want := "C1-drop-view-actor-info C2-drop-view-film-list C3-drop-view-nicer-but-slower-film-list C4-rename-aside-film-actor F1-drop-table-film-actor"
	if got := ids(p); got != want {
		t.Fatalf("steps:\n got  %s\n want %s", got, want)
	}
	// Without the views the statement alone is still refused.
	wantInvalid(t, "DROP TABLE film_actor", pagila(t), "view public.actor_info")
}

// A column added earlier in the input exists for the statements after it.
func TestMultiAddColumnThenSetNotNull(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE customer ADD COLUMN x int; ALTER TABLE customer ALTER COLUMN x SET NOT NULL", pagila(t))
	want := "E1-add-column-x E2-check-no-nulls-x E3-add-not-null-check-x M1-validate-not-null-check-x M2-set-not-null-x"
	if got := ids(p); got != want {
		t.Fatalf("steps:\n got  %s\n want %s", got, want)
	}
	// Every existing row holds NULL: the gate stops the plan, and a
	// warning says why before it is run.
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "added without a default earlier in this input")

	// With a default there is no NULL, and no such warning; in one ALTER
	// TABLE too.
	for _, sql := range []string{
		"ALTER TABLE customer ADD COLUMN nickname text DEFAULT ''; ALTER TABLE customer ALTER COLUMN nickname SET NOT NULL",
		"ALTER TABLE customer ADD COLUMN nickname text DEFAULT '', ALTER COLUMN nickname SET NOT NULL",
	} {
		p = mustPlan(t, sql, pagila(t))
		if got := ids(p); got != "E1-add-column-nickname E2-check-no-nulls-nickname E3-add-not-null-check-nickname M1-validate-not-null-check-nickname M2-set-not-null-nickname" {
			t.Errorf("%s: steps %s", sql, got)
		}
		if strings.Contains(strings.Join(p.Warnings, "\n"), "added without a default") {
			t.Errorf("%s: warns of NULLs", sql)
		}
	}

	// A volatile default is backfilled: the NULL check waits for it.
	p = mustPlan(t, "ALTER TABLE customer ADD COLUMN token uuid DEFAULT gen_random_uuid(); ALTER TABLE customer ALTER COLUMN token SET NOT NULL", pagila(t))
	if !before(t, p, "B1-backfill-customer", "M1-check-no-nulls-token") || !before(t, p, "M1-check-no-nulls-token", "M2-add-not-null-check-token") {
		t.Errorf("the NULL check must follow the backfill: %s", ids(p))
	}
}

// A constraint dropped earlier in the input frees its name.
func TestMultiDropThenAddConstraint(t *testing.T) {
	p := mustPlan(t, `ALTER TABLE film_category DROP CONSTRAINT film_category_pkey;
ALTER TABLE film_category ADD CONSTRAINT film_category_pkey PRIMARY KEY (film_id, category_id)`, pagila(t))
	want := "E1-drop-constraint-film-category-pkey E2-check-duplicates-film-id-category-id E3-create-index-film-category-pkey E4-add-constraint-film-category-pkey"
	if got := ids(p); got != want {
		t.Fatalf("steps:\n got  %s\n want %s", got, want)
	}
	wantInvalid(t, "ALTER TABLE film_category ADD CONSTRAINT film_category_pkey PRIMARY KEY (film_id, category_id)", pagila(t), "already has a constraint named film_category_pkey")

	s := schemaOf(t, `CREATE TABLE public.t (a integer, CONSTRAINT t_a_check CHECK (a > 0));`)
	p = mustPlan(t, "ALTER TABLE t DROP CONSTRAINT t_a_check; ALTER TABLE t ADD CONSTRAINT t_a_check CHECK (a > 1)", s)
	if got := ids(p); got != "E1-drop-constraint-t-a-check E2-check-violations-t-a-check E3-add-check-t-a-check M1-validate-t-a-check" {
		t.Fatalf("steps %s", got)
	}
	// An unnamed check gets the freed name, as the naive statements would
	// give it.
	p = mustPlan(t, "ALTER TABLE t DROP CONSTRAINT t_a_check; ALTER TABLE t ADD CHECK (a > 1)", s)
	step(t, p, "E3-add-check-t-a-check")
}

// Changes to a table created earlier in the input run as written: the table
// is empty and nothing uses it yet.
func TestMultiNewTable(t *testing.T) {
	p := mustPlan(t, `CREATE TABLE n (id int, a text, film_id int);
CREATE INDEX ON n (a);
ALTER TABLE n ADD COLUMN b int NOT NULL;
ALTER TABLE n ALTER COLUMN a SET NOT NULL;
ALTER TABLE n ADD PRIMARY KEY (id);
ALTER TABLE n ADD CHECK (b > 0);
ALTER TABLE n ADD UNIQUE (a);
ALTER TABLE n ADD FOREIGN KEY (film_id) REFERENCES film (film_id)`, pagila(t))
	want := "E1-create-table-n E2-create-index-n-a-idx E3-add-column-b E4-set-not-null-a E5-add-constraint-n-pkey E6-add-constraint-n-b-check E7-add-constraint-n-a-key E8-create-index-n-film-id-idx E9-add-foreign-key-n-film-id-fkey"
	if got := ids(p); got != want {
		t.Fatalf("steps:\n got  %s\n want %s", got, want)
	}
	if got := shape(p); got != "expand:db" {
		t.Errorf("shape %q", got)
	}
	for sid, sql := range map[string]string{
		"E2-create-index-n-a-idx":           `CREATE INDEX n_a_idx ON public.n USING btree (a)`,
		"E3-add-column-b":                   `ALTER TABLE "public"."n" ADD COLUMN "b" int NOT NULL`,
		"E4-set-not-null-a":                 `ALTER TABLE "public"."n" ALTER COLUMN "a" SET NOT NULL`,
		"E5-add-constraint-n-pkey":          `ALTER TABLE public.n ADD CONSTRAINT n_pkey PRIMARY KEY (id)`,
		"E6-add-constraint-n-b-check":       `ALTER TABLE public.n ADD CONSTRAINT n_b_check CHECK (b > 0)`,
		"E7-add-constraint-n-a-key":         `ALTER TABLE public.n ADD CONSTRAINT n_a_key UNIQUE (a)`,
		"E9-add-foreign-key-n-film-id-fkey": `ALTER TABLE "public"."n" ADD CONSTRAINT "n_film_id_fkey" FOREIGN KEY ("film_id") REFERENCES "public"."film" ("film_id")`,
	} {
		st := step(t, p, sid)
		if st.SQL != sql {
			t.Errorf("%s:\n got  %s\n want %s", sid, st.SQL, sql)
		}
		if !st.Transactional || st.Rewrite != plans.ImpactNone || st.Gate != nil || st.Irreversible || st.Table != "public.n" {
			t.Errorf("%s: %+v", sid, st)
		}
	}
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "public.n is created by this plan", "assumes nothing else writes public.n")
	for _, tf := range p.Facts.Tables {
		if tf.Name == "public.n" && (tf.Rows != 0 || tf.Bytes != 0) {
			t.Errorf("facts of the new table: %+v", tf)
		}
	}

	// Without a schema too, and the table keeps being new after a rename.
	p = mustPlan(t, "CREATE TABLE n (id int, a text); ALTER TABLE n RENAME TO m; CREATE INDEX ON m (a); ALTER TABLE m ALTER COLUMN a TYPE varchar(10); ALTER TABLE m RENAME COLUMN a TO b", nil)
	if got := ids(p); got != "E1-create-table-n E2-rename-table-m E3-create-index-m-a-idx E4-alter-type-a E5-rename-column-b" {
		t.Errorf("steps %s", got)
	}
	// With a schema, the type change's rollback is known.
	p = mustPlan(t, "CREATE TABLE n (id int, a text); ALTER TABLE n ALTER COLUMN a TYPE varchar(10) USING left(a, 10)", pagila(t))
	if st := step(t, p, "E2-alter-type-a"); st.SQL != `ALTER TABLE "public"."n" ALTER COLUMN "a" TYPE varchar(10) USING "left"(a, 10)` ||
		st.Rollback != `ALTER TABLE "public"."n" ALTER COLUMN "a" TYPE text USING "a"::text` {
		t.Errorf("type change on the new table: %s / %s", st.SQL, st.Rollback)
	}
	// A partition of an existing table is not new: rows written to the
	// parent land in it.
	p = mustPlan(t, "CREATE TABLE payment_p2022_08 PARTITION OF payment FOR VALUES FROM ('2022-08-01') TO ('2022-09-01'); CREATE INDEX ON payment_p2022_08 (amount)", pagila(t))
	if st := step(t, p, "E2-create-index-payment-p2022-08-amount-idx"); st.Transactional {
		t.Errorf("index on a new partition of a used table must be built concurrently: %s", st.SQL)
	}
}

// A key added earlier in the input can be referenced; the foreign key waits
// for it.
func TestMultiPrimaryKeyThenForeignKey(t *testing.T) {
	s := schemaOf(t, `CREATE TABLE public.a (id integer NOT NULL, n integer);
CREATE TABLE public.b (a_id integer, a_n integer);`)
	p := mustPlan(t, "ALTER TABLE a ADD PRIMARY KEY (id); ALTER TABLE b ADD FOREIGN KEY (a_id) REFERENCES a (id)", s)
	want := "E1-check-duplicates-id E2-create-index-a-pkey E3-add-constraint-a-pkey E4-create-index-b-a-id-idx E5-check-orphans-b-a-id-fkey E6-add-foreign-key-b-a-id-fkey M1-validate-b-a-id-fkey"
	if got := ids(p); got != want {
		t.Fatalf("steps:\n got  %s\n want %s", got, want)
	}
	wantInvalid(t, "ALTER TABLE b ADD FOREIGN KEY (a_id) REFERENCES a (id)", s, "no PRIMARY KEY or UNIQUE constraint")

	// A key on a nullable column is added in the migrate phase, after the
	// NOT NULL sequence: the foreign key follows it there.
	p = mustPlan(t, "ALTER TABLE a ADD PRIMARY KEY (n); ALTER TABLE b ADD FOREIGN KEY (a_n) REFERENCES a (n)", s)
	if !before(t, p, "M5-add-constraint-a-pkey", "M8-add-foreign-key-b-a-n-fkey") {
		t.Errorf("the foreign key must follow the key: %s", ids(p))
	}
}

// A column renamed earlier in the input has its new name for good only
// after the contract phase's swap; what follows on it goes after the swap.
func TestMultiRenameColumnThenIndex(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE customer RENAME COLUMN email TO mail; CREATE INDEX ON customer (mail)", pagila(t))
	want := "E1-add-column-mail E2-sync-trigger-mail B1-backfill-customer C1-swap-mail C2-create-index-customer-mail-idx"
	if got := ids(p); got != want {
		t.Fatalf("steps:\n got  %s\n want %s", got, want)
	}
	if st := step(t, p, "C2-create-index-customer-mail-idx"); st.SQL != "CREATE INDEX CONCURRENTLY customer_mail_idx ON public.customer USING btree (mail)" || st.Transactional {
		t.Errorf("index: %+v", st)
	}
	// The old name is gone for the statements after the rename.
	wantInvalid(t, "ALTER TABLE customer RENAME COLUMN email TO mail; CREATE INDEX ON customer (email)", pagila(t), "column email does not exist")
	// What cannot follow a swap is refused, not half planned.
	wantUnsupported(t, "ALTER TABLE customer RENAME COLUMN email TO mail; ALTER TABLE customer DROP COLUMN mail", pagila(t), "renamed from email earlier in this input")
	wantUnsupported(t, "ALTER TABLE customer RENAME COLUMN email TO mail; ALTER TABLE customer ALTER COLUMN mail TYPE varchar(300)", pagila(t), "plan of its own")
}

// The type change and SET NOT NULL of one column: the NOT NULL sequence
// runs on the new column, after the swap.
func TestMultiChangeTypeThenSetNotNull(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE film ALTER COLUMN length TYPE integer; ALTER TABLE film ALTER COLUMN length SET NOT NULL", pagila(t))
	for _, id := range []string{"C2-check-no-nulls-length", "C3-add-not-null-check-length", "C4-validate-not-null-check-length", "C5-set-not-null-length"} {
		if !before(t, p, "C1-swap-length", id) {
			t.Errorf("%s must follow the swap: %s", id, ids(p))
		}
	}
	// A binary-coercible change is done in the expand phase: the NOT NULL
	// sequence is as usual.
	p = mustPlan(t, "ALTER TABLE film ALTER COLUMN rental_rate TYPE numeric(6,2); ALTER TABLE film ALTER COLUMN rental_rate SET DEFAULT 1", pagila(t))
	if got := ids(p); got != "E1-alter-type-rental-rate E2-set-default-rental-rate" {
		t.Errorf("steps %s", got)
	}
}

// A name removed only in the contract phase cannot be taken by a step that
// runs earlier: such input is refused with the reason.
func TestMultiNameFreedTooLate(t *testing.T) {
	s := pagila(t)
	wantUnsupported(t, "DROP INDEX idx_title; CREATE INDEX idx_title ON film (title)", s, "public.idx_title is still in use until the contract phase", "index public.idx_title is dropped in the contract phase")
	wantUnsupported(t, "ALTER TABLE customer DROP COLUMN email; ALTER TABLE customer ADD COLUMN email text", s, "public.customer.email is still in use")
	wantUnsupported(t, "DROP VIEW staff_list; CREATE VIEW staff_list AS SELECT 1", s, "public.staff_list is still in use")
	wantUnsupported(t, "ALTER TABLE language RENAME TO languages; CREATE TABLE language (id int)", s, "compatibility view")
	wantUnsupported(t, "DROP TABLE film_actor CASCADE; CREATE TABLE film_actor (id int)", s, "renames it aside")
	// A removal done in the expand phase frees the name at once.
	mustPlan(t, "ALTER INDEX idx_title RENAME TO film_title_idx; CREATE INDEX idx_title ON film (title)", s)
}

// Statements after a drop see it; the caller's schema never changes.
func TestMultiSchemaEvolvesButIsNotModified(t *testing.T) {
	s := pagila(t)
	frozen := s.Clone()
	wantInvalid(t, "DROP TABLE film_actor CASCADE; ALTER TABLE film_actor ADD COLUMN x int", s, "table public.film_actor does not exist")
	wantInvalid(t, "ALTER TABLE film RENAME TO movie; ALTER TABLE film ADD COLUMN x int", s, "table public.film does not exist")
	mustPlan(t, "ALTER TABLE language RENAME TO languages; ALTER TABLE languages ADD COLUMN x int", s)
	mustPlan(t, "ALTER TABLE customer ADD COLUMN x int, ADD COLUMN y int; ALTER TABLE customer DROP COLUMN x", s)
	mustPlan(t, "ALTER TYPE mpaa_rating ADD VALUE 'NR'; ALTER TYPE mpaa_rating ADD VALUE 'X' AFTER 'NR'", s)
	for _, sql := range []string{
		"DROP VIEW actor_info; DROP VIEW film_list; DROP VIEW nicer_but_slower_film_list; DROP TABLE film_actor",
		"CREATE TABLE n (id int PRIMARY KEY); CREATE INDEX ON n (id); ALTER TABLE film ADD COLUMN n_id int REFERENCES n",
		"ALTER TABLE customer RENAME COLUMN email TO mail; CREATE INDEX ON customer (mail)",
		"ALTER TABLE film ALTER COLUMN length TYPE integer; ALTER TABLE film ALTER COLUMN length SET NOT NULL",
	} {
		mustPlan(t, sql, s)
	}
	if !reflect.DeepEqual(s, frozen) {
		t.Fatal("planning changed the caller's schema")
	}
	// The plan's facts describe the tables before the change.
	p := mustPlan(t, "ALTER TABLE film_actor DROP CONSTRAINT film_actor_pkey; ALTER TABLE film_actor ADD PRIMARY KEY (film_id, actor_id)", s)
	for _, tf := range p.Facts.Tables {
		if tf.Name == "public.film_actor" && strings.Join(tf.BatchKey, ",") != "actor_id,film_id" {
			t.Errorf("facts of film_actor: %+v", tf)
		}
	}
}
