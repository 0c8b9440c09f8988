package planner

import (
	"strings"
	"testing"
)

// The rename's sync triggers: the main one (INSERT OR UPDATE) and the
// back-copy one (UPDATE OF the new column) both call the function only
// when NEW leaves the pair unequal, which the backfill's SET new = old
// never does; the back-copy trigger sorts first. Rollback and swap drop
// both.
func TestRenameColumnSyncTriggers(t *testing.T) {
	p := mustPlan(t, "ALTER TABLE customer RENAME COLUMN email TO email_address", pagila(t))
	assertParses(t, p)
	trg := step(t, p, "E2-sync-trigger-email-address")
	back := `CREATE TRIGGER "cutover_back_email_email_address" BEFORE UPDATE OF "email_address" ON "public"."customer" FOR EACH ROW WHEN (NEW."email_address" IS DISTINCT FROM NEW."email") EXECUTE FUNCTION "public"."cutover_sync_customer_email_email_address"('email_address')`
	main := `CREATE TRIGGER "cutover_sync_email_email_address" BEFORE INSERT OR UPDATE ON "public"."customer" FOR EACH ROW WHEN (NEW."email_address" IS DISTINCT FROM NEW."email") EXECUTE FUNCTION "public"."cutover_sync_customer_email_email_address"()`
	containsAll(t, "trigger step", trg.SQL, back, main,
		`IF TG_ARGV[0] = 'email_address' THEN NEW."email" := NEW."email_address"; END IF;`)
	if backTriggerName(syncPair{from: "email", to: "email_address"}) >= "cutover_sync_email_email_address" {
		t.Errorf("the back-copy trigger must sort before the main one to fire first")
	}
	drops := []string{
		`DROP TRIGGER IF EXISTS "cutover_sync_email_email_address" ON "public"."customer"`,
		`DROP TRIGGER IF EXISTS "cutover_back_email_email_address" ON "public"."customer"`,
		`DROP FUNCTION IF EXISTS "public"."cutover_sync_customer_email_email_address"()`,
	}
	containsAll(t, "rollback", trg.Rollback, drops...)
	containsAll(t, "swap", step(t, p, "C1-swap-email-address").SQL, drops...)
	bf := step(t, p, "B1-backfill-customer")
	if bf.Backfill == nil || strings.Join(bf.Backfill.Set, ", ") != `"email_address" = "email"` {
		t.Errorf("backfill sets %v, want only the new column (so the back-copy trigger's WHEN is false)", bf.Backfill)
	}
}

// One-way pairs get a column list instead of WHEN; a two-way pair in the
// same trigger turns it into the WHEN form for every pair.
func TestSyncTriggerSQLForms(t *testing.T) {
	tab := relName{"public", "t"}
	oneWay := syncPair{from: "a", to: "a_new", forward: "new.a::integer", sources: []string{"a", "b"}}
	got := syncTriggerSQL("trg", tab, "f", []syncPair{oneWay})
	if want := `CREATE TRIGGER "trg" BEFORE INSERT OR UPDATE OF "a", "b" ON "public"."t" FOR EACH ROW EXECUTE FUNCTION f()`; got != want {
		t.Errorf("one-way:\n got %s\nwant %s", got, want)
	}
	whole := oneWay
	whole.wholeRow = true
	got = syncTriggerSQL("trg", tab, "f", []syncPair{whole})
	if want := `CREATE TRIGGER "trg" BEFORE INSERT OR UPDATE ON "public"."t" FOR EACH ROW WHEN (NEW."a_new" IS DISTINCT FROM new.a::integer) EXECUTE FUNCTION f()`; got != want {
		t.Errorf("whole row:\n got %s\nwant %s", got, want)
	}
	got = syncTriggerSQL("trg", tab, "f", []syncPair{oneWay, {from: "c", to: "d", twoWay: true}})
	containsAll(t, "mixed", got,
		`CREATE TRIGGER "cutover_back_c_d" BEFORE UPDATE OF "d" ON "public"."t" FOR EACH ROW WHEN (NEW."d" IS DISTINCT FROM NEW."c") EXECUTE FUNCTION f('d')`,
		`CREATE TRIGGER "trg" BEFORE INSERT OR UPDATE ON "public"."t" FOR EACH ROW WHEN ((NEW."a_new" IS DISTINCT FROM new.a::integer) OR (NEW."d" IS DISTINCT FROM NEW."c")) EXECUTE FUNCTION f()`)
	if n := len(dropSyncTriggersSQL("trg", tab, []syncPair{oneWay, {from: "c", to: "d", twoWay: true}})); n != 2 {
		t.Errorf("%d drops, want 2", n)
	}
}

func TestRenameColumnRefusesDollarQuoteInName(t *testing.T) {
	s := schemaOf(t, `CREATE TABLE public.t (id integer PRIMARY KEY, "a$cutover$b" text);`)
	wantUnsupported(t, `ALTER TABLE t RENAME COLUMN "a$cutover$b" TO c`, s, "$cutover$")
}
