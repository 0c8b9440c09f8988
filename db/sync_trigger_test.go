package db_test

// cutover's sync triggers (planner/sync.go) keep a copy column equal to the
// original while old and new application releases run side by side. The
// backfill must not call their PL/pgSQL function (one call per backfilled
// row costs ~40% of the backfill), yet every application write must. These
// tests count the function's calls with PostgreSQL's own function
// statistics (track_functions = 'pl').

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/plans"
)

const syncRows = 3000

// syncCase is a change whose plan creates a sync trigger on public.items.
type syncCase struct {
	name, input string
	fn          string // the sync function cutover creates
	// from, to are the original and the copy column.
	from, to string
	// equal is true for every row whose pair is in step.
	equal string
}

var syncCases = []syncCase{
	{name: "change type", input: "ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer",
		fn: "cutover_type_items_amount", from: "amount", to: "amount__cutover_new",
		equal: `amount__cutover_new IS NOT DISTINCT FROM amount::integer`},
	{name: "rename", input: "ALTER TABLE items RENAME COLUMN amount TO total",
		fn: "cutover_sync_items_amount_total", from: "amount", to: "total",
		equal: `total IS NOT DISTINCT FROM amount`},
}

// newItems creates public.items with syncRows rows (every 10th amount
// NULL) on a fresh database.
func newItems(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	url := dbtest.NewDatabase(t)
	conn := dbtest.Connect(t, url)
	exec(t, conn, fmt.Sprintf(`CREATE TABLE public.items (id bigserial PRIMARY KEY, amount text, note text, updated_at timestamptz);
INSERT INTO public.items (amount, note) SELECT CASE WHEN g %% 10 = 0 THEN NULL ELSE (g %% 1000)::text END, 'n' || g FROM generate_series(1, %d) g`, syncRows))
	return url, conn
}

