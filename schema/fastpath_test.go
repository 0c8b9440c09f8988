package schema

import "testing"

// Every test in this package runs with the fast deparse paths checked
// against the deparser.
func init() { verifyFastPaths = true }

// The fast paths against the deparser, on shapes chosen to hit every
// branch (the deparser is the reference: verifyFastPaths panics on any
// difference).
func TestFastPathsAgreeWithDeparser(t *testing.T) {
	exprs := []string{
		"0", "-1", "42", "4.99", "-0.5", "1e10", "true", "false", "NULL", "'it''s'", "'back\\slash'", "E'a\\nb'",
		"''", "'ünï'", "now()", "gen_random_uuid()", "\"Weird Func\"(1, 'x')", "public.f(1)", "nextval('public.s'::regclass)",
		"nextval('public.\"Order Items_id_seq\"'::regclass)", "'G'::public.mpaa_rating", "'x'::\"My Type\"",
		"'new'::character varying", "'5'::integer", "(-5)::bigint", "'1.5'::numeric", "1.5::numeric", "(-1)::int",
		"'t'::boolean", "'a'::char", "'a'::character(3)", "'1 day'::interval", "'2020-01-01'::timestamp with time zone",
		"'12:00'::time with time zone", "'{}'::text[]", "'{}'::character varying[]", "'x'::pg_catalog.text",
		"CURRENT_DATE", "CURRENT_TIMESTAMP", "LOCALTIMESTAMP", "CURRENT_TIME(3)", "CURRENT_USER", "USER",
		"SESSION_USER", "CURRENT_SCHEMA", "CURRENT_CATALOG", "CURRENT_ROLE", "LOCALTIME",
		"count(*)", "sum(DISTINCT x)", "coalesce(a, 1)", "'(1,2)'::point", "point '(1,2)'", "B'101'", "X'1F'",
		"lower('A')", "upper(lower('a'))", "now()::date", "'{1,2}'::int[]", "'x'::varchar(10)",
	}
	for _, e := range exprs {
		if _, err := CanonicalExpr(e); err != nil {
			t.Errorf("%s: %v", e, err)
		}
	}
	constraints := []string{
		"PRIMARY KEY (id)", "PRIMARY KEY (a, \"B\", \"user\")", "UNIQUE (\"order\")", "UNIQUE NULLS NOT DISTINCT (a)",
		"UNIQUE (a) INCLUDE (b)", "PRIMARY KEY (a) WITH (fillfactor='70')", "UNIQUE (a) DEFERRABLE INITIALLY DEFERRED",
		"PRIMARY KEY (a) USING INDEX TABLESPACE ts",
		"FOREIGN KEY (a) REFERENCES t(b)", "FOREIGN KEY (a, b) REFERENCES public.\"T t\"(c, d) MATCH FULL",
		"FOREIGN KEY (a) REFERENCES t(b) ON UPDATE SET NULL ON DELETE SET DEFAULT",
		"FOREIGN KEY (a) REFERENCES t(b) ON UPDATE RESTRICT ON DELETE CASCADE DEFERRABLE",
		"FOREIGN KEY (a) REFERENCES t(b) ON DELETE SET NULL (a)", "FOREIGN KEY (a) REFERENCES t(b) ON UPDATE NO ACTION NOT VALID",
		"FOREIGN KEY (a) REFERENCES t", "CHECK (a > 0)", "CHECK (a > 0) NO INHERIT", "EXCLUDE USING gist (c WITH &&)",
	}
	for _, c := range constraints {
		if _, err := CanonicalConstraint(c); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
	// Index statements go through the loader; compare through ParseDump.
	if _, err := ParseDump("ix.sql", `CREATE TABLE "T t" (a int, "B" int, "user" text, "order" int);
CREATE INDEX i1 ON "T t" (a);
CREATE UNIQUE INDEX "I 2" ON ONLY public."T t" USING hash ("user");
CREATE INDEX i3 ON "T t" (a, "B", "order") INCLUDE ("user");
CREATE INDEX i4 ON "T t" (a DESC);
CREATE INDEX i5 ON "T t" (a text_ops);
CREATE INDEX i6 ON "T t" (a COLLATE "C");
CREATE INDEX i7 ON "T t" (a) WITH (fillfactor = 50);
CREATE UNIQUE INDEX i8 ON "T t" (a) NULLS NOT DISTINCT;
CREATE INDEX i9 ON "T t" ((a + 1));`); err != nil {
		t.Fatal(err)
	}
}
