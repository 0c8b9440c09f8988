package planner

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/cutover/cutover/schema"
)

// checkSchema is a small schema for the checker's tests.
const checkSchemaSQL = `
CREATE TABLE public.t (id bigint NOT NULL, a integer, b text, v character varying(20), d text DEFAULT 'x'::text NOT NULL, created timestamp with time zone);
ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);
CREATE TABLE public.u (id bigint, ref bigint, c integer, CONSTRAINT u_c_not_null CHECK ((c IS NOT NULL)));
CREATE UNIQUE INDEX u_id_key ON public.u USING btree (id);
CREATE UNIQUE INDEX u_c_key ON public.u USING btree (c);
CREATE TABLE public.events (id bigint NOT NULL, at timestamp with time zone NOT NULL, kind text) PARTITION BY RANGE (at);
CREATE TABLE public.events_2024 (id bigint NOT NULL, at timestamp with time zone NOT NULL, kind text);
ALTER TABLE ONLY public.events ATTACH PARTITION public.events_2024 FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2025-01-01 00:00:00+00');
CREATE INDEX events_kind_idx ON ONLY public.events USING btree (kind);
CREATE INDEX events_2024_kind_idx ON public.events_2024 USING btree (kind);
ALTER INDEX public.events_kind_idx ATTACH PARTITION public.events_2024_kind_idx;
CREATE VIEW public.tv AS SELECT t.id FROM public.t;
`

// got runs the checker and lists its findings as "line:column RULE", with
// " (suppressed)" for a suppressed one.
func got(t *testing.T, src Source, s *schema.Schema) []string {
	t.Helper()
	fs, err := NewChecker(CheckOptions{Schema: s}).Check(src)
	if err != nil {
		t.Fatalf("check %q: %v", src.SQL, err)
	}
	return render(fs)
}

func render(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		s := fmt.Sprintf("%d:%d %s", f.Line, f.Column, f.Rule)
		if f.Suppressed != "" {
			s += " (suppressed)"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func same(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type checkCase struct {
	name string
	sql  string
	tx   TxMode
	want []string
}

func runCheckCases(t *testing.T, s *schema.Schema, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := got(t, Source{Name: "m.sql", SQL: tc.sql, Tx: tc.tx, TxNote: "the tool's transaction"}, s)
			want := append([]string{}, tc.want...)
			sort.Strings(want)
			if !same(g, want) {
				t.Errorf("findings %v, want %v\n%s", g, want, tc.sql)
			}
		})
	}
}

// Positions are the first token's, in characters, past comments.
func TestCheckPositions(t *testing.T) {
	runCheckCases(t, nil, []checkCase{
		{"leading comments", "SET lock_timeout = '1s';\n-- c\n\n  /* x */ ALTER TABLE t RENAME COLUMN a TO b;", TxNone, []string{"4:11 CUT001"}},
		{"two on a line", "SET lock_timeout = '1s'; SELECT 1; CREATE INDEX i ON t (a);", TxNone, []string{"1:36 CUT013"}},
		{"characters, not bytes", "SET lock_timeout = '1s';\n/* éé */ DROP TABLE t;", TxNone, []string{"2:10 CUT004"}},
		{"tabs count one", "SET lock_timeout = '1s';\n\t\tDROP TABLE t;", TxNone, []string{"2:3 CUT004"}},
		{"after a dollar-quoted body", "SET lock_timeout = '1s';\nDO $$ BEGIN PERFORM 1; END $$;\n  DROP TABLE t;", TxNone, []string{"3:3 CUT004"}},
	})
}

func TestCheckErrorsArePositioned(t *testing.T) {
	s := schemaOf(t, checkSchemaSQL)
	for _, tc := range []struct {
		name, sql string
		s         *schema.Schema
		want      string
	}{
		{"syntax", "SELECT 1;\n\nALTER TABL t ADD COLUMN x int;", nil, "m.sql:3:7: syntax error: syntax error at or near \"TABL\""},
		{"unknown table", "-- first\n  ALTER TABLE nope RENAME COLUMN a TO b;", s, "m.sql:2:3: \"ALTER TABLE nope RENAME COLUMN a TO b\": table public.nope does not exist in the schema"},
		{"unknown column after a rename", "ALTER TABLE t RENAME COLUMN a TO aa;\nALTER TABLE t DROP COLUMN a;", s, "m.sql:2:1: \"ALTER TABLE t DROP COLUMN a\": column a does not exist in table public.t"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewChecker(CheckOptions{Schema: tc.s}).Check(Source{Name: "m.sql", SQL: tc.sql})
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want a *CheckError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q, want it to start %q", err, tc.want)
			}
		})
	}
}