// functionCalls returns the calls of public.fn counted by the server's
// cumulative statistics (flushed by sessions when they end or go idle).
func functionCalls(t *testing.T, conn *pgx.Conn, fn string) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE schemaname = 'public' AND funcname = $1`, fn).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// otherSessions counts the client sessions connected to this database
// other than conn's own.
func otherSessions(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The engine runs expand and the backfill (triggers fired, as by default)
// with function statistics on for every session of the database: the sync
// function is never called by the backfill, while one application write
// afterwards is counted, which shows the counter works.
func TestSyncTriggerIsNotCalledByTheBackfill(t *testing.T) {
	for _, tc := range syncCases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url, conn := newItems(t)
			var dbname string
			if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&dbname); err != nil {
				t.Fatal(err)
			}
			// track_functions is superuser-only; per database, every
			// session the engine opens from now on counts calls.
			exec(t, conn, fmt.Sprintf("ALTER DATABASE %s SET track_functions = 'pl'", pgx.Identifier{dbname}.Sanitize()))
			p := planFor(t, conn, tc.input)
			bf := backfillStep(t, p)
			if len(bf.Backfill.Triggers) != 0 {
				t.Fatalf("items has no trigger of its own, plan names %v", bf.Backfill.Triggers)
			}
			ev := newEvents(t)
			out, err := applyOnce(t, url, p, db.ApplyOptions{Observe: 0, BatchSize: 500, OnEvent: ev.on})
			if err != nil || out.Status != "waiting" {
				t.Fatalf("apply: %v %+v, want waiting for the application release after the backfill", err, out)
			}
			var unequal int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM items WHERE NOT ("+tc.equal+")").Scan(&unequal); err != nil {
				t.Fatal(err)
			}
			if unequal != 0 {
				t.Fatalf("%d rows not backfilled", unequal)
			}

			// One application write in a session of its own, then wait
			// until every other session has ended (a session flushes its
			// statistics when it ends) and the write is counted.
			app := dbtest.Connect(t, url)
			if _, err := app.Exec(ctx, fmt.Sprintf("UPDATE items SET %s = '42' WHERE id = 1", pgx.Identifier{tc.from}.Sanitize())); err != nil {
				t.Fatal(err)
			}
			if err := app.Close(ctx); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for otherSessions(t, conn) > 0 || functionCalls(t, conn, tc.fn) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("after 30 s: %d other sessions, %d calls counted", otherSessions(t, conn), functionCalls(t, conn, tc.fn))
				}
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			if got := functionCalls(t, conn, tc.fn); got != 1 {
				t.Errorf("%s was called %d times: want 1 (the application's UPDATE), 0 for the %d backfilled rows", tc.fn, got, syncRows)
			}
			var v string
			if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT %s::text FROM items WHERE id = 1", pgx.Identifier{tc.to}.Sanitize())).Scan(&v); err != nil || v != "42" {
				t.Errorf("%s of row 1 = %q (%v) after the application wrote 42", tc.to, v, err)
			}
		})
	}
}

func backfillStep(t *testing.T, p *plans.Plan) *plans.Step {
	t.Helper()
	for _, r := range p.Steps() {
		if r.Step.Backfill != nil {
			return r.Step
		}
	}
	t.Fatal("the plan has no backfill")
	return nil
}

// expandAndHalfBackfill runs the plan's expand phase, then its backfill
// over the first half of the table only: the other half is rows the
// backfill has not reached yet.
func expandAndHalfBackfill(t *testing.T, conn *pgx.Conn, p *plans.Plan) {
	t.Helper()
	runSteps(t, conn, p, func(ref plans.StepRef) bool { return ref.Phase == plans.Expand })
	bf := backfillStep(t, p)
	if _, err := conn.Exec(context.Background(),
		fmt.Sprintf("UPDATE %s SET %s WHERE id <= $1", bf.Backfill.Table, strings.Join(bf.Backfill.Set, ", ")), syncRows/2); err != nil {
		t.Fatal(err)
	}
}

// xactCalls returns the calls of public.fn this session has counted and
// not yet flushed to the cumulative statistics: they only grow within a
// transaction (a session flushes when idle), so the difference between
// two reads in one transaction is the calls made in between.
func xactCalls(t *testing.T, tx pgx.Tx, fn string) int64 {
	t.Helper()
	var n int64
	if err := tx.QueryRow(context.Background(), `SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions WHERE schemaname = 'public' AND funcname = $1`, fn).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// writeCase is one write an old or a new application release can make
// during the transition, on a backfilled row (id 1..1500) or one the
// backfill has not reached (1501..3000).
type writeCase struct {
	name string
	sql  string
	args []any
	// id is the row written (0: the row the INSERT returns).
	id int64
	// want is the value both columns must hold afterwards, as text (nil:
	// NULL).
	want *string
	// calls is how many times the sync function must run.
	calls int64
}

// runWrite runs tc's statement in a transaction with function statistics
// on (rolled back when the test ends), checks that it called fn tc.calls
// times, and returns the transaction and the id of the row it wrote.
func runWrite(t *testing.T, ctx context.Context, conn *pgx.Conn, fn string, tc writeCase) (pgx.Tx, int64) {
	t.Helper()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	if _, err := tx.Exec(ctx, "SET LOCAL track_functions = 'pl'"); err != nil {
		t.Fatal(err)
	}
	before := xactCalls(t, tx, fn)
	id := tc.id
	if id == 0 {
		if err := tx.QueryRow(ctx, tc.sql, tc.args...).Scan(&id); err != nil {
			t.Fatal(err)
		}
	} else if _, err := tx.Exec(ctx, tc.sql, tc.args...); err != nil {
		t.Fatal(err)
	}
	if got := xactCalls(t, tx, fn) - before; got != tc.calls {
		t.Errorf("sync function called %d times, want %d", got, tc.calls)
	}
	return tx, id
}

func sp(s string) *string { return &s }

// Every write an application can make while a type change is in
// progress leaves the new column equal to the conversion of the old one;
// updates of other columns do not call the function (and so do not fail on
// a value that does not convert), and the backfill never does.
func TestSyncTriggerTypeChangeWrites(t *testing.T) {
	ctx := context.Background()
	_, conn := newItems(t)
	exec(t, conn, "UPDATE items SET amount = 'abc' WHERE id = 2000")
	p := planFor(t, conn, syncCases[0].input)
	expandAndHalfBackfill(t, conn, p)
	fn := syncCases[0].fn
	cases := []writeCase{
		{name: "insert", sql: "INSERT INTO items (amount, note) VALUES ('17', 'x') RETURNING id", want: sp("17"), calls: 1},
		{name: "insert null", sql: "INSERT INTO items (note) VALUES ('x') RETURNING id", want: nil, calls: 1},
		{name: "upsert inserting", sql: "INSERT INTO items (id, amount) VALUES (100000, '18') ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount RETURNING id", want: sp("18"), calls: 1},
		{name: "upsert updating", sql: "INSERT INTO items (id, amount) VALUES (1, '19') ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount RETURNING id", want: sp("19"), calls: 2},
		{name: "update backfilled", sql: "UPDATE items SET amount = '20' WHERE id = 3", id: 3, want: sp("20"), calls: 1},
		{name: "update not backfilled", sql: "UPDATE items SET amount = '21' WHERE id = 2003", id: 2003, want: sp("21"), calls: 1},
		{name: "update to null", sql: "UPDATE items SET amount = NULL WHERE id = 4", id: 4, want: nil, calls: 1},
		{name: "update to the same value", sql: "UPDATE items SET amount = amount WHERE id = 2004", id: 2004, want: sp("4"), calls: 1},
		{name: "update other column, backfilled", sql: "UPDATE items SET note = 'y', updated_at = now() WHERE id = 5", id: 5, want: sp("5"), calls: 0},
		{name: "update other column, row with a value that does not convert", sql: "UPDATE items SET note = 'y' WHERE id = 2000", id: 2000, want: sp("abc"), calls: 0},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			tx, id := runWrite(t, ctx, conn, fn, tc)
			var old, copy *string
			if err := tx.QueryRow(ctx, "SELECT amount, amount__cutover_new::text FROM items WHERE id = $1", id).Scan(&old, &copy); err != nil {
				t.Fatal(err)
			}
			if deref(old) != deref(tc.want) || (old == nil) != (tc.want == nil) {
				t.Errorf("amount = %s, want %s", deref(old), deref(tc.want))
			}
			// A row the backfill has not reached keeps NULL in the copy
			// until it does when the write did not set amount.
			notReached := id > syncRows/2 && id <= syncRows && tc.calls == 0
			if notReached {
				if copy != nil {
					t.Errorf("copy = %s, want NULL until the backfill reaches the row", *copy)
				}
			} else if tc.want != nil && *tc.want == "abc" {
				if copy != nil {
					t.Errorf("copy = %s of an unconvertible value", *copy)
				}
			} else if deref(copy) != deref(tc.want) || (copy == nil) != (tc.want == nil) {
				t.Errorf("amount__cutover_new = %s, want %s", deref(copy), deref(tc.want))
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}

	// Writes of a value that does not convert fail, with the value named.
	for _, sql := range []string{"INSERT INTO items (amount) VALUES ('xyz')", "UPDATE items SET amount = 'xyz' WHERE id = 6"} {
		_, err := conn.Exec(ctx, sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "22P02" || !strings.Contains(pe.Message, `"xyz"`) {
			t.Errorf("%s: err %v, want invalid_text_representation naming \"xyz\"", sql, err)
		}
	}

	// The backfill stops at the row that does not convert, with
	// PostgreSQL's error naming the value, and without the check step the
	// plan used to have. Fixing the row lets it finish.
	bf := backfillStep(t, p)
	if !hasHazardOf(bf, plans.HazardCastFailure) {
		t.Errorf("backfill has no CAST_MAY_FAIL hazard: %v", bf.Hazards)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL track_functions = 'pl'"); err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(ctx, bf.SQL)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Code, "22") || !strings.Contains(pe.Message, `"abc"`) {
		t.Errorf("backfill over a row holding abc: err %v, want a data exception (class 22) naming \"abc\"", err)
	}
	tx.Rollback(ctx)
	exec(t, conn, "UPDATE items SET amount = '0' WHERE id = 2000")
	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL track_functions = 'pl'"); err != nil {
		t.Fatal(err)
	}
	before := xactCalls(t, tx, fn)
	tag, err := tx.Exec(ctx, bf.SQL)
	if err != nil {
		t.Fatal(err)
	}
	if got := xactCalls(t, tx, fn) - before; got != 0 {
		t.Errorf("the backfill of %d rows called the sync function %d times, want 0", tag.RowsAffected(), got)
	}
	if tag.RowsAffected() < syncRows/3 {
		t.Errorf("the backfill updated %d rows, want the unreached half", tag.RowsAffected())
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var unequal int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM items WHERE NOT ("+syncCases[0].equal+")").Scan(&unequal); err != nil {
		t.Fatal(err)
	}
	if unequal != 0 {
		t.Errorf("%d rows have amount__cutover_new different from amount::integer after the backfill", unequal)
	}
}

// Every write an old release (writing amount) or a new one (writing
// total) can make while a rename is in progress leaves both columns equal;
// the backfill does not call the function.
func TestSyncTriggerRenameWrites(t *testing.T) {
	ctx := context.Background()
	_, conn := newItems(t)
	p := planFor(t, conn, syncCases[1].input)
	expandAndHalfBackfill(t, conn, p)
	fn := syncCases[1].fn
	cases := []writeCase{
		{name: "old release inserts", sql: "INSERT INTO items (amount) VALUES ('a1') RETURNING id", want: sp("a1"), calls: 1},
		{name: "new release inserts", sql: "INSERT INTO items (total) VALUES ('b1') RETURNING id", want: sp("b1"), calls: 1},
		{name: "insert of both, equal", sql: "INSERT INTO items (amount, total) VALUES ('c1', 'c1') RETURNING id", want: sp("c1"), calls: 0},
		{name: "insert of both, different: the new column wins", sql: "INSERT INTO items (amount, total) VALUES ('d0', 'd1') RETURNING id", want: sp("d1"), calls: 1},
		{name: "insert of neither", sql: "INSERT INTO items (note) VALUES ('x') RETURNING id", want: nil, calls: 0},
		{name: "new release upserts", sql: "INSERT INTO items (id, total) VALUES (7, 'e1') ON CONFLICT (id) DO UPDATE SET total = EXCLUDED.total RETURNING id", want: sp("e1"), calls: 2},
		{name: "old release updates a backfilled row", sql: "UPDATE items SET amount = 'f1' WHERE id = 8", id: 8, want: sp("f1"), calls: 1},
		{name: "old release updates a row not backfilled", sql: "UPDATE items SET amount = 'g1' WHERE id = 2008", id: 2008, want: sp("g1"), calls: 1},
		{name: "new release updates a backfilled row", sql: "UPDATE items SET total = 'h1' WHERE id = 9", id: 9, want: sp("h1"), calls: 1},
		{name: "new release updates a row not backfilled", sql: "UPDATE items SET total = 'i1' WHERE id = 2009", id: 2009, want: sp("i1"), calls: 1},
		{name: "new release sets null on a backfilled row", sql: "UPDATE items SET total = NULL WHERE id = 11", id: 11, want: nil, calls: 1},
		{name: "new release sets null on a row not backfilled", sql: "UPDATE items SET total = NULL WHERE id = 2013", id: 2013, want: nil, calls: 1},
		{name: "old release sets null on a row not backfilled", sql: "UPDATE items SET amount = NULL WHERE id = 2011", id: 2011, want: nil, calls: 0},
		{name: "other column, backfilled row", sql: "UPDATE items SET note = 'y' WHERE id = 12", id: 12, want: sp("12"), calls: 0},
		{name: "other column, row not backfilled", sql: "UPDATE items SET note = 'y' WHERE id = 2012", id: 2012, want: sp("12"), calls: 1},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			tx, id := runWrite(t, ctx, conn, fn, tc)
			var old, copy *string
			if err := tx.QueryRow(ctx, "SELECT amount, total FROM items WHERE id = $1", id).Scan(&old, &copy); err != nil {
				t.Fatal(err)
			}
			for col, v := range map[string]*string{"amount": old, "total": copy} {
				if deref(v) != deref(tc.want) || (v == nil) != (tc.want == nil) {
					t.Errorf("%s = %s, want %s", col, deref(v), deref(tc.want))
				}
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}

	// The rest of the backfill calls the function for no row, and leaves
	// every row equal.
	bf := backfillStep(t, p)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL track_functions = 'pl'"); err != nil {
		t.Fatal(err)
	}
	before := xactCalls(t, tx, fn)
	tag, err := tx.Exec(ctx, bf.SQL)
	if err != nil {
		t.Fatal(err)
	}
	if got := xactCalls(t, tx, fn) - before; got != 0 || tag.RowsAffected() == 0 {
		t.Errorf("the backfill updated %d rows and called the sync function %d times, want some rows and 0 calls", tag.RowsAffected(), got)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var unequal int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM items WHERE NOT ("+syncCases[1].equal+")").Scan(&unequal); err != nil {
		t.Fatal(err)
	}
	if unequal != 0 {
		t.Errorf("%d rows have total different from amount after the backfill", unequal)
	}
}

func hasHazardOf(s *plans.Step, typ plans.HazardType) bool {
	for _, h := range s.Hazards {
		if h.Type == typ {
			return true
		}
	}
	return false
}
