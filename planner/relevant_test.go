package planner_test

import (
	"errors"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// The proof that planning against the part of a dump ParseDumpFor loads is
// planning against the whole dump: for every golden case, and for changes
// of each kind on the generated 1,000-table schema, the plan (or the
// refusal) made with schema.ParseDumpFor(planner.Relations(sql)) is byte
// for byte the one made with schema.ParseDump.

// partialPlan plans sql against the part of dump that Relations selects,
// with the Source the full model was given.
func partialPlan(t *testing.T, path, dump, source, sql string) (*plans.Plan, error) {
	t.Helper()
	targets, err := planner.Relations(sql)
	if err != nil {
		t.Fatalf("Relations: %v", err)
	}
	s, err := schema.ParseDumpFor(path, dump, targets.Relations, targets.Types)
	if err != nil {
		t.Fatalf("ParseDumpFor: %v", err)
	}
	s.Source = source
	return planner.Plan(sql, planner.Options{Schema: s})
}

// samePlan checks the two ways of planning agree: identical encodings, or
// identical errors.
func samePlan(t *testing.T, full *schema.Schema, path, dump, sql string) {
	t.Helper()
	want, wantErr := planner.Plan(sql, planner.Options{Schema: full})
	got, gotErr := partialPlan(t, path, dump, full.Source, sql)
	if wantErr != nil || gotErr != nil {
		if wantErr == nil || gotErr == nil || wantErr.Error() != gotErr.Error() {
			t.Fatalf("errors differ:\nfull:    %v\npartial: %v", wantErr, gotErr)
		}
		return
	}
	wj, err := plans.Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	gj, err := plans.Encode(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(gj) != string(wj) {
		t.Errorf("the plan made with ParseDumpFor differs from the one made with ParseDump\n%s", firstDiff(string(wj), string(gj)))
	}
}

func TestPartialSchemaPlansGolden(t *testing.T) {
	cases := append(append([]goldenCase(nil), goldenCases...), refusedCases...)
	for _, c := range cases {
		if c.schema == "" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			full := loadSchema(t, c.schema)
			src, err := os.ReadFile(schemaFiles[c.schema])
			if err != nil {
				t.Fatal(err)
			}
			samePlan(t, full, schemaFiles[c.schema], string(src), c.sql)
		})
	}
}

var (
	genOnce sync.Once
	genSQL  string
	genFull *schema.Schema
	genErr  error
)

// generated returns the benchmark's 1,000-table dump and its full model.
func generated(t *testing.T) (string, *schema.Schema) {
	t.Helper()
	genOnce.Do(func() {
		genSQL = genDump(1000)
		genFull, genErr = schema.ParseDump("generated", genSQL)
	})
	if genErr != nil {
		t.Fatal(genErr)
	}
	return genSQL, genFull
}

// generatedChanges are changes on the 1,000-table schema, whose tables form
// one long foreign-key chain (t0500.parent_id references t0499.id) with a
// view over every tenth pair.
var generatedChanges = []struct{ name, sql string }{
	{"rename-column", "ALTER TABLE t0500 RENAME COLUMN email TO email_address"},
	{"rename-column-used-by-view", "ALTER TABLE t0501 RENAME COLUMN name TO full_name"},
	{"change-type-referenced-key", "ALTER TABLE t0500 ALTER COLUMN id TYPE bigint"},
	{"change-type-viewed-referenced-key", "ALTER TABLE t0500 ALTER COLUMN id TYPE bigint, ALTER COLUMN name TYPE varchar(200)"},
	{"drop-table-used-by-view", "DROP TABLE t0500 CASCADE"},
	{"drop-table-refused", "DROP TABLE t0500"},
	{"add-foreign-key", "ALTER TABLE t0700 ADD CONSTRAINT t0700_owner_fkey FOREIGN KEY (parent_id) REFERENCES t0100 (id)"},
	{"add-foreign-key-unnamed", "ALTER TABLE t0700 ADD FOREIGN KEY (amount) REFERENCES t0100 (id)"},
	{"drop-column-used-by-view", "ALTER TABLE t0501 DROP COLUMN email"},
	{"create-index", "CREATE INDEX ON t0500 (email)"},
	{"drop-index", "DROP INDEX t0500_email_idx"},
	{"rename-table", "ALTER TABLE t0500 RENAME TO t0500_old"},
	{"rename-table-taken", "ALTER TABLE t0500 RENAME TO t0501"},
	{"set-not-null", "ALTER TABLE t0500 ALTER COLUMN email SET NOT NULL"},
	{"big-update", "UPDATE t0500 SET status = 'archived' WHERE created_at < now() - interval '1 year'"},
	{"big-delete", "DELETE FROM t0500 WHERE status = 'deleted'"},
	{"drop-view", "DROP VIEW t0501_with_parent"},
	{"multi-statement", "ALTER TABLE t0500 ADD COLUMN note text; ALTER TABLE t0999 RENAME COLUMN payload TO data; CREATE INDEX t0001_name_idx ON t0001 (name)"},
}

