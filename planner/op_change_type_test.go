package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/plans"
)

func TestTypeChangeClassification(t *testing.T) {
	cases := []struct {
		old, new                         string
		coercible, cannotFail, needUsing bool
	}{
		{"character varying(45)", "varchar(50)", true, true, false},
		{"character varying(45)", "varchar(45)", true, true, false},
		{"character varying(45)", "varchar(10)", false, false, false},
		{"character varying(45)", "varchar", true, true, false},
		{"character varying(45)", "text", true, true, false},
		{"text", "varchar", true, true, false},
		{"text", "varchar(100)", false, false, false},
		{"numeric(4,2)", "numeric(6,2)", true, true, false},
		{"numeric(4,2)", "numeric(6,3)", false, false, false},
		{"numeric(4,2)", "numeric(3,2)", false, false, false},
		{"numeric(4,2)", "numeric", true, true, false},
		{"numeric", "numeric(10,2)", false, false, false},
		{"timestamp(3) without time zone", "timestamp(6)", true, true, false},
		{"timestamp(3) without time zone", "timestamp", true, true, false},
		{"timestamp without time zone", "timestamp(3)", false, false, false},
		{"timestamp without time zone", "timestamptz", false, false, false},
		{"time(0) with time zone", "timetz(2)", true, true, false},
		{"bit varying(4)", "varbit(8)", true, true, false},
		{"cidr", "inet", true, true, false},
		{"inet", "cidr", false, false, false},
		{"integer", "bigint", false, true, false},
		{"smallint", "integer", false, true, false},
		{"bigint", "integer", false, false, false},
		{"integer", "numeric", false, true, false},
		{"integer", "numeric(5,0)", false, false, false},
		{"integer", "text", false, true, false},
		{"public.mpaa_rating", "text", false, true, false},
		{"text[]", "varchar[]", false, false, false},
		{"text", "integer", false, false, true},
		{"character varying(10)", "date", false, false, true},
		{"boolean", "integer", false, false, true},
		{"integer", "boolean", false, false, true},
		{"integer", "integer[]", false, false, true},
		{"text", "public.mpaa_rating", false, false, true},
		{"text", "public.citext", false, false, false},
	}
	s := pagila(t)
	for _, c := range cases {
		old, err := typeOfString(c.old)
		if err != nil {
			t.Fatal(err)
		}
		nw, err := typeOfString(c.new)
		if err != nil {
			t.Fatal(err)
		}
		if got := binaryCoercible(old, nw); got != c.coercible {
			t.Errorf("binaryCoercible(%s, %s) = %v, want %v", c.old, c.new, got, c.coercible)
		}
		if got := conversionCannotFail(old, nw); got != c.cannotFail {
			t.Errorf("conversionCannotFail(%s, %s) = %v, want %v", c.old, c.new, got, c.cannotFail)
		}
		if got := needsUsing(s, old, nw); got != c.needUsing {
			t.Errorf("needsUsing(%s, %s) = %v, want %v", c.old, c.new, got, c.needUsing)
		}
	}
}