// Each operation's naive() against a schema.
func TestCheckNaiveWithSchema(t *testing.T) {
	s := schemaOf(t, checkSchemaSQL)
	const lt = "SET lock_timeout = '1s';\n"
	runCheckCases(t, s, []checkCase{
		{"binary-coercible type change", lt + "ALTER TABLE t ALTER COLUMN v TYPE varchar(40);", TxNone, nil},
		{"rewriting type change", lt + "ALTER TABLE t ALTER COLUMN a TYPE bigint;", TxNone, []string{"2:1 CUT006"}},
		{"stable default", lt + "ALTER TABLE t ADD COLUMN at timestamptz DEFAULT now();", TxNone, nil},
		{"unknown function default", lt + "ALTER TABLE t ADD COLUMN x int DEFAULT my_fn();", TxNone, []string{"2:1 CUT007"}},
		{"serial column", lt + "ALTER TABLE t ADD COLUMN n serial;", TxNone, []string{"2:1 CUT007"}},
		{"inline foreign key", lt + "ALTER TABLE u ADD COLUMN t_id bigint REFERENCES t (id);", TxNone, []string{"2:1 CUT011"}},
		{"inline unique", lt + "ALTER TABLE t ADD COLUMN code text UNIQUE;", TxNone, []string{"2:1 CUT012"}},
		{"set not null proven by a check", lt + "ALTER TABLE u ALTER COLUMN c SET NOT NULL;", TxNone, nil},
		{"set not null already", lt + "ALTER TABLE t ALTER COLUMN d SET NOT NULL;", TxNone, nil},
		{"primary key using index on a nullable column", lt + "ALTER TABLE u ADD CONSTRAINT u_pkey PRIMARY KEY USING INDEX u_id_key;", TxNone, []string{"2:1 CUT012"}},
		{"primary key using index on a proven column", lt + "ALTER TABLE u ADD CONSTRAINT u_pkey PRIMARY KEY USING INDEX u_c_key;", TxNone, nil},
		{"drop default of a NOT NULL column", lt + "ALTER TABLE t ALTER COLUMN d DROP DEFAULT;", TxNone, []string{"2:1 CUT015"}},
		{"index on a partitioned table", lt + "CREATE INDEX events_id_idx ON events (id);", TxNone, []string{"2:1 CUT013"}},
		{"index ON ONLY a partitioned table", lt + "CREATE INDEX events_id_idx ON ONLY events (id);", TxNone, nil},
		{"drop a partitioned index", lt + "DROP INDEX events_kind_idx;", TxNone, nil},
		{"rename a view", lt + "ALTER VIEW tv RENAME TO tv2;", TxNone, []string{"2:1 CUT002"}},
		{"rename an index", "ALTER INDEX u_c_key RENAME TO u_c_uniq;", TxNone, nil},
		{"partition of an existing table", "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');", TxNone, []string{"1:1 CUT103"}},
		{"foreign key of a new table", "CREATE TABLE w (id bigint, t_id bigint REFERENCES t (id));", TxNone, []string{"1:1 CUT103"}},
		{"new table referencing a new table", "CREATE TABLE w (id bigint PRIMARY KEY);\nCREATE TABLE w2 (w_id bigint REFERENCES w (id));", TxNone, nil},
		{"validate", "ALTER TABLE u VALIDATE CONSTRAINT u_c_not_null;", TxNone, nil},
	})
	old := schemaOf(t, checkSchemaSQL)
	old.ServerVersion = 100023
	runCheckCases(t, old, []checkCase{
		{"default before PostgreSQL 11", lt + "ALTER TABLE t ADD COLUMN flag boolean DEFAULT false;", TxNone, []string{"2:1 CUT007"}},
		{"NOT NULL proof before PostgreSQL 12", lt + "ALTER TABLE u ALTER COLUMN c SET NOT NULL;", TxNone, []string{"2:1 CUT009"}},
	})
}

