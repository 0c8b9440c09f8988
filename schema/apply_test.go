package schema_test

import (
	"context"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/schema"
)

var (
	pagilaOnce  sync.Once
	pagilaModel *schema.Schema
	pagilaErr   error
)

// pagila returns the model of the project's pagila schema, parsed once;
// callers Clone it before changing it.
func pagila(t testing.TB) *schema.Schema {
	t.Helper()
	pagilaOnce.Do(func() {
		b, err := os.ReadFile("../testdata/pagila/schema.sql")
		if err != nil {
			pagilaErr = err
			return
		}
		pagilaModel, pagilaErr = schema.ParseDump("pagila", string(b))
	})
	if pagilaErr != nil {
		t.Fatal(pagilaErr)
	}
	return pagilaModel
}

// applyAll applies every statement of sql to s.
func applyAll(t testing.TB, s *schema.Schema, sql string) {
	t.Helper()
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range tree.Stmts {
		if err := s.Apply(raw.Stmt); err != nil {
			t.Fatalf("Apply %s: %v", sql[raw.StmtLocation:], err)
		}
	}
}

// applyCases are statement sequences run on a real pagila database and
// applied to the pagila model: the model must then match the catalogs.
// They are written as the server stores them (qualified names, casts), so
// that definitions compare equal as strings.
var applyCases = []struct{ name, sql string }{
	{"create a table, then build on it", `
CREATE TABLE public.n (id integer NOT NULL, a text, CONSTRAINT n_pkey PRIMARY KEY (id));
CREATE INDEX ON public.n USING btree (a);
ALTER TABLE public.n ADD COLUMN b integer DEFAULT 0 NOT NULL;
ALTER TABLE public.n ALTER COLUMN a SET NOT NULL;
ALTER TABLE public.n ADD CHECK ((b >= 0)) NOT VALID;
ALTER TABLE public.n ADD FOREIGN KEY (b) REFERENCES public.film(film_id);
ALTER TABLE public.n ADD COLUMN c serial;
CREATE TRIGGER n_stamp BEFORE UPDATE ON public.n FOR EACH ROW EXECUTE FUNCTION public.last_updated();
ALTER TABLE public.n RENAME COLUMN a TO a2;
CREATE UNIQUE INDEX n_b_c ON public.n USING btree (b, c) WHERE (a2 <> ''::text)`},
	{"implicit names are numbered", `
CREATE INDEX ON public.film USING btree (title);
CREATE INDEX ON public.film USING btree (title);
ALTER TABLE public.film ADD CHECK ((length > 0));
ALTER TABLE public.film ADD CHECK ((length < 1000));
ALTER TABLE public.film_actor ADD UNIQUE (actor_id, film_id);
CREATE TABLE public.film_n_seq (id integer);
ALTER TABLE public.film ADD COLUMN n serial;
ALTER TABLE public.film_category DROP CONSTRAINT film_category_pkey;
CREATE TABLE public.film_category_pkey (id integer);
ALTER TABLE public.film_category ADD PRIMARY KEY (film_id, category_id)`},
	{"drop the views, then the table", `
DROP VIEW public.actor_info;
DROP VIEW public.film_list;
DROP VIEW public.nicer_but_slower_film_list;
DROP TABLE public.film_actor`},
	{"drop a table with cascade", `DROP TABLE public.film_category CASCADE`},
	{"drop a partitioned table", `DROP TABLE public.payment CASCADE`},
	{"drop a partition", `DROP TABLE public.payment_p2022_07`},
	{"rename a table used by views, foreign keys and triggers", `ALTER TABLE public.film RENAME TO movie`},
	{"rename a referenced key column", `ALTER TABLE public.language RENAME COLUMN language_id TO id`},
	{"rename a column views read", `ALTER TABLE public.film RENAME COLUMN title TO name`},
	{"rename a partitioned table's column", `ALTER TABLE public.payment RENAME COLUMN amount TO total`},
	{"column changes", `
ALTER TABLE public.staff ALTER COLUMN username TYPE text;
ALTER TABLE public.staff ALTER COLUMN username DROP NOT NULL;
ALTER TABLE public.staff ALTER COLUMN email SET DEFAULT 'none'::text;
ALTER TABLE public.staff ALTER COLUMN email SET NOT NULL;
ALTER TABLE public.staff ALTER COLUMN last_update DROP DEFAULT;
ALTER TABLE public.staff DROP COLUMN picture`},
	{"column changes reach partitions", `
ALTER TABLE public.payment ADD COLUMN note text DEFAULT 'n'::text;
ALTER TABLE public.payment ALTER COLUMN note SET NOT NULL;
ALTER TABLE public.payment ALTER COLUMN note TYPE character varying(20);
ALTER TABLE public.payment ADD COLUMN n2 integer DEFAULT 1;
ALTER TABLE public.payment ALTER COLUMN n2 TYPE bigint;
ALTER TABLE public.payment DROP COLUMN n2`},
	{"drop a column with what uses it", `ALTER TABLE public.customer DROP COLUMN activebool CASCADE; ALTER TABLE public.film DROP COLUMN language_id`},
	{"drop a key with cascade, add it back", `
ALTER TABLE public.film DROP CONSTRAINT film_pkey CASCADE;
ALTER TABLE public.film ADD PRIMARY KEY (film_id);
ALTER TABLE public.film_category DROP CONSTRAINT film_category_pkey;
ALTER TABLE public.film_category ADD CONSTRAINT film_category_pkey PRIMARY KEY (film_id, category_id)`},
	{"renames of index, constraint, sequence and view", `
ALTER INDEX public.idx_title RENAME TO film_title_idx;
ALTER TABLE public.film RENAME CONSTRAINT film_pkey TO film_pk;
ALTER INDEX public.actor_pkey RENAME TO actor_pk;
ALTER SEQUENCE public.film_film_id_seq RENAME TO film_seq;
ALTER VIEW public.film_list RENAME TO films`},
	{"views, materialized views, types", `
CREATE VIEW public.v1 AS SELECT films.fid, films.title FROM public.film_list films;
CREATE VIEW public.v2 AS SELECT v1.title FROM public.v1;
CREATE OR REPLACE VIEW public.v2 AS SELECT v1.title, v1.fid FROM public.v1;
CREATE MATERIALIZED VIEW public.m AS SELECT film.film_id FROM public.film;
CREATE INDEX m_idx ON public.m USING btree (film_id);
DROP INDEX public.m_idx;
ALTER TYPE public.mpaa_rating ADD VALUE 'NR' AFTER 'G';
CREATE TYPE public.mood AS ENUM ('sad', 'happy');
DROP VIEW public.film_list CASCADE;
DROP INDEX public.idx_last_name`},
}