func TestPartialSchemaPlansGenerated(t *testing.T) {
	dump, full := generated(t)
	for _, c := range generatedChanges {
		t.Run(c.name, func(t *testing.T) {
			samePlan(t, full, "generated", dump, c.sql)
		})
	}
}

// TestPartialSchemaModel checks what ParseDumpFor loads: every object it
// holds is the full model's object (deep-equal), and it holds at least the
// relevant ones: the tables named, the tables referencing them or
// referenced by them, their partition trees, the views reading any of
// those (closed over views), the enums and domains of their columns and
// the sequences their columns own.
func TestPartialSchemaModel(t *testing.T) {
	type model struct {
		path, dump string
		full       *schema.Schema
	}
	var models []model
	for _, name := range []string{"pagila", "quoting"} {
		src, err := os.ReadFile(schemaFiles[name])
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, model{schemaFiles[name], string(src), loadSchema(t, name)})
	}
	dump, full := generated(t)
	models = append(models, model{"generated", dump, full})
	inputs := map[string][]string{
		"pagila": {"ALTER TABLE customer RENAME COLUMN email TO email_address", "DROP TABLE payment_p2022_07",
			"ALTER TABLE rental ALTER COLUMN rental_id TYPE bigint", "DROP INDEX idx_last_name",
			"ALTER TYPE mpaa_rating ADD VALUE 'NR'", "ALTER TABLE film ALTER COLUMN rating TYPE text",
			"ALTER TABLE address ADD COLUMN note public.year"},
		"quoting":   {`ALTER TABLE "Order Items" RENAME COLUMN "Unit Price" TO "Price Per Unit"`, "ALTER TABLE events ADD PRIMARY KEY (id)"},
		"generated": {"ALTER TABLE t0500 ALTER COLUMN id TYPE bigint", "DROP VIEW t0501_with_parent"},
	}
	for i, m := range models {
		name := []string{"pagila", "quoting", "generated"}[i]
		for _, sql := range inputs[name] {
			targets, err := planner.Relations(sql)
			if err != nil {
				t.Fatal(err)
			}
			part, err := schema.ParseDumpFor(m.path, m.dump, targets.Relations, targets.Types)
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			sameObjects(t, sql, m.full, part)
			for _, k := range relevantTables(m.full, targets.Relations) {
				if part.Tables[k] == nil {
					t.Errorf("%s: table %s is not loaded", sql, k)
				}
			}
			for _, k := range relevantViews(m.full, relevantTables(m.full, targets.Relations), targets.Relations) {
				if part.Views[k] == nil {
					t.Errorf("%s: view %s is not loaded", sql, k)
				}
			}
			for _, k := range relevantTables(m.full, targets.Relations) {
				for _, c := range m.full.Tables[k].Columns {
					tk := strings.TrimSuffix(strings.ReplaceAll(c.Type, `"`, ""), "[]")
					if (m.full.Enums[tk] != nil && part.Enums[tk] == nil) || (m.full.Domains[tk] != nil && part.Domains[tk] == nil) {
						t.Errorf("%s: type %s of %s.%s is not loaded", sql, tk, k, c.Name)
					}
				}
				for sk, seq := range m.full.Sequences {
					if seq.OwnedBy != nil && seq.OwnedBy.Relation == k && part.Sequences[sk] == nil {
						t.Errorf("%s: sequence %s owned by %s is not loaded", sql, sk, k)
					}
				}
			}
			if name == "generated" && len(part.Tables) > 10 {
				t.Errorf("%s: %d tables loaded of the 1,000: the selection does not follow foreign-key chains", sql, len(part.Tables))
			}
		}
	}
}

