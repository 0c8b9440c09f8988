package db

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
)

// The server-side loop's statements parse: CREATE PROCEDURE with a
// plpgsql body that pg_query's plpgsql parser accepts, and a CALL whose
// arguments match the procedure's parameters (the batch statement's, the
// budget and the gap, then four outputs), for single, composite and
// oddly named keys, with and without an upper key.
func TestLoopProcedureParses(t *testing.T) {
	for _, b := range []*plans.Backfill{
		{Table: `"public"."items"`, Key: []string{`"id"`}, Set: []string{`"amount__cutover_new" = amount::int`},
			Where: `"amount__cutover_new" IS NULL AND (amount::int) IS NOT NULL`},
		{Table: `"sales"."Order Lines"`, Key: []string{`"order id"`, `"line"`}, Set: []string{`"qty__new" = "qty"::int`},
			Where: `"qty__new" IS NULL AND ("qty"::int) IS NOT NULL AND '$cutover_loop$' <> ''`},
		{Table: `"public"."t"`, Key: []string{`"k"`}, Delete: true, Where: `"gone"`},
	} {
		sqls, err := backfillSQL(b)
		if err != nil {
			t.Fatalf("%s: %v", b.Table, err)
		}
		for hi := range 2 {
			proc, call := sqls.loop[hi], sqls.loopCall[hi]
			if _, err := pg_query.ParsePlPgSqlToJSON(proc); err != nil {
				t.Errorf("%s, hi %d: the procedure's body does not parse: %v\n%s", b.Table, hi, err, proc)
			}
			n := parseOne(call)
			if n == nil || n.GetCallStmt() == nil {
				t.Fatalf("%s: %q is not one CALL", b.Table, call)
			}
			args := len(n.GetCallStmt().GetFunccall().GetArgs())
			params := strings.Count(proc[:strings.Index(proc, ") LANGUAGE plpgsql")], ",") + 1
			if args != params {
				t.Errorf("%s, hi %d: the CALL passes %d arguments, the procedure has %d parameters", b.Table, hi, args, params)
			}
			if !strings.Contains(proc, sqls.batch[1][hi]) {
				t.Errorf("%s, hi %d: the procedure does not run the batch statement", b.Table, hi)
			}
		}
	}
}