func TestApplyMatchesServer(t *testing.T) {
	for _, c := range applyCases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			url := dbtest.Pagila(t)
			conn := dbtest.Connect(t, url)
			tree, err := pg_query.Parse(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range tree.Stmts {
				stmt := c.sql[raw.StmtLocation:]
				if raw.StmtLen > 0 {
					stmt = c.sql[raw.StmtLocation : raw.StmtLocation+raw.StmtLen]
				}
				if _, err := conn.Exec(context.Background(), stmt); err != nil {
					t.Fatalf("server refuses %q: %v", stmt, err)
				}
			}
			model := pagila(t).Clone()
			applyAll(t, model, c.sql)
			compareWithServer(t, url, model)
		})
	}
}

// Apply never changes what a Snapshot taken before it holds, nor the
// schema a Clone was taken from.
func TestApplyLeavesSnapshotsAlone(t *testing.T) {
	orig := pagila(t)
	before := orig.Clone()
	if !reflect.DeepEqual(before, orig) {
		t.Fatal("Clone differs from its original")
	}
	s := orig.Snapshot()
	for _, c := range applyCases {
		snap := s.Snapshot()
		frozen := s.Clone()
		work := s.Snapshot()
		applyAll(t, work, c.sql)
		if !reflect.DeepEqual(snap, frozen) {
			t.Errorf("%s: Apply changed a snapshot taken before it", c.name)
		}
		if reflect.DeepEqual(work, frozen) {
			t.Errorf("%s: Apply changed nothing", c.name)
		}
	}
	if !reflect.DeepEqual(orig, before) {
		t.Error("Apply on snapshots changed the original schema")
	}
}

