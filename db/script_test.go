package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
)

const sampleScript = `\restrict abc123
SET client_min_messages = warning;
SET check_function_bodies = false;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE TABLE public.t (id int, note text);
CREATE FUNCTION public.f() RETURNS void LANGUAGE sql AS $$
COPY public.t FROM stdin;
$$;
CREATE TABLE public.s (v text DEFAULT '
\not a meta-command
');

COPY public.t (id, note) FROM stdin;
1	one
2	\N
3	tab\there
\.
INSERT INTO public.t VALUES (4, 'not a copy');
\unrestrict abc123
`

func TestExecScript(t *testing.T) {
	ctx := context.Background()
	conn := dbtest.Connect(t, dbtest.NewDatabase(t))
	if err := db.ExecScript(ctx, conn, sampleScript); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT id, coalesce(note, 'NULL') FROM public.t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id int
		var note string
		if err := rows.Scan(&id, &note); err != nil {
			t.Fatal(err)
		}
		got = append(got, note)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"one", "NULL", "tab\there", "not a copy"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("table t holds %q, want %q", got, want)
	}
	// set_config(..., false) lasts for the session, as in psql.
	var path string
	if err := conn.QueryRow(ctx, "SHOW search_path").Scan(&path); err != nil {
		t.Fatal(err)
	}
	if path != "" {
		t.Errorf("search_path after the script = %q, want the script's empty one", path)
	}
}

func TestExecScriptErrors(t *testing.T) {
	ctx := context.Background()
	conn := dbtest.Connect(t, dbtest.NewDatabase(t))
	for _, tc := range []struct{ script, want string }{
		{"CREATE TABLE a (id int);\n\nCREATE TABLE a (id int);\n", "line 1"},
		{"CREATE TABLE b (id int);\nCOPY b FROM stdin;\n1\n", `script line 2: COPY data not terminated by a "\." line`},
		{"CREATE TABLE c (id int);\nCOPY c FROM stdin;\nnot a number\n\\.\n", "script line 2: COPY c FROM stdin;"},
		{"\\connect other\n", `script line 1: psql meta-command \connect is not supported`},
	} {
		err := db.ExecScript(ctx, conn, tc.script)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ExecScript(%q) = %v, want an error containing %q", tc.script, err, tc.want)
		}
	}
}