// Without a schema, what cannot be known is reported (type changes) or
// assumed safe (DROP DEFAULT), and the set's own statements are facts.
func TestCheckWithoutSchema(t *testing.T) {
	const lt = "SET lock_timeout = '1s';\n"
	runCheckCases(t, nil, []checkCase{
		{"type change", lt + "ALTER TABLE t ALTER COLUMN v TYPE varchar(40);", TxNone, []string{"2:1 CUT006"}},
		{"drop default", lt + "ALTER TABLE t ALTER COLUMN d DROP DEFAULT;", TxNone, nil},
		{"not null proven in the set", lt + "ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL AND a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;", TxNone, nil},
		{"not null proven, unnamed check", lt + "ALTER TABLE t ADD CHECK (a IS NOT NULL) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT t_a_check;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;", TxNone, nil},
		{"not null not proven for another column", lt + "ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;\nALTER TABLE t ALTER COLUMN b SET NOT NULL;", TxNone, []string{"4:1 CUT009"}},
		{"not valid, never validated", lt + "ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;", TxNone, []string{"3:1 CUT009"}},
		{"update that cannot be batched", lt + "UPDATE t SET a = u.c FROM u WHERE u.ref = t.id;", TxNone, []string{"2:1 CUT016"}},
		{"delete", lt + "DELETE FROM t WHERE a IS NULL;", TxNone, []string{"2:1 CUT016"}},
		{"vacuum full", lt + "VACUUM FULL t;", TxNone, []string{"2:1 CUT017"}},
		{"vacuum (full false)", lt + "VACUUM (FULL false) t;", TxNone, nil},
		{"cluster", lt + "CLUSTER t USING t_pkey;", TxNone, []string{"2:1 CUT017"}},
		{"reindex", lt + "REINDEX TABLE t;", TxNone, []string{"2:1 CUT017"}},
		{"reindex concurrently", lt + "REINDEX INDEX CONCURRENTLY t_pkey;", TxNone, nil},
		{"set tablespace", lt + "ALTER TABLE t SET TABLESPACE fast;", TxNone, []string{"2:1 CUT017"}},
		{"set logged", lt + "ALTER TABLE t SET LOGGED;", TxNone, []string{"2:1 CUT017"}},
		{"rewrite of a new table", lt + "CREATE TABLE n (id int);\nALTER TABLE n ADD COLUMN s serial;\nALTER TABLE n SET LOGGED;", TxNone, nil},
		{"not judged", "GRANT SELECT ON t TO app;\nINSERT INTO t (id) VALUES (1);\nCREATE TRIGGER x BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f();", TxNone, nil},
	})
}

