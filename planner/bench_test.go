package planner_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/schema"
)

// genDump writes a pg_dump --schema-only style dump of n tables, shaped
// like a real application's: each table has a sequence-backed primary key,
// a foreign key to the previous table, ten columns of common types with
// defaults, a CHECK, two indexes and an UPDATE trigger; every tenth table
// has a view joining it to its parent.
func genDump(n int) string {
	var b strings.Builder
	b.WriteString(`--
-- PostgreSQL database dump
--

-- Dumped from database version 15.4
-- Dumped by pg_dump version 15.4

SET statement_timeout = 0;
SET lock_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;

CREATE FUNCTION public.set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END $$;

SET default_tablespace = '';
SET default_table_access_method = heap;

`)
	for i := 0; i < n; i++ {
		t := fmt.Sprintf("t%04d", i)
		fmt.Fprintf(&b, `--
-- Name: %[1]s_id_seq; Type: SEQUENCE; Schema: public; Owner: app
--

CREATE SEQUENCE public.%[1]s_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: %[1]s; Type: TABLE; Schema: public; Owner: app
--

CREATE TABLE public.%[1]s (
    id integer DEFAULT nextval('public.%[1]s_id_seq'::regclass) NOT NULL,
    parent_id integer,
    name text NOT NULL,
    email character varying(255),
    status text DEFAULT 'active'::text NOT NULL,
    amount numeric(10,2) DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    payload jsonb,
    tags text[],
    CONSTRAINT %[1]s_amount_check CHECK ((amount >= (0)::numeric))
);

ALTER TABLE public.%[1]s OWNER TO app;

ALTER SEQUENCE public.%[1]s_id_seq OWNED BY public.%[1]s.id;

`, t)
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `--
-- Name: %[1]s %[1]s_pkey; Type: CONSTRAINT; Schema: public; Owner: app
--

ALTER TABLE ONLY public.%[1]s
    ADD CONSTRAINT %[1]s_pkey PRIMARY KEY (id);

`, fmt.Sprintf("t%04d", i))
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `CREATE INDEX %[1]s_email_idx ON public.%[1]s USING btree (email);

CREATE INDEX %[1]s_parent_id_idx ON public.%[1]s USING btree (parent_id);

CREATE TRIGGER %[1]s_updated_at BEFORE UPDATE ON public.%[1]s FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

`, fmt.Sprintf("t%04d", i))
	}
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, `ALTER TABLE ONLY public.%[1]s
    ADD CONSTRAINT %[1]s_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.%[2]s(id) ON DELETE SET NULL;

`, fmt.Sprintf("t%04d", i), fmt.Sprintf("t%04d", i-1))
	}
	for i := 1; i < n; i += 10 {
		fmt.Fprintf(&b, `CREATE VIEW public.%[1]s_with_parent AS
 SELECT t.id,
    t.name,
    t.email,
    p.name AS parent_name
   FROM (public.%[1]s t
     LEFT JOIN public.%[2]s p ON ((t.parent_id = p.id)));

`, fmt.Sprintf("t%04d", i), fmt.Sprintf("t%04d", i-1))
	}
	b.WriteString("--\n-- PostgreSQL database dump complete\n--\n")
	return b.String()
}

// TestGeneratedDump checks that the benchmark's schema is what it claims
// to be, so the benchmark measures a realistic model.
func TestGeneratedDump(t *testing.T) {
	s, err := schema.ParseDump("generated", genDump(20))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Tables) != 20 || len(s.Views) != 2 {
		t.Fatalf("%d tables and %d views, want 20 and 2", len(s.Tables), len(s.Views))
	}
	tab := s.Table("public", "t0011")
	if tab == nil || len(tab.Columns) != 10 || tab.PrimaryKey() == nil || len(tab.Indexes) < 3 || len(tab.TriggersOn("UPDATE")) != 1 {
		t.Fatalf("table t0011 is not fully modelled: %+v", tab)
	}
	p, err := planner.Plan("ALTER TABLE t0011 RENAME COLUMN email TO email_address", planner.Options{Schema: s})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Facts.Tables) != 1 || len(p.Facts.Tables[0].DependentViews) != 1 {
		t.Errorf("facts %+v, want t0011 with its one view", p.Facts.Tables)
	}
}

// BenchmarkPlan1000Tables measures what `cutover plan --schema` does for a
// large application schema: find the relations the change names, load the
// part of the 1,000-table dump they need (schema.ParseDumpFor), plan the
// change. Target: under 50 ms per operation.
func BenchmarkPlan1000Tables(b *testing.B) {
	dump := genDump(1000)
	const change = "ALTER TABLE t0500 RENAME COLUMN email TO email_address"
	b.SetBytes(int64(len(dump)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		targets, err := planner.Relations(change)
		if err != nil {
			b.Fatal(err)
		}
		s, err := schema.ParseDumpFor("generated", dump, targets.Relations, targets.Types)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := planner.Plan(change, planner.Options{Schema: s}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlan1000TablesFullParse is the same with the whole dump parsed
// (schema.ParseDump), for comparison: pg_query's parse of the 1.46 MB text
// alone is most of it.
func BenchmarkPlan1000TablesFullParse(b *testing.B) {
	dump := genDump(1000)
	b.SetBytes(int64(len(dump)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		s, err := schema.ParseDump("generated", dump)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := planner.Plan("ALTER TABLE t0500 RENAME COLUMN email TO email_address", planner.Options{Schema: s}); err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU reports, besides wall time, the process CPU time per operation
// (cpu-ms/op), which stays meaningful on a busy machine. Use it as
// defer reportCPU(b)().
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		}
	}
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPlanOnly1000Tables is the planning part alone, against the
// already parsed 1,000-table schema.
func BenchmarkPlanOnly1000Tables(b *testing.B) {
	s, err := schema.ParseDump("generated", genDump(1000))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := planner.Plan("ALTER TABLE t0500 RENAME COLUMN email TO email_address", planner.Options{Schema: s}); err != nil {
			b.Fatal(err)
		}
	}
}
