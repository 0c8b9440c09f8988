package schema_test

// These tests hold the canonical forms to their contract: a schema loaded
// into a real PostgreSQL server and read back from its catalogs (with
// search_path = '', through the Canonical* functions) gives exactly the
// strings ParseDump gives for the same SQL.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/schema"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestFormatTypeMatchesServer(t *testing.T) {
	conn := dbtest.Connect(t, dbtest.Pagila(t))
	ctx := context.Background()
	var cols []string
	for i, ts := range typeSpellings {
		cols = append(cols, pgx.Identifier{"c" + string(rune('a'+i/26)) + string(rune('a'+i%26))}.Sanitize()+" "+ts.in)
	}
	if _, err := conn.Exec(ctx, "SET search_path = public; CREATE TABLE public.spellings ("+strings.Join(cols, ", ")+"); SET search_path = ''"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = 'public.spellings'::regclass AND attnum > 0 ORDER BY attnum`)
	if err != nil {
		t.Fatal(err)
	}
	live, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for i, ts := range typeSpellings {
		got, err := schema.CanonicalType(ts.in)
		if err != nil {
			t.Errorf("%s: %v", ts.in, err)
			continue
		}
		if got != live[i] || got != ts.want {
			t.Errorf("%s: FormatType %q, server format_type %q, table says %q", ts.in, got, live[i], ts.want)
		}
	}
}

func TestPagilaMatchesServer(t *testing.T) {
	b, err := os.ReadFile("../testdata/pagila/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	offline, err := schema.ParseDump("pagila", string(b))
	if err != nil {
		t.Fatal(err)
	}
	compareWithServer(t, dbtest.Pagila(t), offline)
}

// handWritten exercises what pagila does not: quoted names, implicit
// constraint names, serial and identity columns, PARTITION OF, NOT VALID,
// expression and partial indexes, views over views.
const handWritten = `
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN posint AS integer NOT NULL CHECK (VALUE > 0) CHECK (VALUE < 1000000);
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, placed timestamptz(3) DEFAULT now());
CREATE TABLE "Order Items" (
    id serial PRIMARY KEY,
    "Unit Price" numeric(10,2) NOT NULL CHECK ("Unit Price" >= 0),
    "user" text UNIQUE,
    order_id bigint REFERENCES orders ON DELETE CASCADE DEFERRABLE,
    qty posint CONSTRAINT qty_positive CHECK (qty > 0),
    mood mood DEFAULT 'happy',
    tags varchar(20)[] DEFAULT '{}',
    total numeric GENERATED ALWAYS AS (qty * "Unit Price") STORED,
    CHECK (qty < 1000 AND "Unit Price" < 100000),
    UNIQUE (order_id, "user")
);
CREATE INDEX ON "Order Items" (lower("user") DESC NULLS LAST) WHERE qty > 1;
CREATE INDEX items_order ON "Order Items" USING hash (order_id);
ALTER TABLE "Order Items" ADD CONSTRAINT small CHECK (qty < 100) NOT VALID;
CREATE TABLE events (id bigint NOT NULL, kind mood NOT NULL, at timestamp, PRIMARY KEY (id, kind), CONSTRAINT recent CHECK (at > '2000-01-01')) PARTITION BY LIST (kind);
CREATE TABLE events_sad PARTITION OF events FOR VALUES IN ('sad');
CREATE INDEX events_at ON events (at);
CREATE VIEW order_totals AS
  SELECT o.id, sum(i."Unit Price" * i.qty) AS total, count(*) FILTER (WHERE i."user" IS NOT NULL) AS n
  FROM orders o JOIN "Order Items" i ON i.order_id = o.id GROUP BY o.id;