// The rules about sequences of statements.
func TestCheckContext(t *testing.T) {
	const add = "ALTER TABLE t ADD COLUMN c int;"
	runCheckCases(t, nil, []checkCase{
		{"no lock_timeout", add, TxNone, []string{"1:1 CUT103"}},
		{"session lock_timeout", "SET lock_timeout = '1s';\n" + add, TxNone, nil},
		{"lock_timeout in milliseconds", "SET lock_timeout TO 500;\n" + add, TxNone, nil},
		{"lock_timeout 0 disables it", "SET lock_timeout = 0;\n" + add, TxNone, []string{"2:1 CUT103"}},
		{"lock_timeout '0s' disables it", "SET lock_timeout = '0s';\n" + add, TxNone, []string{"2:1 CUT103"}},
		{"RESET", "SET lock_timeout = '1s';\nRESET lock_timeout;\n" + add, TxNone, []string{"3:1 CUT103"}},
		{"RESET ALL", "SET lock_timeout = '1s';\nRESET ALL;\n" + add, TxNone, []string{"3:1 CUT103"}},
		{"TO DEFAULT", "SET lock_timeout = '1s';\nSET lock_timeout TO DEFAULT;\n" + add, TxNone, []string{"3:1 CUT103"}},
		{"SET LOCAL outside a transaction", "SET LOCAL lock_timeout = '1s';\n" + add, TxNone, []string{"2:1 CUT103"}},
		{"SET LOCAL ends with the transaction", "BEGIN;\nSET LOCAL lock_timeout = '1s';\n" + add + "\nCOMMIT;\n" + add, TxNone, []string{"5:1 CUT103"}},
		{"ROLLBACK undoes a session SET", "BEGIN;\nSET lock_timeout = '1s';\nROLLBACK;\n" + add, TxNone, []string{"4:1 CUT103"}},
		{"COMMIT keeps a session SET", "BEGIN;\nSET lock_timeout = '1s';\nCOMMIT;\n" + add, TxNone, nil},
		{"set_config, local, in a transaction", "BEGIN;\nSELECT set_config('lock_timeout', '1s', true);\n" + add + "\nCOMMIT;", TxNone, nil},
		{"set_config, session", "SELECT pg_catalog.set_config('lock_timeout', '1s', false);\n" + add, TxNone, nil},
		{"tool transaction and SET LOCAL", "SET LOCAL lock_timeout = '1s';\n" + add, TxFile, nil},
		{"lock on a new table", "CREATE TABLE n (id int);\nALTER TABLE n ADD COLUMN c int;\nCREATE INDEX ON n (c);", TxNone, nil},
		{"no lock that matters", "ALTER TABLE t VALIDATE CONSTRAINT c;\nCREATE INDEX CONCURRENTLY i ON t (a);", TxNone, nil},

		{"concurrently in BEGIN", "BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;", TxNone, []string{"2:1 CUT101"}},
		{"concurrently after COMMIT", "BEGIN;\nCOMMIT;\nDROP INDEX CONCURRENTLY i;", TxNone, nil},
		{"concurrently in the tool's transaction", "CREATE INDEX CONCURRENTLY i ON t (a);", TxFile, []string{"1:1 CUT101"}},
		{"alone in one query", "CREATE INDEX CONCURRENTLY i ON t (a);", TxImplicit, nil},
		{"with another statement in one query", "SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY i ON t (a);", TxImplicit, []string{"2:1 CUT101"}},
		{"after COMMIT in one query", "BEGIN;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);", TxImplicit, []string{"3:1 CUT101"}},
		{"only non-transactional statements", "CREATE INDEX CONCURRENTLY i ON t (a);\nDROP INDEX CONCURRENTLY j;", TxUnlessNonTransactional, nil},
		{"mixed with others", "SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY i ON t (a);", TxUnlessNonTransactional, []string{"2:1 CUT101"}},
		{"vacuum in a transaction", "BEGIN;\nVACUUM t;\nCOMMIT;", TxNone, []string{"2:1 CUT101"}},
		{"detach concurrently in a transaction", "BEGIN;\nALTER TABLE events DETACH PARTITION events_2024 CONCURRENTLY;\nCOMMIT;", TxNone, []string{"2:1 CUT101"}},
		{"reindex concurrently in a transaction", "REINDEX TABLE CONCURRENTLY t;", TxFile, []string{"1:1 CUT101"}},

		{"validate in the same transaction", "SET lock_timeout = '1s';\nBEGIN;\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;\nCOMMIT;", TxNone, []string{"4:1 CUT102"}},
		{"validate after COMMIT", "SET lock_timeout = '1s';\nBEGIN;\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nCOMMIT;\nALTER TABLE t VALIDATE CONSTRAINT c;", TxNone, nil},
		{"validate in the tool's transaction", "SET lock_timeout = '1s';\nALTER TABLE t ADD CONSTRAINT c FOREIGN KEY (a) REFERENCES u (id) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;", TxFile, []string{"3:1 CUT102"}},
		{"validate of an unnamed constraint", "SET lock_timeout = '1s';\nBEGIN;\nALTER TABLE t ADD CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT t_a_check;\nCOMMIT;", TxNone, []string{"4:1 CUT102"}},
		{"validate of another table's constraint", "SET lock_timeout = '1s';\nBEGIN;\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE u VALIDATE CONSTRAINT c;\nCOMMIT;", TxNone, nil},
		{"autocommit", "SET lock_timeout = '1s';\nALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;", TxNone, nil},
	})
}