// The example: a widening that needs no rewrite is one step, and
// the views reading the column are dropped and created again around the
// ALTER in the same transaction (PostgreSQL refuses the naive statement).
func TestChangeTypeBinaryCoercibleWrapsViews(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE film ALTER COLUMN rental_rate TYPE numeric(6,2)", pagila(t))
	if got := shape(p); got != "expand:db" {
		t.Fatalf("shape = %q, want one expand db deploy", got)
	}
	if ids := stepIDs(p); len(ids) != 1 || ids[0] != "E1-alter-type-rental-rate" {
		t.Fatalf("steps = %v", ids)
	}
	s := step(t, p, "E1-alter-type-rental-rate")
	if s.Lock != plans.LockAccessExclusive || s.Rewrite != plans.ImpactNone || !s.Transactional || s.Irreversible {
		t.Errorf("lock %s, rewrite %s, transactional %v, irreversible %v", s.Lock, s.Rewrite, s.Transactional, s.Irreversible)
	}
	if s.Table != "public.film" {
		t.Errorf("table = %q", s.Table)
	}
	stmts := strings.Split(s.SQL, ";\n")
	want := []string{
		`DROP VIEW "public"."film_list"`,
		`DROP VIEW "public"."nicer_but_slower_film_list"`,
		`ALTER TABLE "public"."film" ALTER COLUMN "rental_rate" TYPE numeric(6, 2)`,
		"CREATE VIEW public.nicer_but_slower_film_list AS SELECT",
		"CREATE VIEW public.film_list AS SELECT",
	}
	if len(stmts) != len(want) {
		t.Fatalf("statements:\n%s", s.SQL)
	}
	for i, w := range want {
		if !strings.HasPrefix(stmts[i], w) {
			t.Errorf("statement %d = %q, want prefix %q", i+1, short(stmts[i]), w)
		}
	}
	// The rollback goes back to the old type, views wrapped the same way.
	containsAll(t, "rollback", s.Rollback, `DROP VIEW "public"."film_list"`,
		`ALTER TABLE "public"."film" ALTER COLUMN "rental_rate" TYPE numeric(4,2)`, "CREATE VIEW public.film_list AS")
	if !strings.Contains(strings.Join(p.Warnings, "\n"), "privileges granted on them") {
		t.Errorf("no warning about what recreating the views loses: %v", p.Warnings)
	}
}

