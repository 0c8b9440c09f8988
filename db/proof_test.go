package db_test

// The proof that plans are right: for every change kind, plan the naive
// statement against pagila, run every step of the plan in order on a fresh
// pagila database, and compare the result with a second fresh pagila
// database on which the naive statement was run as written. Catalogs
// (columns with types, nullability and defaults; constraints; indexes;
// views; triggers; sequences) and every table's data must be equal. Then
// run the plan's expand phase on a third database, roll it back, and check
// the schema and data are exactly the original's.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

type proofCase struct {
	name string
	// setup runs on every database before anything else (e.g. to give a
	// table the shape the change needs).
	setup string
	// input is what the operator types and cutover plans.
	input string
	// naive is what produces the intended end state when run as written;
	// empty means input itself. keepViews runs it with every view dropped
	// before and recreated after, because PostgreSQL refuses to alter a
	// column a view uses and the intent is to keep the views.
	naive     string
	keepViews bool
	// dataIgnore lists "table.column" whose values legitimately differ
	// between two runs (random defaults, timestamps set by triggers).
	dataIgnore []string
	// check runs extra assertions on the planned database.
	check func(t *testing.T, conn *pgx.Conn)
}

var proofCases = []proofCase{
	{name: "rename column", input: `ALTER TABLE customer RENAME COLUMN email TO email_address`},
	{name: "change type widening with views", input: `ALTER TABLE film ALTER COLUMN rental_rate TYPE numeric(6,2)`, keepViews: true},
	{name: "change type of a primary key referenced by partitions", input: `ALTER TABLE rental ALTER COLUMN rental_id TYPE bigint`,
		naive: `ALTER TABLE payment ALTER COLUMN rental_id TYPE bigint; ALTER TABLE rental ALTER COLUMN rental_id TYPE bigint`, keepViews: true},
	{name: "change type with using", input: `ALTER TABLE customer ALTER COLUMN active TYPE boolean USING active = 1`, keepViews: true},
	{name: "drop column used by a view", input: `ALTER TABLE customer DROP COLUMN activebool CASCADE`},
	{name: "drop column", input: `ALTER TABLE staff DROP COLUMN picture`},
	{name: "add column not null with default", input: `ALTER TABLE customer ADD COLUMN loyalty integer NOT NULL DEFAULT 0`},
	{name: "add column with volatile default", input: `ALTER TABLE rental ADD COLUMN token uuid DEFAULT gen_random_uuid()`,
		dataIgnore: []string{"rental.token"},
		check: func(t *testing.T, conn *pgx.Conn) {
			var nulls, distinct int
			if err := conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE token IS NULL), count(DISTINCT token) FROM rental`).Scan(&nulls, &distinct); err != nil {
				t.Fatal(err)
			}
			if nulls != 0 || distinct != 16044 {
				t.Errorf("rental.token: %d NULLs and %d distinct values, want 0 and 16044", nulls, distinct)
			}
		}},
	{name: "two new columns on one table", input: `ALTER TABLE film ADD COLUMN a uuid DEFAULT gen_random_uuid(); ALTER TABLE film ADD COLUMN b timestamptz DEFAULT clock_timestamp()`,
		dataIgnore: []string{"film.a", "film.b"}},
	{name: "set not null", input: `ALTER TABLE address ALTER COLUMN postal_code SET NOT NULL`,
		setup: `UPDATE address SET postal_code = '' WHERE postal_code IS NULL`},
	{name: "drop not null", input: `ALTER TABLE customer ALTER COLUMN first_name DROP NOT NULL`},
	{name: "add foreign key", input: `ALTER TABLE store ADD CONSTRAINT store_manager_staff_id_fkey FOREIGN KEY (manager_staff_id) REFERENCES staff (staff_id)`},
	{name: "add check", input: `ALTER TABLE film ADD CONSTRAINT film_length_positive CHECK (length > 0)`},
	{name: "add unique", input: `ALTER TABLE customer ADD CONSTRAINT customer_email_key UNIQUE (email)`},
	{name: "add primary key", setup: `ALTER TABLE film_category DROP CONSTRAINT film_category_pkey`,
		input: `ALTER TABLE film_category ADD PRIMARY KEY (film_id, category_id)`},
	{name: "create index", input: `CREATE INDEX idx_customer_email ON customer (email)`},
	{name: "drop index", input: `DROP INDEX idx_title`},
	{name: "rename table", input: `ALTER TABLE language RENAME TO languages`},
	{name: "drop table", setup: `CREATE TABLE old_notes (id integer PRIMARY KEY, note text); INSERT INTO old_notes SELECT g, 'n' || g FROM generate_series(1, 100) g`,
		input: `DROP TABLE old_notes`},
	{name: "set default", input: `ALTER TABLE film ALTER COLUMN rental_duration SET DEFAULT 5`},
	{name: "drop default", input: `ALTER TABLE customer ALTER COLUMN create_date DROP DEFAULT`},
	{name: "add enum value", input: `ALTER TYPE mpaa_rating ADD VALUE 'NR'`},
	{name: "big update", input: `UPDATE film SET rental_rate = 0.99, replacement_cost = 9.99 WHERE rating = 'G'`,
		dataIgnore: []string{"film.last_update"}},
	{name: "big delete", input: `DELETE FROM film_actor WHERE actor_id <= 10`},
	{name: "create table", input: `CREATE TABLE review (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, film_id integer NOT NULL REFERENCES film (film_id), body text)`},
	{name: "drop a partition", input: `DROP TABLE payment_p2022_07`},
	// Several statements that build on each other: each is planned
	// against the schema as the ones before it leave it.
	{name: "multi add column with default then set not null",
		input: `ALTER TABLE customer ADD COLUMN nickname text DEFAULT ''; ALTER TABLE customer ALTER COLUMN nickname SET NOT NULL`},
	{name: "multi drop views then table",
		input: `DROP VIEW actor_info; DROP VIEW film_list; DROP VIEW nicer_but_slower_film_list; DROP TABLE film_actor`},
	{name: "multi drop then add constraint",
		input: `ALTER TABLE film_category DROP CONSTRAINT film_category_pkey; ALTER TABLE film_category ADD CONSTRAINT film_category_pkey PRIMARY KEY (film_id, category_id)`},
	{name: "multi new table then changes",
		input: `CREATE TABLE review (id integer, film_id integer, body text); CREATE INDEX ON review (film_id); ALTER TABLE review ADD PRIMARY KEY (id); ALTER TABLE review ADD COLUMN stars integer NOT NULL; ALTER TABLE review ALTER COLUMN body SET NOT NULL; ALTER TABLE review ADD CHECK (stars > 0); ALTER TABLE review ADD FOREIGN KEY (film_id) REFERENCES film (film_id)`},
	{name: "multi primary key then foreign key",
		setup: `CREATE TABLE a (id integer NOT NULL); CREATE TABLE b (a_id integer); CREATE INDEX ON b (a_id); INSERT INTO a SELECT g FROM generate_series(1, 100) g; INSERT INTO b SELECT g % 100 + 1 FROM generate_series(1, 300) g`,
		input: `ALTER TABLE a ADD PRIMARY KEY (id); ALTER TABLE b ADD FOREIGN KEY (a_id) REFERENCES a (id)`},
	{name: "multi rename column then index",
		input: `ALTER TABLE customer RENAME COLUMN email TO mail; CREATE INDEX ON customer (mail)`},
	// Two sync triggers on one table (a two-way pair and a one-way pair)
	// and one merged backfill that calls neither.
	{name: "multi rename and change type on one table",
		input: `ALTER TABLE customer RENAME COLUMN email TO email_address; ALTER TABLE customer ALTER COLUMN active TYPE boolean USING active = 1`, keepViews: true},
	{name: "multi change type then set not null", setup: `UPDATE film SET length = 100 WHERE length IS NULL`,
		input: `ALTER TABLE film ALTER COLUMN length TYPE integer; ALTER TABLE film ALTER COLUMN length SET NOT NULL`, keepViews: true},
}

func TestPlansReachTheNaiveEndState(t *testing.T) {
	for _, tc := range proofCases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			planned := dbtest.Connect(t, dbtest.Pagila(t))
			naive := dbtest.Connect(t, dbtest.Pagila(t))
			exec(t, planned, tc.setup)
			exec(t, naive, tc.setup)

			p := planFor(t, planned, tc.input)
			runSteps(t, planned, p, nil)

			naiveSQL := tc.naive
			if naiveSQL == "" {
				naiveSQL = tc.input
			}
			if tc.keepViews {
				runKeepingViews(t, naive, naiveSQL)
			} else {
				exec(t, naive, naiveSQL)
			}

			want, got := snapshot(t, naive, tc.dataIgnore), snapshot(t, planned, tc.dataIgnore)
			compareSnapshots(t, want, got)
			if tc.check != nil {
				tc.check(t, planned)
			}
		})
	}
}

func TestExpandRollbackRestoresTheOriginal(t *testing.T) {
	for _, tc := range proofCases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			conn := dbtest.Connect(t, dbtest.Pagila(t))
			exec(t, conn, tc.setup)
			before := snapshot(t, conn, nil)
			p := planFor(t, conn, tc.input)
			// A plan without an expand phase (a drop starts with an
			// application release) changes nothing here, which the
			// comparison below checks too.
			done := runSteps(t, conn, p, func(ref plans.StepRef) bool { return ref.Phase == plans.Expand })
			for i := len(done) - 1; i >= 0; i-- {
				s := done[i]
				if s.Irreversible {
					// An irreversible expand step (e.g. ADD VALUE to an
					// enum) is the end of the road: say so, and check the
					// rest of the schema is untouched.
					t.Logf("step %s is irreversible: %s", s.ID, s.IrreversibleReason)
					return
				}
				runSQL(t, conn, s.Rollback, true)
			}
			after := snapshot(t, conn, nil)
			compareSnapshots(t, before, after)
		})
	}
}

// planFor introspects the live database and plans the input against it.
func planFor(t *testing.T, conn *pgx.Conn, input string) *plans.Plan {
	t.Helper()
	s, err := db.Introspect(context.Background(), conn)
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	p, err := planner.Plan(input, planner.Options{Schema: s})
	if err != nil {
		t.Fatalf("plan %q: %v", input, err)
	}
	return p
}

// runSteps runs the plan's db steps in order (those accepted by only, or
// all), checking each gate, and returns the steps it ran. It is the plain
// sequential executor of this proof; the safe apply engine is elsewhere.
func runSteps(t *testing.T, conn *pgx.Conn, p *plans.Plan, only func(plans.StepRef) bool) []*plans.Step {
	t.Helper()
	ctx := context.Background()
	var done []*plans.Step
	for _, ref := range p.Steps() {
		if only != nil && !only(ref) {
			continue
		}
		s := ref.Step
		if s.Backfill != nil && len(s.Backfill.Triggers) > 0 {
			// The naive statement does not fire the table's UPDATE
			// triggers, so the backfill must not either to reach the same
			// data; the backfill engine offers exactly this choice.
			exec(t, conn, "SET session_replication_role = replica")
		}
		runSQL(t, conn, s.SQL, s.Transactional)
		if s.Backfill != nil {
			exec(t, conn, "SET session_replication_role = DEFAULT")
		}
		if s.Gate != nil {
			var pass any
			if err := conn.QueryRow(ctx, s.Gate.SQL).Scan(&pass); err != nil {
				t.Fatalf("step %s gate %q: %v", s.ID, s.Gate.SQL, err)
			}
			if !gatePasses(pass) {
				t.Fatalf("step %s gate %q returned %v", s.ID, s.Gate.Description, pass)
			}
		}
		done = append(done, s)
	}
	return done
}

func gatePasses(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x == 0
	case int32:
		return x == 0
	case nil:
		return false
	}
	return fmt.Sprint(v) == "0"
}

// runSQL runs one step's SQL: a transactional step's statements in one
// transaction (the simple protocol runs a multi-statement string as one
// implicit transaction), a non-transactional step's statements one by one.
func runSQL(t *testing.T, conn *pgx.Conn, sql string, transactional bool) {
	t.Helper()
	if transactional {
		exec(t, conn, sql)
		return
	}
	for _, stmt := range splitStatements(t, sql) {
		exec(t, conn, stmt)
	}
}

func splitStatements(t *testing.T, sql string) []string {
	t.Helper()
	parts, err := pgQuerySplit(sql)
	if err != nil {
		t.Fatalf("split %q: %v", sql, err)
	}
	return parts
}

func exec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if strings.TrimSpace(sql) == "" {
		return
	}
	if _, err := conn.PgConn().Exec(context.Background(), sql).ReadAll(); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// runKeepingViews runs sql with every view and materialized view dropped
// before and recreated after, in one transaction.
func runKeepingViews(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	s, err := db.Introspect(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("BEGIN;\n")
	for _, v := range dropOrder(s) {
		kind := "VIEW"
		if v.Materialized {
			kind = "MATERIALIZED VIEW"
		}
		fmt.Fprintf(&b, "DROP %s %s;\n", kind, pgx.Identifier{v.Schema, v.Name}.Sanitize())
	}
	b.WriteString(sql + ";\n")
	drops := dropOrder(s)
	for i := len(drops) - 1; i >= 0; i-- {
		v := drops[i]
		kind := "VIEW"
		if v.Materialized {
			kind = "MATERIALIZED VIEW"
		}
		fmt.Fprintf(&b, "CREATE %s %s AS %s;\n", kind, pgx.Identifier{v.Schema, v.Name}.Sanitize(), v.Definition)
		for _, ix := range v.Indexes {
			b.WriteString(ix.Definition + ";\n")
		}
	}
	b.WriteString("COMMIT;")
	exec(t, conn, b.String())
}

// dropOrder orders every view so each comes before the views it reads.
func dropOrder(s *schema.Schema) []*schema.View {
	var out []*schema.View
	done := map[string]bool{}
	var visit func(k string)
	visit = func(k string) {
		if done[k] {
			return
		}
		done[k] = true
		for _, k2 := range sortedViewKeys(s) {
			for _, d := range s.Views[k2].DependsOn {
				if d == k {
					visit(k2)
				}
			}
		}
		out = append(out, s.Views[k])
	}
	for _, k := range sortedViewKeys(s) {
		visit(k)
	}
	return out
}

func sortedViewKeys(s *schema.Schema) []string {
	keys := make([]string, 0, len(s.Views))
	for k := range s.Views {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dbSnapshot is what two databases must agree on.
type dbSnapshot struct {
	Schema *schema.Schema
	// Data maps each table to a checksum of its rows, columns taken in
	// name order so a column's position does not matter.
	Data map[string]string
}

func snapshot(t *testing.T, conn *pgx.Conn, ignore []string) dbSnapshot {
	t.Helper()
	ctx := context.Background()
	s, err := db.Introspect(ctx, conn)
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	normalise(s)
	skip := map[string]bool{}
	for _, c := range ignore {
		skip["public."+c] = true
	}
	data := map[string]string{}
	for k, tab := range s.Tables {
		if tab.Partitioned {
			continue // its rows are in its partitions
		}
		var cols []string
		for _, c := range tab.Columns {
			if !skip[k+"."+c.Name] {
				cols = append(cols, c.Name)
			}
		}
		sort.Strings(cols)
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = pgx.Identifier{c}.Sanitize()
		}
		q := fmt.Sprintf(`SELECT count(*) || ':' || coalesce(md5(string_agg(r, E'\n' ORDER BY r)), '') FROM (SELECT ROW(%s)::text AS r FROM ONLY %s) x`,
			strings.Join(quoted, ", "), pgx.Identifier{tab.Schema, tab.Name}.Sanitize())
		var sum string
		if err := conn.QueryRow(ctx, q).Scan(&sum); err != nil {
			t.Fatalf("checksum %s: %v", k, err)
		}
		data[k] = sum
	}
	return dbSnapshot{Schema: s, Data: data}
}

// normalise removes what legitimately differs between two databases with
// the same schema: sizes, estimates, column order.
func normalise(s *schema.Schema) {
	s.Source, s.ServerVersion = "", 0
	for _, tab := range s.Tables {
		tab.RowEstimate, tab.Bytes = 0, 0
		sort.Slice(tab.Columns, func(i, j int) bool { return tab.Columns[i].Name < tab.Columns[j].Name })
	}
}

func compareSnapshots(t *testing.T, want, got dbSnapshot) {
	t.Helper()
	wj, _ := json.MarshalIndent(want.Schema, "", " ")
	gj, _ := json.MarshalIndent(got.Schema, "", " ")
	if string(wj) != string(gj) {
		dir := t.TempDir()
		_ = os.WriteFile(filepath.Join(dir, "want.json"), wj, 0o644)
		_ = os.WriteFile(filepath.Join(dir, "got.json"), gj, 0o644)
		t.Errorf("schema differs from the naive statement's:\n%s", firstDiff(string(wj), string(gj)))
	}
	for k, w := range want.Data {
		if g, ok := got.Data[k]; !ok {
			t.Errorf("table %s is missing", k)
		} else if g != w {
			t.Errorf("data of %s differs: want %s, got %s", k, w, g)
		}
	}
	for k := range got.Data {
		if _, ok := want.Data[k]; !ok {
			t.Errorf("unexpected table %s", k)
		}
	}
}

// firstDiff shows the lines around the first difference of two texts.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			lo := i - 8
			if lo < 0 {
				lo = 0
			}
			var sb strings.Builder
			for j := lo; j < i+8; j++ {
				var wa, ga string
				if j < len(al) {
					wa = al[j]
				}
				if j < len(bl) {
					ga = bl[j]
				}
				mark := " "
				if wa != ga {
					mark = "!"
				}
				fmt.Fprintf(&sb, "%s want: %-60s | got: %s\n", mark, wa, ga)
			}
			return sb.String()
		}
	}
	return "(no line differs)"
}

// pgQuerySplit splits a script into statements with PostgreSQL's parser.
func pgQuerySplit(sql string) ([]string, error) {
	return pg_query.SplitWithParser(sql, true)
}