// sameObjects checks that every object of part is the full model's.
func sameObjects(t *testing.T, what string, full, part *schema.Schema) {
	t.Helper()
	check := func(kind string, got, want any, ok bool, key string) {
		if !ok {
			t.Errorf("%s: %s %s is not in the full model", what, kind, key)
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s %s differs from the full model's:\n got %+v\nwant %+v", what, kind, key, got, want)
		}
	}
	for k, v := range part.Tables {
		w, ok := full.Tables[k]
		check("table", v, w, ok, k)
	}
	for k, v := range part.Views {
		w, ok := full.Views[k]
		check("view", v, w, ok, k)
	}
	for k, v := range part.Enums {
		w, ok := full.Enums[k]
		check("enum", v, w, ok, k)
	}
	for k, v := range part.Domains {
		w, ok := full.Domains[k]
		check("domain", v, w, ok, k)
	}
	for k, v := range part.Sequences {
		w, ok := full.Sequences[k]
		check("sequence", v, w, ok, k)
	}
}

// relevantTables computes, from the full model, the tables a change on the
// named relations needs: the tables named (or holding a named index),
// whole partition trees, and the tables linked to them by a foreign key.
func relevantTables(full *schema.Schema, named []string) []string {
	level0 := map[string]bool{}
	for _, k := range named {
		if full.Tables[k] != nil {
			level0[k] = true
		}
		for tk, tab := range full.Tables {
			nsp, name, _ := strings.Cut(k, ".")
			if tab.Schema == nsp && tab.Index(name) != nil {
				level0[tk] = true
			}
		}
	}
	tree := func(set map[string]bool) {
		for changed := true; changed; {
			changed = false
			for k, tab := range full.Tables {
				if set[k] {
					continue
				}
				if (tab.PartitionOf != "" && set[tab.PartitionOf]) || anyOf(tab.Partitions, set) {
					set[k], changed = true, true
				}
			}
		}
	}
	tree(level0)
	out := map[string]bool{}
	for k := range level0 {
		out[k] = true
		for _, c := range full.Tables[k].Constraints {
			if c.Type == schema.ForeignKey && full.Tables[c.RefTable] != nil {
				out[c.RefTable] = true
			}
		}
		for _, fk := range full.ReferencingForeignKeys(k) {
			out[fk.Table.Key()] = true
		}
	}
	tree(out)
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// relevantViews are the views reading the tables or the named relations,
// closed over views reading those views.
func relevantViews(full *schema.Schema, tables, named []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range append(append([]string(nil), tables...), named...) {
		for _, v := range full.ViewsUsingRelation(k) {
			if !seen[v.Key()] {
				seen[v.Key()] = true
				out = append(out, v.Key())
			}
		}
	}
	return out
}

func anyOf(keys []string, set map[string]bool) bool {
	for _, k := range keys {
		if set[k] {
			return true
		}
	}
	return false
}

// TestRelations checks the objects read from the input, and that syntax
// errors are Plan's.
func TestRelations(t *testing.T) {
	for _, c := range []struct {
		sql         string
		rels, types []string
	}{
		{"ALTER TABLE customer RENAME COLUMN email TO email_address", []string{"public.customer"}, nil},
		{"ALTER TABLE shop.orders RENAME TO orders_old", []string{"shop.orders", "shop.orders_old"}, nil},
		{"DROP INDEX idx_last_name, shop.x_idx", []string{"public.idx_last_name", "shop.x_idx"}, nil},
		{"DROP TABLE a, b CASCADE", []string{"public.a", "public.b"}, nil},
		{`CREATE INDEX "Idx" ON "Order Items" (x)`, []string{"public.Idx", "public.Order Items"}, nil},
		{"ALTER TABLE store ADD CONSTRAINT store_fk FOREIGN KEY (m) REFERENCES staff (id)", []string{"public.staff", "public.store", "public.store_fk"}, nil},
		{"ALTER TABLE s.t RENAME CONSTRAINT a TO b", []string{"s.a", "s.b", "s.t"}, nil},
		{"ALTER TYPE mpaa_rating ADD VALUE 'NR'", nil, []string{"public.mpaa_rating"}},
		{"ALTER TABLE t ALTER COLUMN c TYPE citext, ALTER COLUMN d TYPE integer, ALTER COLUMN e TYPE text", []string{"public.t"}, []string{"public.citext"}},
		{"ALTER TABLE t ADD COLUMN r app.rating[] DEFAULT '{}'::app.rating[]", []string{"public.t"}, []string{"app.rating"}},
		{"UPDATE rental SET x = 1 FROM customer c WHERE c.id = rental.customer_id AND EXISTS (SELECT 1 FROM payment)",
			[]string{"public.customer", "public.payment", "public.rental"}, nil},
		{"ALTER TYPE mood RENAME TO feeling", nil, []string{"public.feeling", "public.mood"}},
		{"ALTER TABLE t SET SCHEMA archive", []string{"archive.t", "public.t"}, nil},
	} {
		got, err := planner.Relations(c.sql)
		if err != nil {
			t.Errorf("%s: %v", c.sql, err)
			continue
		}
		if !reflect.DeepEqual(nilIfEmpty(got.Relations), c.rels) || !reflect.DeepEqual(nilIfEmpty(got.Types), c.types) {
			t.Errorf("%s:\n got %q %q\nwant %q %q", c.sql, got.Relations, got.Types, c.rels, c.types)
		}
	}
	for _, sql := range []string{"", "  -- only a comment\n;", "ALTER TABLE customer RENAM COLUMN a TO b", "SELECT 1;\nSELECT (2"} {
		_, err := planner.Relations(sql)
		_, planErr := planner.Plan(sql, planner.Options{})
		var se *planner.SyntaxError
		if !errors.As(err, &se) || planErr == nil || err.Error() != planErr.Error() {
			t.Errorf("%q: Relations error %v, Plan error %v", sql, err, planErr)
		}
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// FuzzPartialSchema is the proof on arbitrary input: whatever the SQL, the
// plan (or the error) made against the part of pagila (and of the quoting
// schema) that ParseDumpFor loads is the one made against the whole dump.
//
//	go test ./planner -run XXX -fuzz FuzzPartialSchema -fuzztime 5m
func FuzzPartialSchema(f *testing.F) {
	for _, c := range append(append([]goldenCase(nil), goldenCases...), refusedCases...) {
		f.Add(c.sql)
	}
	for _, c := range []string{
		"ALTER TABLE payment ALTER COLUMN payment_id TYPE numeric", "ALTER TABLE staff ALTER COLUMN staff_id TYPE bigint",
		"ALTER TABLE address ALTER COLUMN address_id TYPE bigint", "DROP TABLE payment CASCADE", "DROP VIEW customer_list",
		"ALTER TABLE film ADD COLUMN r mpaa_rating", "ALTER TABLE film ALTER COLUMN release_year TYPE integer",
		"ALTER TABLE rental ADD CHECK (rental_id > 0)", "CREATE INDEX ON payment (amount)", "ALTER TABLE actor RENAME TO actor_info",
		`ALTER TABLE "Order Items" ADD FOREIGN KEY ("user") REFERENCES events (id)`, "CREATE TABLE customer_list_x (id int PRIMARY KEY)",
	} {
		f.Add(c)
	}
	type dump struct {
		path, sql string
		full      *schema.Schema
	}
	var dumps []dump
	for _, name := range []string{"pagila", "quoting"} {
		src, err := os.ReadFile(schemaFiles[name])
		if err != nil {
			f.Fatal(err)
		}
		dumps = append(dumps, dump{schemaFiles[name], string(src), loadSchema(f, name)})
	}
	f.Fuzz(func(t *testing.T, sql string) {
		if _, err := planner.Relations(sql); err != nil {
			return
		}
		for _, d := range dumps {
			samePlan(t, d.full, d.path, d.sql, sql)
		}
	})
}