// A primary key's type change goes through a copy column, changes the
// referencing column of the partitioned payment table with it, and swaps
// everything in one transaction.
func TestChangeTypePrimaryKeyFollowsForeignKeys(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE rental ALTER COLUMN rental_id TYPE bigint", pagila(t))
	if got, want := shape(p), "expand:db migrate:db migrate:db migrate:app contract:db"; got != want {
		t.Fatalf("shape = %q, want %q", got, want)
	}
	ids := strings.Join(stepIDs(p), " ")
	for _, id := range []string{
		"E1-add-column-rental-id-cutover-new", "E2-sync-trigger-rental-id-cutover-new",
		"E3-add-column-rental-id-cutover-new", "E4-sync-trigger-rental-id-cutover-new",
		"B1-backfill-rental", "B2-backfill-payment",
		"M1-add-not-null-check-rental-id-cutover-new", "M2-validate-not-null-check-rental-id-cutover-new",
		"M3-index-rental-pkey-cutover-new", "C1-swap-rental-id", "C2-validate-payment-p2022-01-rental-id-fkey",
		"C7-validate-payment-p2022-06-rental-id-fkey",
	} {
		if !strings.Contains(ids, id) {
			t.Errorf("no step %s in %s", id, ids)
		}
	}
	// No separate conversion check: the backfill evaluates the cast.
	if strings.Contains(ids, "cast-check") {
		t.Errorf("the conversion is checked by the backfill, not a step of its own: %s", ids)
	}
	containsAll(t, "payment's new column", step(t, p, "E3-add-column-rental-id-cutover-new").SQL,
		`ALTER TABLE "public"."payment" ADD COLUMN "rental_id__cutover_new" bigint`)
	trg := step(t, p, "E2-sync-trigger-rental-id-cutover-new")
	if trg.Lock != plans.LockShareRowExclusive || !hasHazard(trg, plans.HazardCastFailure) {
		t.Errorf("trigger step: lock %s, hazards %v", trg.Lock, trg.Hazards)
	}
	containsAll(t, "trigger", trg.SQL, `NEW."rental_id__cutover_new" := new.rental_id;`, `BEFORE INSERT OR UPDATE OF "rental_id" ON "public"."rental"`)
	bf := step(t, p, "B1-backfill-rental")
	if bf.Backfill == nil || len(bf.Backfill.Set) != 1 || bf.Backfill.Set[0] != `"rental_id__cutover_new" = "rental_id"` {
		t.Errorf("backfill = %+v", bf.Backfill)
	}
	// int -> bigint cannot fail: no cast hazard on the backfill.
	if hasHazard(bf, plans.HazardCastFailure) {
		t.Errorf("integer -> bigint cannot fail, backfill hazards %v", bf.Hazards)
	}
	ix := step(t, p, "M3-index-rental-pkey-cutover-new")
	if ix.Transactional || ix.Lock != plans.LockShareUpdateExclusive || ix.Gate == nil {
		t.Errorf("index copy: transactional %v, lock %s, gate %v", ix.Transactional, ix.Lock, ix.Gate)
	}
	containsAll(t, "index copy", ix.SQL, "CREATE UNIQUE INDEX CONCURRENTLY rental_pkey_cutover_new ON public.rental USING btree (rental_id__cutover_new)")

	sw := step(t, p, "C1-swap-rental-id")
	if !sw.Irreversible || sw.IrreversibleReason == "" || sw.Rollback != "" || sw.Lock != plans.LockAccessExclusive || !sw.Transactional {
		t.Errorf("swap: irreversible %v (%q), lock %s", sw.Irreversible, sw.IrreversibleReason, sw.Lock)
	}
	// Order matters: the foreign keys go before the columns, the primary
	// key comes back before they are re-added, views around it all.
	order := []string{
		`DROP TRIGGER IF EXISTS "cutover_type_rental_id" ON "public"."rental"`,
		`DROP MATERIALIZED VIEW "public"."rental_by_category"`,
		`DROP VIEW "public"."sales_by_film_category"`,
		`ALTER TABLE "public"."payment_p2022_01" DROP CONSTRAINT "payment_p2022_01_rental_id_fkey"`,
		`ALTER TABLE "public"."rental" ALTER COLUMN "rental_id__cutover_new" SET DEFAULT nextval('public.rental_rental_id_seq'::regclass)`,
		`ALTER TABLE "public"."rental" ALTER COLUMN "rental_id__cutover_new" SET NOT NULL`,
		`ALTER TABLE "public"."rental" DROP COLUMN "rental_id"`,
		`ALTER TABLE "public"."rental" RENAME COLUMN "rental_id__cutover_new" TO "rental_id"`,
		`ALTER TABLE public.rental ADD CONSTRAINT rental_pkey PRIMARY KEY USING INDEX rental_pkey_cutover_new`,
		`ALTER TABLE "public"."payment" DROP COLUMN "rental_id"`,
		`CREATE MATERIALIZED VIEW public.rental_by_category AS`,
		`ALTER TABLE public.payment_p2022_01 ADD CONSTRAINT payment_p2022_01_rental_id_fkey FOREIGN KEY (rental_id) REFERENCES public.rental (rental_id) NOT VALID`,
	}
	last := -1
	for _, o := range order {
		i := strings.Index(sw.SQL, o)
		if i < 0 {
			t.Errorf("swap lacks %q", o)
			continue
		}
		if i < last {
			t.Errorf("swap: %q is out of order", o)
		}
		last = i
	}
	if n := strings.Count(sw.SQL, "NOT VALID"); n != 6 {
		t.Errorf("swap re-adds %d foreign keys NOT VALID, want 6", n)
	}
	if !hasHazard(sw, plans.HazardTableScan) {
		t.Errorf("swap recreates a materialized view WITH DATA: want a TABLE_SCAN hazard, got %v", sw.Hazards)
	}
	v := step(t, p, "C2-validate-payment-p2022-01-rental-id-fkey")
	if v.Lock != plans.LockShareUpdateExclusive || v.Table != "public.payment_p2022_01" || v.Rewrite != plans.ImpactScan {
		t.Errorf("validate: lock %s table %s rewrite %s", v.Lock, v.Table, v.Rewrite)
	}
	containsAll(t, "instructions", instructions(p), "fits bigint", "public.payment.rental_id")
	var tables []string
	for _, tf := range p.Facts.Tables {
		tables = append(tables, tf.Name)
	}
	containsAll(t, "facts", strings.Join(tables, " "), "public.rental", "public.payment")
}