CREATE VIEW big_orders AS SELECT * FROM order_totals WHERE total > 100;
CREATE MATERIALIZED VIEW moods AS SELECT mood, count(*) FROM "Order Items" GROUP BY mood;
CREATE UNIQUE INDEX moods_mood ON moods (mood);
CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER stamp_items AFTER INSERT OR UPDATE OF qty ON "Order Items" FOR EACH ROW WHEN (NEW.qty > 5) EXECUTE FUNCTION stamp();
`

// TestPgDumpMatchesServer loads handWritten into the server, dumps it with
// pg_dump --schema-only, and checks that ParseDump of the dump equals what
// the catalogs say. (ParseDump of handWritten itself cannot be equal in
// every string: the server adds casts, qualifies names and expands * in the
// definitions it stores; pg_dump writes those.)
func TestPgDumpMatchesServer(t *testing.T) {
	url := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, url, handWritten)
	out, err := exec.Command(pgDump(t), "--schema-only", "--no-owner", "--dbname", url).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	offline, err := schema.ParseDump("pg_dump", string(out))
	if err != nil {
		t.Fatal(err)
	}
	compareWithServer(t, url, offline)

	// The hand-written file itself gives the same structure.
	direct, err := schema.ParseDump("hand.sql", handWritten)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, a, b any) {
		t.Helper()
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s:\n pg_dump %#v\n direct  %#v", what, a, b)
		}
	}
	for key, tab := range offline.Tables {
		d := direct.Tables[key]
		if d == nil {
			t.Errorf("%s: missing from the direct parse", key)
			continue
		}
		var a, b []string
		for _, c := range tab.Columns {
			a = append(a, c.Name+" "+c.Type+" "+boolText(c.NotNull)+" "+c.Identity)
		}
		for _, c := range d.Columns {
			b = append(b, c.Name+" "+c.Type+" "+boolText(c.NotNull)+" "+c.Identity)
		}
		check(key+" columns", a, b)
		a, b = nil, nil
		for _, c := range tab.Constraints {
			a = append(a, c.Name+" "+string(c.Type)+" "+strings.Join(c.Columns, ",")+" "+boolText(c.Valid))
		}
		for _, c := range d.Constraints {
			b = append(b, c.Name+" "+string(c.Type)+" "+strings.Join(c.Columns, ",")+" "+boolText(c.Valid))
		}
		sort.Strings(a)
		sort.Strings(b)
		check(key+" constraints", a, b)
		a, b = nil, nil
		for _, ix := range tab.Indexes {
			a = append(a, ix.Name+" "+strings.Join(ix.Columns, ","))
		}
		for _, ix := range d.Indexes {
			b = append(b, ix.Name+" "+strings.Join(ix.Columns, ","))
		}
		sort.Strings(a)
		sort.Strings(b)
		check(key+" indexes", a, b)
		check(key+" partitions", tab.Partitions, d.Partitions)
	}
	for key, v := range offline.Views {
		if d := direct.Views[key]; d == nil {
			t.Errorf("view %s: missing from the direct parse", key)
		} else {
			check(key+" uses", v.Uses, d.Uses)
			check(key+" depends on", v.DependsOn, d.DependsOn)
		}
	}
	check("sequences", offline.Sequences, direct.Sequences)
	check("enums", offline.Enums, direct.Enums)
}

// pgDump finds pg_dump beside the server binaries the test cluster uses.
func pgDump(t *testing.T) string {
	if p, err := exec.LookPath("pg_dump"); err == nil {
		return p
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	if len(dirs) == 0 {
		t.Fatal("pg_dump not found on PATH or in /usr/lib/postgresql/*/bin: install the PostgreSQL client package (e.g. postgresql-client)")
	}
	sort.Strings(dirs)
	return dirs[len(dirs)-1]
}

// compareWithServer reads the public schema of the database at url from
// the catalogs, canonicalised, and reports every difference from offline.
// It leaves out what the model leaves out: indexes and constraints a
// partition inherits from its parent (relispartition / conparentid /
// coninhcount on a partition),
// triggers cloned onto partitions, indexes of materialized views.
func compareWithServer(t *testing.T, url string, offline *schema.Schema) {
	t.Helper()
	conn := dbtest.Connect(t, url)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "SET search_path = ''"); err != nil {
		t.Fatal(err)
	}
	query := func(sql string, each func(v []string)) {
		t.Helper()
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]string, error) {
			var v []string
			vals, err := r.Values()
			for _, x := range vals {
				s, _ := x.(string)
				v = append(v, s)
			}
			return v, err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range got {
			each(v)
		}
	}
	canon := func(f func(string) (string, error), s string) string {
		t.Helper()
		if s == "" {
			return ""
		}
		out, err := f(s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	table := func(name string) *schema.Table {
		t.Helper()
		tab := offline.Table("public", name)
		if tab == nil {
			t.Fatalf("table %s is on the server, not in the dump's model", name)
		}
		return tab
	}
	check := func(what string, live, off any) {
		t.Helper()
		if !reflect.DeepEqual(live, off) {
			t.Errorf("%s:\n live    %#v\n offline %#v", what, live, off)
		}
	}
	const public = `n.nspname = 'public'`
	const rel = ` JOIN pg_class c ON c.oid = %s JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ` + public

	nTables := 0
	query(`SELECT c.relname, c.relkind::text, coalesce(pg_get_partkeydef(c.oid), ''), coalesce((SELECT p.relname FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent WHERE h.inhrelid = c.oid), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE `+public+` AND c.relkind IN ('r', 'p')`, func(v []string) {
		nTables++
		tab := table(v[0])
		check(v[0]+" partitioned", v[1] == "p", tab.Partitioned)
		check(v[0]+" partition key", canon(schema.CanonicalPartitionKey, v[2]), tab.PartitionKey)
		parent := ""
		if v[3] != "" {
			parent = "public." + v[3]
		}
		check(v[0]+" partition of", parent, tab.PartitionOf)
	})
	check("number of tables", nTables, len(offline.Tables))

	live := map[string][]string{}
	query(`SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text, a.attidentity::text, a.attgenerated::text, coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		`+strings.Replace(rel, "%s", "a.attrelid", 1)+` AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum`, func(v []string) {
		live[v[0]] = append(live[v[0]], v[1])
		col := table(v[0]).Column(v[1])
		if col == nil {
			t.Errorf("column %s.%s is not in the model", v[0], v[1])
			return
		}
		ident := map[string]string{"a": "always", "d": "by default"}[v[4]]
		def, gen := canon(schema.CanonicalExpr, v[6]), ""
		if v[5] == "s" {
			def, gen = "", def
		}
		check("column "+v[0]+"."+v[1], schema.Column{Name: v[1], Type: v[2], NotNull: v[3] == "true", Default: def, Identity: ident, Generated: gen}, *col)
	})
	for name, cols := range live {
		var off []string
		for _, c := range table(name).Columns {
			off = append(off, c.Name)
		}
		check("columns of "+name, cols, off)
	}

	count := map[string]int{}
	query(`SELECT c.relname, i.relname, pg_get_indexdef(i.oid), x.indisunique::text, x.indisprimary::text, x.indisvalid::text, coalesce(k.conname, '')
		FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid LEFT JOIN pg_constraint k ON k.conindid = i.oid AND k.contype IN ('p', 'u', 'x')
		`+strings.Replace(rel, "%s", "x.indrelid", 1)+` AND c.relkind IN ('r', 'p', 'm') AND NOT i.relispartition`, func(v []string) {
		count[v[0]]++
		var ix *schema.Index
		if view := offline.Views["public."+v[0]]; view != nil {
			for _, x := range view.Indexes {
				if x.Name == v[1] {
					ix = x
				}
			}
		} else {
			ix = table(v[0]).Index(v[1])
		}
		if ix == nil {
			t.Errorf("index %s is not in the model", v[1])
			return
		}
		check("index "+v[1], []string{canon(schema.CanonicalStatement, v[2]), v[3], v[4], v[5], v[6]},
			[]string{ix.Definition, boolText(ix.Unique), boolText(ix.Primary), boolText(ix.Valid), ix.Constraint})
	})
	query(`SELECT c.relname, k.conname, pg_get_constraintdef(k.oid), k.convalidated::text, coalesce(f.relname, '')
		FROM pg_constraint k LEFT JOIN pg_class f ON f.oid = k.confrelid `+strings.Replace(rel, "%s", "k.conrelid", 1)+` AND k.conparentid = 0 AND k.contype <> 'n' AND NOT (c.relispartition AND k.coninhcount > 0)`, func(v []string) {
		count[v[0]+" constraints"]++
		con := table(v[0]).Constraint(v[1])
		if con == nil {
			t.Errorf("constraint %s is not in the model", v[1])
			return
		}
		ref := ""
		if v[4] != "" {
			ref = "public." + v[4]
		}
		check("constraint "+v[1], []string{canon(schema.CanonicalConstraint, v[2]), v[3], ref},
			[]string{con.Definition, boolText(con.Valid), con.RefTable})
	})
	query(`SELECT c.relname, g.tgname, pg_get_triggerdef(g.oid), g.tgfoid::regproc::text FROM pg_trigger g
		`+strings.Replace(rel, "%s", "g.tgrelid", 1)+` AND NOT g.tgisinternal AND g.tgparentid = 0 AND c.relkind IN ('r', 'p')`, func(v []string) {
		count[v[0]+" triggers"]++
		var tr *schema.Trigger
		for _, x := range table(v[0]).Triggers {
			if x.Name == v[1] {
				tr = x
			}
		}
		if tr == nil {
			t.Errorf("trigger %s.%s is not in the model", v[0], v[1])
			return
		}
		check("trigger "+v[1], []string{canon(schema.CanonicalStatement, v[2]), v[3]}, []string{tr.Definition, tr.Function})
	})
	for _, view := range offline.Views {
		check("indexes of "+view.Name, count[view.Name], len(view.Indexes))
	}
	for _, tab := range offline.Tables {
		check("indexes of "+tab.Name, count[tab.Name], len(tab.Indexes))
		check("constraints of "+tab.Name, count[tab.Name+" constraints"], len(tab.Constraints))
		check("triggers of "+tab.Name, count[tab.Name+" triggers"], len(tab.Triggers))
	}

	nViews := 0
	query(`SELECT c.relname, pg_get_viewdef(c.oid), (c.relkind = 'm')::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE `+public+` AND c.relkind IN ('v', 'm')`, func(v []string) {
		nViews++
		view := offline.Views["public."+v[0]]
		if view == nil {
			t.Errorf("view %s is not in the model", v[0])
			return
		}
		check("view "+v[0], []string{canon(schema.CanonicalQuery, v[1]), v[2]}, []string{view.Definition, boolText(view.Materialized)})
	})
	check("number of views", nViews, len(offline.Views))
	uses, deps := map[string][]string{}, map[string][]string{}
	query(`SELECT DISTINCT v.relname, t.relname, coalesce(a.attname, '') FROM pg_depend d
		JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class JOIN pg_class t ON t.oid = d.refobjid
		LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
		WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND t.oid <> v.oid
		AND v.relnamespace = 'public'::regnamespace`, func(v []string) {
		// pg_depend keeps a whole-relation dependency only where no column
		// of the relation is referenced: the relations are all rows'.
		if v[2] != "" {
			uses[v[0]] = append(uses[v[0]], "public."+v[1]+"."+v[2])
		}
		if !contains(deps[v[0]], "public."+v[1]) {
			deps[v[0]] = append(deps[v[0]], "public."+v[1])
		}
	})
	for key, view := range offline.Views {
		var u, d []string
		for _, r := range view.Uses {
			u = append(u, r.Relation+"."+r.Column)
		}
		d = append(d, view.DependsOn...)
		sort.Strings(uses[view.Name])
		sort.Strings(deps[view.Name])
		check("uses of "+key, uses[view.Name], u)
		check("relations of "+key, deps[view.Name], d)
	}

	query(`SELECT t.typname, coalesce(string_agg(pg_get_constraintdef(k.oid), '|' ORDER BY pg_get_constraintdef(k.oid)) FILTER (WHERE k.contype = 'c'), ''),
		t.typnotnull::text, format_type(t.typbasetype, t.typtypmod) FROM pg_type t LEFT JOIN pg_constraint k ON k.contypid = t.oid
		WHERE t.typnamespace = 'public'::regnamespace AND t.typtype = 'd' GROUP BY t.oid`, func(v []string) {
		d := offline.Domains["public."+v[0]]
		if d == nil {
			t.Errorf("domain %s is not in the model", v[0])
			return
		}
		var checks []string
		if v[1] != "" {
			for _, c := range strings.Split(v[1], "|") {
				checks = append(checks, canon(schema.CanonicalConstraint, c))
			}
			sort.Strings(checks)
		}
		check("domain "+v[0], schema.Domain{Schema: "public", Name: v[0], Type: v[3], NotNull: v[2] == "true", Checks: checks}, *d)
	})
	query(`SELECT t.typname, string_agg(e.enumlabel, '|' ORDER BY e.enumsortorder) FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
		WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname`, func(v []string) {
		check("enum "+v[0], strings.Split(v[1], "|"), offline.Enums["public."+v[0]].Values)
	})
	nSeq := 0
	query(`SELECT s.relname, coalesce(t.relname, ''), coalesce(a.attname, '') FROM pg_class s
		LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
		LEFT JOIN pg_class t ON t.oid = d.refobjid LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
		WHERE s.relkind = 'S' AND s.relnamespace = 'public'::regnamespace`, func(v []string) {
		nSeq++
		seq := offline.Sequences["public."+v[0]]
		if seq == nil {
			t.Errorf("sequence %s is not in the model", v[0])
			return
		}
		var owned *schema.ColumnRef
		if v[1] != "" {
			owned = &schema.ColumnRef{Relation: "public." + v[1], Column: v[2]}
		}
		check("sequence "+v[0], owned, seq.OwnedBy)
	})
	check("number of sequences", nSeq, len(offline.Sequences))
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
