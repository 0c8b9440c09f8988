package planner

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/schema"
)

// Views are dropped dependents first and created again in reverse order;
// a materialized view comes back with its indexes.
func TestViewsAroundChange(t *testing.T) {
	s := schemaOf(t, `
CREATE TABLE public.t (id integer NOT NULL, c integer);
CREATE VIEW public.v1 AS SELECT t.id, t.c FROM public.t;
CREATE VIEW public.v2 AS SELECT v1.c FROM public.v1;
CREATE MATERIALIZED VIEW public."M V" AS SELECT v2.c FROM public.v2 WITH NO DATA;
CREATE VIEW public.unrelated AS SELECT t.id FROM public.t;
`)
	mv := s.Views["public.M V"]
	if mv == nil {
		t.Fatal("no materialized view in the schema")
	}
	mv.Indexes = []*schema.Index{{Name: "mv_c", Columns: []string{"c"}, Definition: `CREATE INDEX mv_c ON public."M V" USING btree (c)`}}
	defer func() { mv.Indexes = nil }()

	views := viewsUsingColumns(s, []schema.ColumnRef{{Relation: "public.t", Column: "c"}})
	if got := viewKeys(views); got != "public.M V, public.v2, public.v1" {
		t.Fatalf("drop order = %s", got)
	}
	stmts, err := aroundViews(views, []string{"ALTER TABLE t ALTER COLUMN c TYPE bigint"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`DROP MATERIALIZED VIEW "public"."M V"`,
		`DROP VIEW "public"."v2"`,
		`DROP VIEW "public"."v1"`,
		"ALTER TABLE t ALTER COLUMN c TYPE bigint",
		"CREATE VIEW public.v1 AS SELECT t.id, t.c FROM public.t",
		"CREATE VIEW public.v2 AS SELECT v1.c FROM public.v1",
		`CREATE MATERIALIZED VIEW public."M V" AS SELECT v2.c FROM public.v2`,
		`CREATE INDEX mv_c ON public."M V" USING btree (c)`,
	}
	if strings.Join(stmts, "\n") != strings.Join(want, "\n") {
		t.Errorf("statements:\n%s\nwant\n%s", strings.Join(stmts, "\n"), strings.Join(want, "\n"))
	}
	if h := viewHazards(views); len(h) != 1 || !strings.Contains(h[0].Message, "public.M V") {
		t.Errorf("hazards = %v", h)
	}
}