func TestCheckIgnore(t *testing.T) {
	const lt = "SET lock_timeout = '1s';\n"
	runCheckCases(t, nil, []checkCase{
		{"suppressed", lt + "-- cutover:ignore CUT004 scratch table\nDROP TABLE t;", TxNone, []string{"3:1 CUT004 (suppressed)"}},
		{"two rules, lower case", "-- cutover:ignore cut004,CUT103 scratch table\nDROP TABLE t;", TxNone, []string{"2:1 CUT004 (suppressed)", "2:1 CUT103 (suppressed)"}},
		{"two comments", "-- cutover:ignore CUT004 scratch table\n-- cutover:ignore CUT103 nobody uses it\nDROP TABLE t;", TxNone, []string{"3:1 CUT004 (suppressed)", "3:1 CUT103 (suppressed)"}},
		{"comment lines between", lt + "-- cutover:ignore CUT004 scratch table\n-- +goose StatementBegin\nDROP TABLE t;\n-- +goose StatementEnd", TxNone, []string{"4:1 CUT004 (suppressed)"}},
		{"another rule", lt + "-- cutover:ignore CUT013 scratch table\nDROP TABLE t;", TxNone, []string{"3:1 CUT004"}},
		{"no reason", lt + "-- cutover:ignore CUT004\nDROP TABLE t;", TxNone, []string{"2:1 CUT901", "3:1 CUT004"}},
		{"no rule", lt + "-- cutover:ignore\nDROP TABLE t;", TxNone, []string{"2:1 CUT901", "3:1 CUT004"}},
		{"unknown rule", lt + "-- cutover:ignore CUT004,CUT404 typo\nDROP TABLE t;", TxNone, []string{"2:1 CUT901", "3:1 CUT004"}},
		{"blank line before the statement", lt + "-- cutover:ignore CUT004 scratch\n\nDROP TABLE t;", TxNone, []string{"2:1 CUT901", "4:1 CUT004"}},
		{"after a statement on its line", lt + "SELECT 1; -- cutover:ignore CUT004 scratch\nDROP TABLE t;", TxNone, []string{"2:11 CUT901", "3:1 CUT004"}},
		{"at the end of the file", lt + "DROP TABLE t;\n-- cutover:ignore CUT004 scratch", TxNone, []string{"2:1 CUT004", "3:1 CUT901"}},
		{"in a string", lt + "SELECT '\n-- cutover:ignore CUT004 scratch';\nDROP TABLE t;", TxNone, []string{"4:1 CUT004"}},
		{"in a block comment", lt + "/* cutover:ignore CUT004 scratch */\nDROP TABLE t;", TxNone, []string{"3:1 CUT004"}},
		{"not the directive", lt + "-- cutover:ignored CUT004 scratch\nDROP TABLE t;", TxNone, []string{"3:1 CUT004"}},
		{"in a file without statements", "-- cutover:ignore CUT004 scratch\n", TxNone, []string{"1:1 CUT901"}},
	})
}

// The files of a set are one input: tables created in an earlier file are
// new, and the schema evolves across files.
func TestCheckAcrossFiles(t *testing.T) {
	s := schemaOf(t, checkSchemaSQL)
	c := NewChecker(CheckOptions{Schema: s})
	files := []Source{
		{Name: "1.sql", SQL: "SET lock_timeout = '1s';\nCREATE TABLE n (id int);\nALTER TABLE t RENAME COLUMN b TO bb;"},
		{Name: "2.sql", SQL: "SET lock_timeout = '1s';\nCREATE INDEX ON n (id);\nALTER TABLE t ALTER COLUMN bb SET NOT NULL;"},
	}
	var all []Finding
	for _, f := range files {
		fs, err := c.Check(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, fs...)
	}
	var keys []string
	for _, f := range all {
		keys = append(keys, fmt.Sprintf("%s:%d %s", f.File, f.Line, f.Rule))
	}
	if want := []string{"1.sql:3 CUT001", "2.sql:3 CUT009"}; !same(keys, want) {
		t.Errorf("findings %v, want %v", keys, want)
	}
	if st := c.Stats(); st.Files != 2 || st.Statements != 6 || st.Unjudged != 0 {
		t.Errorf("stats %+v", st)
	}
}