// USING with a conversion that may fail: no check step of its own (the
// backfill evaluates the conversion on every row and stops at a row that
// does not convert, which its hazard says); the trigger and the backfill
// use the USING expression, and the trigger fires only on writes of the
// columns USING reads.
func TestChangeTypeUsingCastFailsInTheBackfill(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE customer ALTER COLUMN active TYPE boolean USING active <> 0", pagila(t))
	ids := stepIDs(p)
	if ids[0] != "E1-add-column-active-cutover-new" {
		t.Fatalf("first step = %s, want the new column; steps %v", ids[0], ids)
	}
	if j := strings.Join(ids, " "); strings.Contains(j, "cast-check") {
		t.Errorf("a conversion-check step is planned: %v", ids)
	}
	trg := step(t, p, "E2-sync-trigger-active-cutover-new")
	containsAll(t, "trigger", trg.SQL, `NEW."active__cutover_new" := new.active <> 0;`,
		`CREATE TRIGGER "cutover_type_active" BEFORE INSERT OR UPDATE OF "active" ON "public"."customer" FOR EACH ROW EXECUTE FUNCTION "public"."cutover_type_customer_active"()`)
	bf := step(t, p, "B1-backfill-customer")
	containsAll(t, "backfill", bf.SQL, `SET "active__cutover_new" = active <> 0 WHERE "active__cutover_new" IS NULL AND (active <> 0) IS NOT NULL`)
	var cast string
	for _, h := range bf.Hazards {
		if h.Type == plans.HazardCastFailure {
			cast = h.Message
		}
	}
	containsAll(t, "backfill cast hazard", cast, "stops the backfill at its batch", "names the value", "apply again", "resumes from its checkpoint", "USING expression")
	// active is nullable: no NOT NULL proof.
	if strings.Contains(strings.Join(ids, " "), "not-null") {
		t.Errorf("nullable column gets a NOT NULL sequence: %v", ids)
	}
	if sw := step(t, p, "C1-swap-active").SQL; strings.Contains(sw, "cutover_cast_ok") {
		t.Errorf("swap drops a check function that no longer exists:\n%s", sw)
	}
	// pagila's last_updated (BEFORE UPDATE) fires after cutover's
	// trigger: warned about, as before.
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "last_updated")

	// USING reading another column: the trigger fires on updates of
	// either column.
	p = mustPlan(t, "ALTER TABLE customer ALTER COLUMN active TYPE integer USING active * store_id", pagila(t))
	containsAll(t, "trigger", step(t, p, "E2-sync-trigger-active-cutover-new").SQL, `BEFORE INSERT OR UPDATE OF "active", "store_id" ON`)
}

// A BEFORE UPDATE trigger named before cutover's may change the column on
// an UPDATE that does not set it, where cutover's trigger does not fire:
// the plan warns.
func TestChangeTypeWarnsAboutEarlierUpdateTriggers(t *testing.T) {
	s := schemaOf(t, `CREATE TABLE public.t (id integer PRIMARY KEY, c text, d text);
CREATE FUNCTION public.f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.c := upper(NEW.d); RETURN NEW; END$$;
CREATE TRIGGER a_touch BEFORE UPDATE ON public.t FOR EACH ROW EXECUTE FUNCTION public.f();`)
	p := mustPlan(t, "ALTER TABLE t ALTER COLUMN c TYPE integer USING c::integer", s)
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "BEFORE UPDATE trigger(s) a_touch of public.t may fire on an UPDATE that does not set c")
}

// Names needing quotes, a view, an index, a CHECK constraint, a deferrable
// UNIQUE constraint and an owned sequence all survive the swap.
const typeChangeSchema = `
CREATE SEQUENCE public."Order Items_id_seq" AS integer;
CREATE TABLE public."Order Items" (
    id integer DEFAULT nextval('public."Order Items_id_seq"'::regclass) NOT NULL,
    "Unit Price" numeric(8,2) NOT NULL,
    "user" text,
    qty integer DEFAULT 1 NOT NULL,
    CONSTRAINT price_qty CHECK ("Unit Price" * qty < 1000000)
);
ALTER SEQUENCE public."Order Items_id_seq" OWNED BY public."Order Items".id;
ALTER TABLE ONLY public."Order Items" ADD CONSTRAINT "Order Items_pkey" PRIMARY KEY (id);
ALTER TABLE ONLY public."Order Items" ADD CONSTRAINT "Order Items_user_key" UNIQUE ("user") DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX "Order Items_Unit Price_idx" ON public."Order Items" USING btree ("Unit Price") WHERE qty > 1;
CREATE VIEW public."Big Orders" AS SELECT "Order Items".id, "Order Items"."Unit Price", "Order Items"."user" FROM public."Order Items";
CREATE TABLE public.lines (
    line_id integer GENERATED BY DEFAULT AS IDENTITY NOT NULL,
    item_id integer,
    amount integer
);
ALTER TABLE ONLY public.lines ADD CONSTRAINT lines_pkey PRIMARY KEY (line_id);
ALTER TABLE ONLY public.lines ADD CONSTRAINT lines_item_id_fkey FOREIGN KEY (item_id) REFERENCES public."Order Items"(id);
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER amount_changed BEFORE UPDATE OF amount ON public.lines FOR EACH ROW EXECUTE FUNCTION public.touch();
`

