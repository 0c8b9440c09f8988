package db

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/plans"
)

// The usage check's parser-based matching of normalized statements.
func TestUsageMatcherReferences(t *testing.T) {
	col := &usageMatcher{schema: "public", table: "customer", column: "email"}
	tab := &usageMatcher{schema: "public", table: "old_notes"}
	for _, tc := range []struct {
		m     *usageMatcher
		query string
		want  bool
	}{
		{col, `SELECT email FROM customer WHERE customer_id = $1`, true},
		{col, `SELECT c.email FROM public.customer c JOIN address a USING (address_id)`, true},
		{col, `SELECT "email" FROM "public"."customer"`, true},
		{col, `UPDATE customer SET email = $1 WHERE customer_id = $2`, true},
		{col, `INSERT INTO customer (store_id, email) VALUES ($1, $2)`, true},
		{col, `INSERT INTO customer VALUES ($1, $2, $3)`, true}, // positional: every column
		{col, `INSERT INTO customer (store_id) VALUES ($1) ON CONFLICT (customer_id) DO UPDATE SET email = $2`, true},
		{col, `SELECT email_address FROM customer WHERE customer_id = $1`, false},
		{col, `SELECT email_address AS email FROM customer`, false}, // an alias is not the column
		{col, `SELECT * FROM customer`, false},                      // keeps working
		{col, `SELECT email FROM staff`, false},                     // another table's column
		{col, `SELECT email FROM other.customer`, false},            // another schema
		{col, `INSERT INTO customer (store_id) VALUES ($1)`, false},
		{col, `SELECT email FROM customer WHERE`, true}, // unparsable: scanned token by token
		{tab, `SELECT count(*) FROM old_notes`, true},
		{tab, `DELETE FROM public.old_notes WHERE id = $1`, true},
		{tab, `SELECT * FROM old_notes_2`, false},
		{tab, `SELECT 'old_notes'`, false}, // a string is not a reference
	} {
		if got := tc.m.references(tc.query); got != tc.want {
			t.Errorf("%s.%s in %q: %v, want %v", tc.m.table, tc.m.column, tc.query, got, tc.want)
		}
	}
}

func TestBackoffIsBoundedFullJitter(t *testing.T) {
	for n := 1; n <= 40; n++ {
		bound := retryCap
		if n < 20 && retryBase<<(n-1) < bound {
			bound = retryBase << (n - 1)
		}
		for i := 0; i < 50; i++ {
			if d := backoff(n); d < 0 || d > bound {
				t.Fatalf("backoff(%d) = %s, want within [0, %s]", n, d, bound)
			}
		}
	}
}

func TestGateValues(t *testing.T) {
	for v, want := range map[string]bool{"t": true, "true": true, "0": true, "0.00": true, "f": false, "1": false, "NULL": false, "12": false, "": false} {
		if got := gateValuePasses(v); got != want {
			t.Errorf("gate value %q passes: %v, want %v", v, got, want)
		}
	}
}

func TestRedactSQLHidesPasswords(t *testing.T) {
	got := redactSQL(`ALTER ROLE app PASSWORD 'hunter2'`)
	if strings.Contains(got, "hunter2") || !strings.Contains(got, redacted) {
		t.Errorf("redacted: %q", got)
	}
	if s := `ALTER TABLE t ADD COLUMN password text`; redactSQL(s) != s {
		t.Errorf("a column named password was changed: %q", redactSQL(s))
	}
}

func TestStatementTimeoutClasses(t *testing.T) {
	for _, tc := range []struct {
		step *plans.Step
		want time.Duration
	}{
		{&plans.Step{SQL: `ALTER TABLE t ADD COLUMN c text`, Rewrite: plans.ImpactNone}, CatalogStatementTimeout},
		{&plans.Step{SQL: `ALTER TABLE t ADD CONSTRAINT c CHECK (c IS NOT NULL) NOT VALID`, Rewrite: plans.ImpactNone}, CatalogStatementTimeout},
		{&plans.Step{SQL: `ALTER TABLE t VALIDATE CONSTRAINT c`, Rewrite: plans.ImpactScan}, 0},
		{&plans.Step{SQL: `CREATE INDEX CONCURRENTLY i ON t (c)`, Rewrite: plans.ImpactScan}, 0},
		{&plans.Step{SQL: `DROP VIEW v; CREATE MATERIALIZED VIEW v AS SELECT 1`, Rewrite: plans.ImpactNone}, 0},
	} {
		stmts, err := splitSQL(tc.step.SQL)
		if err != nil {
			t.Fatal(err)
		}
		if got := stepStatementTimeout(tc.step, stmts); got != tc.want {
			t.Errorf("%q: statement_timeout %s, want %s", tc.step.SQL, got, tc.want)
		}
	}
}

// A backfill's Set and Where must make one statement: nothing smuggled in.
func TestBackfillSQLRefusesInjection(t *testing.T) {
	ok := &plans.Backfill{Table: `"public"."t"`, Key: []string{`"a"`, `"b"`}, Set: []string{`"c" = "d"`}, Where: `"c" IS DISTINCT FROM "d"`}
	s, err := backfillSQL(ok)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.change, `("a", "b") > ($1, $2) AND ("a", "b") <= ($3, $4)`) {
		t.Errorf("composite keyset range: %s", s.change)
	}
	bad := *ok
	bad.Where = `true; DROP TABLE t`
	if _, err := backfillSQL(&bad); err == nil {
		t.Error("a Where holding a second statement was accepted")
	}
}