func TestCloneIsDeep(t *testing.T) {
	orig := pagila(t)
	c := orig.Clone()
	c.Tables["public.film"].Columns[0].Name = "changed"
	c.Tables["public.film"].Indexes[0].Columns[0] = "changed"
	c.Views["public.film_list"].Uses[0].Column = "changed"
	c.Enums["public.mpaa_rating"].Values[0] = "changed"
	for _, col := range orig.Tables["public.film"].Columns {
		if col.Name == "changed" {
			t.Fatal("Clone shares columns")
		}
	}
	if orig.Tables["public.film"].Indexes[0].Columns[0] == "changed" || orig.Views["public.film_list"].Uses[0].Column == "changed" ||
		orig.Enums["public.mpaa_rating"].Values[0] == "changed" {
		t.Fatal("Clone shares lists")
	}
}

func TestApplyDetails(t *testing.T) {
	s := pagila(t).Clone()
	applyAll(t, s, `
CREATE TABLE public.n (id integer PRIMARY KEY, a text, c serial);
ALTER TABLE public.payment ADD COLUMN note text;
UPDATE public.film SET title = 'x';
BEGIN; SET lock_timeout = '1s'; COMMIT;
ALTER TABLE public.film RENAME TO movie;
ALTER TABLE public.n RENAME TO n2`)
	n := s.Table("public", "n2")
	if n == nil || n.RowEstimate != 0 || n.Bytes != 0 || n.PrimaryKey() == nil || n.Index("n_pkey") == nil || n.Column("c").Default != "nextval('public.n_c_seq'::regclass)" {
		t.Errorf("new table: %+v", n)
	}
	for _, pk := range s.Tables["public.payment"].Partitions {
		if s.Tables[pk].Column("note") == nil {
			t.Errorf("partition %s lacks the new column", pk)
		}
	}
	if s.Table("public", "film") != nil || s.Table("public", "movie") == nil {
		t.Fatal("rename table: film should be movie")
	}
	if fk := s.Table("public", "inventory").Constraint("inventory_film_id_fkey"); fk.RefTable != "public.movie" || !strings.Contains(fk.Definition, "public.movie") {
		t.Errorf("foreign key to the renamed table: %+v", fk)
	}
	if v := s.Views["public.film_list"]; !contains(v.DependsOn, "public.movie") || contains(v.DependsOn, "public.film") {
		t.Errorf("view depends on %v", v.DependsOn)
	}
	if q := s.Sequences["public.n_c_seq"]; q.OwnedBy == nil || q.OwnedBy.Relation != "public.n2" {
		t.Errorf("sequence owned by %+v", q.OwnedBy)
	}

	// Errors name what is missing; IF EXISTS is no error.
	for sql, want := range map[string]string{
		"ALTER TABLE public.nope ADD COLUMN x int":                "no such table",
		"ALTER TABLE public.actor ALTER COLUMN nope SET NOT NULL": "no column nope",
		"DROP TABLE public.nope":                                  "no such table",
	} {
		tree, _ := pg_query.Parse(sql)
		if err := s.Clone().Apply(tree.Stmts[0].Stmt); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", sql, err, want)
		}
	}
	applyAll(t, s, "DROP TABLE IF EXISTS public.nope; ALTER TABLE IF EXISTS public.nope ADD COLUMN x int; DROP INDEX IF EXISTS public.nope")
}

// BenchmarkApply measures what planning a multi-statement input costs per
// statement on a 1,000-table schema: a Snapshot, and the Apply.
func BenchmarkApply1000Tables(b *testing.B) {
	s, err := schema.ParseDump("generated", schema.BenchDump(1000))
	if err != nil {
		b.Fatal(err)
	}
	tree, err := pg_query.Parse("ALTER TABLE public.t0500 ADD COLUMN x integer DEFAULT 0 NOT NULL")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Snapshot+Apply", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Snapshot().Apply(tree.Stmts[0].Stmt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Clone", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Clone()
		}
	})
}