func TestChangeTypeQuotingAndCarriedOverObjects(t *testing.T) {
	s := schemaOf(t, typeChangeSchema)

	p := mustPlan(t, `ALTER TABLE "Order Items" ALTER COLUMN "Unit Price" TYPE numeric(10,3)`, s)
	containsAll(t, "add column", step(t, p, "E1-add-column-unit-price-cutover-new").SQL,
		`ALTER TABLE "public"."Order Items" ADD COLUMN "Unit Price__cutover_new" numeric(10, 3)`)
	containsAll(t, "trigger", step(t, p, "E2-sync-trigger-unit-price-cutover-new").SQL, `BEFORE INSERT OR UPDATE OF "Unit Price" ON "public"."Order Items"`,
		`NEW."Unit Price__cutover_new" := new."Unit Price";`, `"public"."cutover_type_Order Items_Unit Price"()`)
	ids := strings.Join(stepIDs(p), " ")
	for _, id := range []string{"index-order-items-unit-price-idx-cutover-new", "check-price-qty-cutover-new", "validate-price-qty-cutover-new"} {
		if !strings.Contains(ids, id) {
			t.Errorf("no step %s: %s", id, ids)
		}
	}
	ix := step(t, p, "M3-index-order-items-unit-price-idx-cutover-new")
	containsAll(t, "index copy", ix.SQL, `CREATE INDEX CONCURRENTLY "Order Items_Unit Price_idx_cutover_new" ON public."Order Items" USING btree ("Unit Price__cutover_new") WHERE qty > 1`)
	containsAll(t, "check copy", step(t, p, "M4-check-price-qty-cutover-new").SQL,
		`ADD CONSTRAINT price_qty_cutover_new CHECK (("Unit Price__cutover_new" * qty) < 1000000) NOT VALID`)
	containsAll(t, "swap", step(t, p, "C1-swap-unit-price").SQL,
		`DROP VIEW "public"."Big Orders"`,
		`ALTER INDEX "public"."Order Items_Unit Price_idx_cutover_new" RENAME TO "Order Items_Unit Price_idx"`,
		`ALTER TABLE "public"."Order Items" RENAME CONSTRAINT "price_qty_cutover_new" TO "price_qty"`,
		`CREATE VIEW public."Big Orders" AS SELECT`)

	// text -> varchar(100) of a reserved-word column with a deferrable
	// UNIQUE constraint: the constraint comes back USING INDEX, deferrable.
	p = mustPlan(t, `ALTER TABLE "Order Items" ALTER COLUMN "user" TYPE varchar(100)`, s)
	containsAll(t, "trigger", step(t, p, "E2-sync-trigger-user-cutover-new").SQL, `NEW."user__cutover_new" := new."user";`, `UPDATE OF "user" ON "public"."Order Items"`)
	containsAll(t, "swap", step(t, p, "C1-swap-user").SQL,
		`ALTER TABLE "public"."Order Items" RENAME COLUMN "user__cutover_new" TO "user"`,
		`ADD CONSTRAINT "Order Items_user_key" UNIQUE USING INDEX "Order Items_user_key_cutover_new" DEFERRABLE INITIALLY DEFERRED`)

	// The primary key owns its sequence: ownership moves to the new column
	// before the old one is dropped (DROP COLUMN would drop the sequence);
	// lines.item_id follows, and its foreign key comes back NOT VALID.
	p = mustPlan(t, `ALTER TABLE "Order Items" ALTER COLUMN id TYPE bigint`, s)
	sw := step(t, p, "C1-swap-id").SQL
	owned := strings.Index(sw, `ALTER SEQUENCE "public"."Order Items_id_seq" OWNED BY "public"."Order Items"."id__cutover_new"`)
	drop := strings.Index(sw, `ALTER TABLE "public"."Order Items" DROP COLUMN "id"`)
	if owned < 0 || drop < 0 || owned > drop {
		t.Errorf("sequence ownership must move before DROP COLUMN:\n%s", sw)
	}
	containsAll(t, "swap", sw, `ALTER TABLE "public"."lines" DROP CONSTRAINT "lines_item_id_fkey"`,
		`ALTER TABLE "public"."lines" RENAME COLUMN "item_id__cutover_new" TO "item_id"`,
		`ADD CONSTRAINT lines_item_id_fkey FOREIGN KEY (item_id) REFERENCES public."Order Items" (id) NOT VALID`)
	step(t, p, "C2-validate-lines-item-id-fkey")

	// An identity column gets a new identity continuing the old sequence,
	// renamed to the old sequence's name.
	p = mustPlan(t, `ALTER TABLE lines ALTER COLUMN line_id TYPE bigint`, s)
	containsAll(t, "swap", step(t, p, "C1-swap-line-id").SQL,
		`ALTER COLUMN "line_id__cutover_new" ADD GENERATED BY DEFAULT AS IDENTITY (SEQUENCE NAME "public"."lines_line_id_seq_cutover_new")`,
		`pg_catalog.setval('"public"."lines_line_id_seq_cutover_new"'::regclass, pg_catalog.nextval('"public"."lines_line_id_seq"'::regclass), false)`,
		`ALTER SEQUENCE "public"."lines_line_id_seq_cutover_new" RENAME TO "lines_line_id_seq"`)

	// A trigger depending on the column is dropped and created again.
	p = mustPlan(t, `ALTER TABLE lines ALTER COLUMN amount TYPE bigint`, s)
	sw = step(t, p, "C1-swap-amount").SQL
	containsAll(t, "swap", sw, `DROP TRIGGER "amount_changed" ON "public"."lines"`, "CREATE TRIGGER amount_changed BEFORE UPDATE OF amount ON public.lines")
}

