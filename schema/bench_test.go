package schema

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// generateDump writes a pg_dump --schema-only style dump of n tables: each
// with seven columns, a sequence owned by its id column and set as its
// default, a primary key, an index, a foreign key to the previous table,
// and a view over every tenth table.
func generateDump(n int) string {
	var b strings.Builder
	b.WriteString("SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\nSELECT pg_catalog.set_config('search_path', '', false);\n\n")
	for i := 0; i < n; i++ {
		t := fmt.Sprintf("t%04d", i)
		fmt.Fprintf(&b, `--
-- Name: %[1]s; Type: TABLE; Schema: public; Owner: app
--

CREATE TABLE public.%[1]s (
    id bigint NOT NULL,
    account_id bigint NOT NULL,
    name text NOT NULL,
    status character varying(20) DEFAULT 'new'::character varying NOT NULL,
    amount numeric(12,2) DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    parent_id bigint
);

ALTER TABLE public.%[1]s OWNER TO app;

CREATE SEQUENCE public.%[1]s_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER TABLE public.%[1]s_id_seq OWNER TO app;
ALTER SEQUENCE public.%[1]s_id_seq OWNED BY public.%[1]s.id;

`, t)
		if i%10 == 9 {
			fmt.Fprintf(&b, `CREATE VIEW public.v%[1]s AS
 SELECT t.id,
    t.name,
    t.amount,
    p.name AS parent_name
   FROM (public.%[1]s t
     LEFT JOIN public.t%04[2]d p ON ((p.id = t.parent_id)))
  WHERE ((t.status)::text = 'active'::text);

ALTER TABLE public.v%[1]s OWNER TO app;

`, t, i-1)
		}
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "ALTER TABLE ONLY public.t%04d ALTER COLUMN id SET DEFAULT nextval('public.t%04d_id_seq'::regclass);\n", i, i)
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "ALTER TABLE ONLY public.t%04d\n    ADD CONSTRAINT t%04d_pkey PRIMARY KEY (id);\n", i, i)
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "CREATE INDEX t%04d_account_id_idx ON public.t%04d USING btree (account_id);\n", i, i)
	}
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "ALTER TABLE ONLY public.t%04d\n    ADD CONSTRAINT t%04d_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES public.t%04d(id);\n", i, i, i-1)
	}
	return b.String()
}

// BenchmarkParseDump1000Tables reports, besides wall time, the process CPU
// time per operation (cpu-ms/op), which stays meaningful on a busy machine.
func BenchmarkParseDump1000Tables(b *testing.B) {
	sql := generateDump(1000)
	// Measure what users run, not the tests' cross-checking.
	defer func(v bool) { verifyFastPaths = v }(verifyFastPaths)
	verifyFastPaths = false
	b.SetBytes(int64(len(sql)))
	cpu := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := ParseDump("bench.sql", sql)
		if err != nil {
			b.Fatal(err)
		}
		if len(s.Tables) != 1000 || len(s.Views) != 100 {
			b.Fatalf("got %d tables, %d views", len(s.Tables), len(s.Views))
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkPgQueryParse1000Tables is the floor under ParseDump: pg_query
// parsing the same dump, nothing else.
func BenchmarkPgQueryParse1000Tables(b *testing.B) {
	sql := generateDump(1000)
	b.SetBytes(int64(len(sql)))
	cpu := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := pg_query.Parse(sql); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
