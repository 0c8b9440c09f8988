package schema

import (
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// edgeDump holds, hand-written, every way a dump links objects that
// ParseDumpFor must follow: foreign keys written without columns, a chain
// of foreign keys on key columns, partitions declared and attached,
// inheritance, LIKE, views over views, a materialized view with an index,
// enums and domains over them, a trigger calling an unqualified function,
// implicit names that collide with earlier names, names in any case,
// quoted and Unicode-escaped, psql meta-commands, --clean DROPs, empty
// statements and cutover's own schema.
const edgeDump = `\restrict k3y
--
-- a dump
--
DROP TABLE IF EXISTS public.author;
DROP INDEX IF EXISTS public.author_m_idx;
SET search_path = '';;
;
CREATE TYPE public.mood AS ENUM ('happy', 'sad');
ALTER TYPE public.mood ADD VALUE 'meh' AFTER 'happy';
CREATE DOMAIN public.posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN public.mood_d AS public.mood NOT NULL;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE FUNCTION author_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT count(*) FROM author; END;
CREATE SEQUENCE author_id_seq;
CREATE TABLE other (x int CONSTRAINT chapter_id_check CHECK (x > 0));
CREATE TABLE author (id serial PRIMARY KEY, m mood, n posint, d mood_d);
CREATE TABLE imprint (name text PRIMARY KEY);
CREATE TABLE book (author_id integer PRIMARY KEY REFERENCES author, title text UNIQUE, imprint_name text REFERENCES imprint);
CREATE TABLE chapter (id int CHECK (id > 0), book_author_id integer REFERENCES book (author_id), own int);
ALTER TABLE chapter ADD CONSTRAINT chapter_book_key UNIQUE (book_author_id);
CREATE TABLE footnote (chapter_ref int);
CREATE TABLE review (id int PRIMARY KEY, book_title text REFERENCES book (title));
CREATE TABLE ledger (id bigint NOT NULL);
ALTER TABLE ledger ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME public.chapter_seq_like START WITH 1);
CREATE SEQUENCE serial_numbers;
ALTER SEQUENCE serial_numbers OWNED BY review.id;
CREATE TABLE events (id bigint, at date NOT NULL, kind text CHECK (kind <> '')) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 (id bigint, at date NOT NULL, kind text CONSTRAINT events_kind_check CHECK (kind <> ''));
ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX events_at_idx ON ONLY events (at);
CREATE INDEX part_idx_2025 ON events_2025 (at);
ALTER INDEX events_at_idx ATTACH PARTITION part_idx_2025;
CREATE TABLE parent_row (id int DEFAULT 7, created timestamptz);
CREATE TABLE child_row (extra text) INHERITS (parent_row);
CREATE TABLE copied_row (LIKE parent_row INCLUDING DEFAULTS, x int);
CREATE VIEW author_books AS SELECT author.id, title FROM author JOIN book ON book.author_id = author.id;
CREATE VIEW recent_author_books AS SELECT * FROM author_books WHERE id > 1;
CREATE MATERIALIZED VIEW chapter_owners AS SELECT id, own FROM chapter;
CREATE INDEX ON chapter_owners (id);
CREATE TRIGGER author_touch BEFORE UPDATE ON author FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TABLE "Mixed Case" ("Col" int, "quote""d" int);
CREATE TABLE Upper_Unquoted (x int);
ALTER TABLE UPPER_UNQUOTED ADD COLUMN y int;
CREATE TABLE U&"\0075ni" (x int);
ALTER TABLE uni ADD COLUMN y int;
CREATE INDEX ON uni (y);
CREATE SCHEMA cutover;
CREATE TABLE cutover.state (author_id int);
ALTER TABLE ONLY footnote ADD CONSTRAINT footnote_fkey FOREIGN KEY (chapter_ref) REFERENCES chapter (book_author_id);
-- trailing comment
\unrestrict k3y
`

// TestParseDumpForObjectsAreFull checks, for every object of each dump
// taken as the target on its own, that every object ParseDumpFor loads is
// the one ParseDump makes.
func TestParseDumpForObjectsAreFull(t *testing.T) {
	pagila, err := os.ReadFile("../testdata/pagila/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	for name, dump := range map[string]string{"edge": edgeDump, "pagila": string(pagila), "generated": generateDump(30)} {
		full, err := ParseDump(name, dump)
		if err != nil {
			t.Fatal(err)
		}
		var rels, types []string
		for k, tab := range full.Tables {
			rels = append(rels, k)
			for _, ix := range tab.Indexes {
				rels = append(rels, Key(tab.Schema, ix.Name))
			}
		}
		for k := range full.Views {
			rels = append(rels, k)
		}
		for k := range full.Sequences {
			rels = append(rels, k)
		}
		for k := range full.Enums {
			types = append(types, k)
		}
		for k := range full.Domains {
			types = append(types, k)
		}
		rels = append(rels, "public.nothing", "public.UPPER_UNQUOTED")
		sort.Strings(rels)
		sort.Strings(types)
		check := func(rels, types []string) {
			part, err := ParseDumpFor(name, dump, rels, types)
			if err != nil {
				t.Fatalf("%s %v %v: %v", name, rels, types, err)
			}
			what := name + " " + strings.Join(append(rels, types...), ",")
			sameModelObjects(t, what, full, part)
			for _, k := range rels {
				if full.Tables[k] != nil && part.Tables[k] == nil {
					t.Errorf("%s: target table %s not loaded", what, k)
				}
				if full.Views[k] != nil && part.Views[k] == nil {
					t.Errorf("%s: target view %s not loaded", what, k)
				}
			}
			for _, k := range types {
				if (full.Enums[k] != nil && part.Enums[k] == nil) || (full.Domains[k] != nil && part.Domains[k] == nil) {
					t.Errorf("%s: target type %s not loaded", what, k)
				}
			}
		}
		for _, k := range rels {
			check([]string{k}, nil)
		}
		for _, k := range types {
			check(nil, []string{k})
		}
	}
}

// sameModelObjects checks that every object of part is the full model's.
func sameModelObjects(t *testing.T, what string, full, part *Schema) {
	t.Helper()
	for k, v := range part.Tables {
		if !reflect.DeepEqual(v, full.Tables[k]) {
			t.Errorf("%s: table %s:\n got %+v\nwant %+v", what, k, v, full.Tables[k])
		}
	}
	for k, v := range part.Views {
		if !reflect.DeepEqual(v, full.Views[k]) {
			t.Errorf("%s: view %s:\n got %+v\nwant %+v", what, k, v, full.Views[k])
		}
	}
	for k, v := range part.Enums {
		if !reflect.DeepEqual(v, full.Enums[k]) {
			t.Errorf("%s: enum %s:\n got %+v\nwant %+v", what, k, v, full.Enums[k])
		}
	}
	for k, v := range part.Domains {
		if !reflect.DeepEqual(v, full.Domains[k]) {
			t.Errorf("%s: domain %s:\n got %+v\nwant %+v", what, k, v, full.Domains[k])
		}
	}
	for k, v := range part.Sequences {
		if !reflect.DeepEqual(v, full.Sequences[k]) {
			t.Errorf("%s: sequence %s:\n got %+v\nwant %+v", what, k, v, full.Sequences[k])
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestParseDumpForSelection checks what is loaded for a target, and what
// is not.
func TestParseDumpForSelection(t *testing.T) {
	for _, c := range []struct {
		name        string
		rels, types []string
		want, not   []string // relation, type or sequence keys
	}{
		{"foreign keys both ways, views, types, sequences, trigger function", []string{"public.author"}, nil,
			// book references author; chapter and footnote follow
			// author.id through book.author_id and chapter.book_author_id;
			// author_books reads author, recent_author_books reads it;
			// chapter_owners reads chapter; the enum and domains of
			// author's columns; its own sequence (author_id_seq is taken:
			// author_id_seq1) and the one named like it.
			[]string{"public.author", "public.book", "public.chapter", "public.footnote", "public.author_books",
				"public.recent_author_books", "public.chapter_owners", "public.mood", "public.posint", "public.mood_d",
				"public.author_id_seq1", "public.author_id_seq"},
			// review references book.title, which no type change of
			// author.id reaches.
			[]string{"public.review", "public.events", "public.parent_row"}},
		{"a referencing table's neighbours are not followed", []string{"public.review"}, nil,
			// book's foreign key to imprint names no column: imprint's
			// primary key completes it.
			[]string{"public.review", "public.book", "public.serial_numbers", "public.imprint"},
			[]string{"public.chapter", "public.footnote", "public.chapter_owners"}},
		{"a name a derived name could collide with", []string{"public.chapter"}, nil,
			[]string{"public.chapter", "public.other", "public.ledger", "public.chapter_seq_like"}, []string{"public.review"}},
		{"a partition brings its tree", []string{"public.events_2024"}, nil,
			[]string{"public.events", "public.events_2024", "public.events_2025"}, []string{"public.author"}},
		{"an inheritance child brings its parent, LIKE its source", []string{"public.child_row", "public.copied_row"}, nil,
			[]string{"public.child_row", "public.parent_row", "public.copied_row"}, []string{"public.author"}},
		{"an index names its table", []string{"public.part_idx_2025"}, nil,
			[]string{"public.events", "public.events_2024", "public.events_2025"}, []string{"public.author"}},
		{"a type brings the tables using it, not their neighbours", nil, []string{"public.mood"},
			[]string{"public.mood", "public.author"}, []string{"public.chapter", "public.review"}},
		{"case and quoting", []string{"public.Mixed Case", "public.upper_unquoted", "public.uni"}, nil,
			[]string{"public.Mixed Case", "public.upper_unquoted", "public.uni"}, []string{"public.author"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			full := mustParse(t, edgeDump)
			part, err := ParseDumpFor("edge.sql", edgeDump, c.rels, c.types)
			if err != nil {
				t.Fatal(err)
			}
			sameModelObjects(t, c.name, full, part)
			has := func(k string) bool {
				return part.Tables[k] != nil || part.Views[k] != nil || part.Enums[k] != nil || part.Domains[k] != nil || part.Sequences[k] != nil
			}
			for _, k := range c.want {
				if !has(k) {
					t.Errorf("%s not loaded", k)
				}
			}
			for _, k := range c.not {
				if has(k) {
					t.Errorf("%s loaded", k)
				}
			}
			if t.Failed() {
				t.Logf("loaded tables %v views %v sequences %v", keysOf(part.Tables), keysOf(part.Views), keysOf(part.Sequences))
			}
		})
	}
}

// TestParseDumpForErrors: errors in what is parsed are ParseDump's; a
// split that cannot be trusted falls back to ParseDump.
func TestParseDumpForErrors(t *testing.T) {
	for _, c := range []struct{ name, sql string }{
		{"syntax error in a parsed statement", "CREATE TABLE a (x int);\nCREATE TABLE b (\n  y int,,\n  z int\n);\nALTER TABLE b ADD COLUMN w int;\n"},
		{"unterminated string", "CREATE TABLE a (x int);\nCREATE TABLE z (y text DEFAULT 'oops);\n"},
		{"unterminated identifier", "CREATE TABLE a (x int);\nCREATE TABLE \"z (y int);\n"},
		{"stray parenthesis", "CREATE TABLE z (y int));\nCREATE TABLE a (x int);\n"},
		{"statement without a keyword", "CREATE TABLE a (x int);\nfoo bar;\nCREATE TABLE b (y int);\n"},
		{"statement without a keyword at the end", "CREATE TABLE a (x int);\nfoo bar;\n"},
		{"unknown column", "CREATE TABLE a (x int);\nALTER TABLE a ALTER COLUMN y SET DEFAULT 1;"},
		{"meta-command line kept", "\\restrict k\nCREATE TABLE a (x int,,);\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, want := ParseDump("bad.sql", c.sql)
			_, got := ParseDumpFor("bad.sql", c.sql, []string{"public.a", "public.b"}, nil)
			if want == nil || got == nil || got.Error() != want.Error() {
				t.Errorf("got %v\nwant %v", got, want)
			}
		})
	}
	// Not validated: a statement the prefilter discards.
	if _, err := ParseDumpFor("bad.sql", "CREATE TABLE accounts (x int);\nCREATE TABLE zebra (y int,,);\n", []string{"public.accounts"}, nil); err != nil {
		t.Errorf("a syntax error in a statement not about accounts: %v", err)
	}
	// A statement split wrongly (BEGIN ATOMIC bodies hold semicolons) that
	// names the target is parsed whole.
	dump := "CREATE TABLE accounts (x int);\nCREATE FUNCTION n() RETURNS bigint LANGUAGE sql\n  BEGIN ATOMIC SELECT 1; SELECT count(*) FROM accounts; END;\nCREATE INDEX accounts_x ON accounts (x);\n"
	full := mustParse(t, dump)
	part, err := ParseDumpFor("f.sql", dump, []string{"public.accounts"}, nil)
	if err != nil || !reflect.DeepEqual(part.Tables, full.Tables) {
		t.Errorf("BEGIN ATOMIC: %v %+v", err, part)
	}
}

// BenchmarkParseDumpFor1000Tables loads what a change of one table needs
// from the 1,000-table dump.
func BenchmarkParseDumpFor1000Tables(b *testing.B) {
	sql := generateDump(1000)
	defer func(v bool) { verifyFastPaths = v }(verifyFastPaths)
	verifyFastPaths = false
	b.SetBytes(int64(len(sql)))
	for i := 0; i < b.N; i++ {
		s, err := ParseDumpFor("bench.sql", sql, []string{"public.t0500"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if s.Tables["public.t0500"] == nil || len(s.Tables) > 5 {
			b.Fatalf("got %v", keysOf(s.Tables))
		}
	}
}