func TestChangeTypeWithoutSchema(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE t ALTER COLUMN c TYPE bigint", nil)
	if got, want := shape(p), "expand:db migrate:db migrate:app contract:db"; got != want {
		t.Fatalf("shape = %q, want %q", got, want)
	}
	// Without the old type, the conversion may fail: the backfill says so.
	if !hasHazard(step(t, p, "B1-backfill-t"), plans.HazardCastFailure) {
		t.Errorf("backfill without a schema: want a CAST_MAY_FAIL hazard")
	}
	containsAll(t, "assumptions", strings.Join(p.Assumptions, "\n"), "not binary-coercible", "no index, constraint")
	containsAll(t, "swap", step(t, p, "C1-swap-c").SQL, `ALTER TABLE "public"."t" DROP COLUMN "c"`, `RENAME COLUMN "c__cutover_new" TO "c"`)
}

func TestChangeTypeTimestampToTimestamptzWarns(t *testing.T) {
	s := schemaOf(t, "CREATE TABLE public.ev (id integer NOT NULL, at timestamp without time zone);")
	p := mustPlan(t, "ALTER TABLE ev ALTER COLUMN at TYPE timestamptz", s)
	containsAll(t, "warnings", strings.Join(p.Warnings, "\n"), "TimeZone", "AT TIME ZONE 'UTC'")
	step(t, p, "E2-sync-trigger-at-cutover-new")
}