// With Plans, each statement rule's finding carries the statement's safe
// plan, planned against the schema at that point.
func TestCheckPlans(t *testing.T) {
	s := schemaOf(t, checkSchemaSQL)
	sql := "-- the migration\nALTER TABLE t RENAME COLUMN b TO bb;\nALTER TABLE t ALTER COLUMN bb SET NOT NULL;\nVACUUM FULL t;"
	fs, err := NewChecker(CheckOptions{Schema: s, Plans: true}).Check(Source{Name: "m.sql", SQL: sql})
	if err != nil {
		t.Fatal(err)
	}
	byRule := map[string]Finding{}
	for _, f := range fs {
		byRule[f.Rule] = f
	}
	rename := byRule[RuleRenameColumn]
	if rename.Plan == nil || rename.Plan.Input != "ALTER TABLE t RENAME COLUMN b TO bb" {
		t.Fatalf("rename finding plan %+v (error %q)", rename.Plan, rename.PlanError)
	}
	assertParses(t, rename.Plan)
	if rename.Plan.Facts.Source != s.Source {
		t.Errorf("plan facts source %q", rename.Plan.Facts.Source)
	}
	notNull := byRule[RuleSetNotNull]
	if notNull.Plan == nil || !strings.Contains(shape(notNull.Plan), "contract") && len(notNull.Plan.Steps()) < 3 {
		t.Errorf("SET NOT NULL plan: %+v (error %q)", notNull.Plan, notNull.PlanError)
	}
	vac := byRule[RuleRewrite]
	if vac.Plan != nil || !strings.Contains(vac.PlanError, "pg_repack") {
		t.Errorf("VACUUM FULL: plan %v, error %q: want no plan and the reason", vac.Plan, vac.PlanError)
	}
	if lt := byRule[RuleLockTimeout]; lt.Plan != nil {
		t.Error("a rule about sequences of statements carries a plan")
	}
	// Without Plans, nothing is planned.
	fs, err = NewChecker(CheckOptions{Schema: s}).Check(Source{Name: "m.sql", SQL: sql})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Plan != nil || f.PlanError != "" {
			t.Errorf("%s planned without Plans", f.Rule)
		}
	}
}

// Every finding is complete: a known rule, a reason and an alternative
// that are sentences, hazards typed.
func TestCheckFindingsAreComplete(t *testing.T) {
	s := schemaOf(t, checkSchemaSQL)
	sql := `ALTER TABLE t RENAME COLUMN b TO bb;
ALTER TABLE t ALTER COLUMN a TYPE bigint;
ALTER TABLE t ADD COLUMN g uuid DEFAULT gen_random_uuid();
ALTER TABLE t ADD COLUMN n int NOT NULL;
ALTER TABLE t ALTER COLUMN created SET NOT NULL;
ALTER TABLE t ADD CONSTRAINT k CHECK (a > 0);
ALTER TABLE u ADD CONSTRAINT f FOREIGN KEY (ref) REFERENCES t (id);
ALTER TABLE u ADD CONSTRAINT uk UNIQUE (ref);
CREATE INDEX ON t (a);
DROP INDEX u_c_key;
ALTER TABLE t ALTER COLUMN d DROP DEFAULT;
UPDATE t SET a = 1;
REFRESH MATERIALIZED VIEW mv;
DROP VIEW tv;
ALTER TABLE t DROP COLUMN bb;
DROP TABLE u;
ALTER TABLE t RENAME TO tt;
-- cutover:ignore
SELECT 1;`
	fs, err := NewChecker(CheckOptions{Schema: s}).Check(Source{Name: "m.sql", SQL: sql})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range fs {
		seen[f.Rule] = true
		r := RuleByID(f.Rule)
		if r == nil || f.Name != r.Name {
			t.Errorf("%s: unknown rule or wrong name %q", f.Rule, f.Name)
			continue
		}
		for what, v := range map[string]string{"reason": f.Reason, "alternative": f.Alternative} {
			if v == "" || !strings.HasSuffix(v, ".") || strings.ToUpper(v[:1]) != v[:1] || strings.Contains(v, "\n") {
				t.Errorf("%s line %d: %s %q is not one sentence-like line", f.Rule, f.Line, what, v)
			}
		}
		if f.Statement == "" || f.File != "m.sql" || f.Line < 1 || f.Column < 1 || f.Hazards == nil {
			t.Errorf("%s: incomplete finding %+v", f.Rule, f)
		}
		if f.Rule != RuleIgnoreComment && f.Rule != RuleLockTimeout && (f.Lock == "" || len(f.Hazards) == 0) {
			t.Errorf("%s line %d: no lock or hazards", f.Rule, f.Line)
		}
	}
	for _, id := range []string{"CUT001", "CUT002", "CUT003", "CUT004", "CUT005", "CUT006", "CUT007", "CUT008", "CUT009", "CUT010", "CUT011", "CUT012", "CUT013", "CUT014", "CUT015", "CUT016", "CUT017", "CUT103", "CUT901"} {
		if !seen[id] {
			t.Errorf("no %s finding", id)
		}
	}
}