func TestChangeTypeInvalid(t *testing.T) {
	s := pagila(t)
	cases := []struct {
		sql  string
		want []string
	}{
		{"ALTER TABLE film ALTER COLUMN nope TYPE text", []string{"column nope does not exist"}},
		{"ALTER TABLE nope ALTER COLUMN c TYPE text", []string{"table public.nope does not exist"}},
		{"ALTER TABLE film ALTER COLUMN title TYPE no_such_type", []string{"type public.no_such_type does not exist"}},
		{"ALTER TABLE film ALTER COLUMN title TYPE text", []string{"already has type text"}},
		{"ALTER TABLE film ALTER COLUMN title TYPE integer", []string{"cannot be cast automatically", "USING"}},
		{"ALTER TABLE film ALTER COLUMN length TYPE integer USING lenght * 60", []string{"USING expression refers to column lenght"}},
		{"ALTER TABLE payment_p2022_01 ALTER COLUMN rental_id TYPE bigint", []string{"inherited from public.payment"}},
		{"ALTER TABLE payment ALTER COLUMN payment_date TYPE timestamp", []string{"partition key"}},
		{"ALTER TABLE film ALTER COLUMN length TYPE integer USING (SELECT 1)", []string{"subquery"}},
	}
	for _, c := range cases {
		wantInvalid(t, c.sql, s, c.want...)
	}
	// The copy column's name is taken.
	taken := schemaOf(t, "CREATE TABLE public.t (c integer, c__cutover_new bigint);")
	wantInvalid(t, "ALTER TABLE t ALTER COLUMN c TYPE bigint", taken, "c__cutover_new")
	// A generated column computed from the column.
	gen := schemaOf(t, "CREATE TABLE public.t (a integer, b integer GENERATED ALWAYS AS (a * 2) STORED);")
	wantInvalid(t, "ALTER TABLE t ALTER COLUMN a TYPE bigint", gen, "generated column b")
	// Types known only because a column already uses them are accepted.
	ext := schemaOf(t, "CREATE TABLE public.t (a public.citext, b text);")
	mustPlan(t, "ALTER TABLE t ALTER COLUMN b TYPE public.citext", ext)
}

// The rollback of a widening is a narrowing: a rewrite under ACCESS
// EXCLUSIVE that fails on values that no longer fit. The step says so.
func TestChangeTypeWideningRollbackHazard(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE film ALTER COLUMN rental_rate TYPE numeric(6,2)", pagila(t))
	st := step(t, p, "E1-alter-type-rental-rate")
	var rollback []string
	for _, h := range st.Hazards {
		if strings.HasPrefix(h.Message, "rollback:") {
			rollback = append(rollback, string(h.Type)+" "+h.Message)
		}
	}
	got := strings.Join(rollback, "\n")
	containsAll(t, "rollback hazards", got, "TABLE_REWRITE rollback: changing rental_rate back to numeric(4,2)", "ACCESS EXCLUSIVE",
		"CAST_MAY_FAIL rollback: it fails if a value written since this step does not fit numeric(4,2)")
	// A widened varchar: the same.
	p = mustPlan(t, `ALTER TABLE "Order Items" ALTER COLUMN note TYPE varchar(40)`, schemaOf(t, quotingSchema))
	st = step(t, p, "E1-alter-type-note")
	if st.Rewrite != plans.ImpactNone || !hasHazard(st, plans.HazardTableRewrite) || !hasHazard(st, plans.HazardCastFailure) {
		t.Errorf("widening varchar: %+v", st)
	}
	containsAll(t, "hazards", st.Hazards[len(st.Hazards)-1].Message, "character varying(20)")
}

// USING col::newtype is what PostgreSQL itself asks for when there is no
// assignment cast (text to integer): the planner keeps it rather than
// treating it as no USING and then refusing the change for lack of one.
func TestChangeTypeUsingPlainCastWithoutAssignmentCast(t *testing.T) {
	s := schemaOf(t, "CREATE TABLE public.items (id bigint PRIMARY KEY, amount text NOT NULL);")
	p := mustPlan(t, "ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer", s)
	found := false
	for _, r := range p.Steps() {
		if b := r.Step.Backfill; b != nil {
			found = true
			if len(b.Set) != 1 || !strings.Contains(b.Set[0], "amount::int") {
				t.Errorf("backfill set %v, want the USING cast", b.Set)
			}
		}
	}
	if !found {
		t.Error("no backfill step")
	}
	// Where an assignment cast exists, the same USING stays "no USING".
	w := schemaOf(t, "CREATE TABLE public.t (a integer);")
	mustPlan(t, "ALTER TABLE t ALTER COLUMN a TYPE bigint USING a::bigint", w)
}
