package planner

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// The expectations below were checked against PostgreSQL 15.
func TestMakeObjectName(t *testing.T) {
	long := strings.Repeat("a", 40)
	cases := []struct {
		name1, name2, label, want string
	}{
		{"film", "length", "idx", "film_length_idx"},
		{"t1", "a_b", "idx", "t1_a_b_idx"},
		{"film", "", "pkey", "film_pkey"},
		{"film", "", "check", "film_check"},
		{"Order Items", "Unit Price", "key", "Order Items_Unit Price_key"},
		// The longer part is truncated first: 40+40 bytes must fit in
		// 63 - len("_idx") - 1 = 58.
		{long, long, "idx", strings.Repeat("a", 29) + "_" + strings.Repeat("a", 29) + "_idx"},
		{long + "bbbbbbbbbb", "c", "fkey", long + "bbbbbbbbbb"[:10] + "_c_fkey"},
	}
	for _, c := range cases {
		got := makeObjectName(c.name1, c.name2, c.label)
		if got != c.want {
			t.Errorf("makeObjectName(%q, %q, %q) = %q, want %q", c.name1, c.name2, c.label, got, c.want)
		}
		if len(got) > 63 {
			t.Errorf("makeObjectName(%q, %q, %q) is %d bytes", c.name1, c.name2, c.label, len(got))
		}
	}
	// A truncation never cuts a UTF-8 character.
	got := makeObjectName(strings.Repeat("é", 40), "x", "idx")
	if !strings.HasSuffix(got, "_x_idx") || len(got) > 63 || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("UTF-8 truncation: %q", got)
	}
	for _, r := range strings.TrimSuffix(got, "_x_idx") {
		if r != 'é' {
			t.Fatalf("UTF-8 truncation cut a character: %q", got)
		}
	}
}

func TestIndexColumnNames(t *testing.T) {
	tree, err := pg_query.Parse(`CREATE INDEX ON t (a, (a + b), lower(c), b) INCLUDE (c)`)
	if err != nil {
		t.Fatal(err)
	}
	ix := tree.Stmts[0].Stmt.GetIndexStmt()
	got := indexColumnNames(append(append([]*pg_query.Node{}, ix.IndexParams...), ix.IndexIncludingParams...))
	want := "a expr expr1 b c"
	if strings.Join(got, " ") != want {
		t.Errorf("indexColumnNames = %v, want %s", got, want)
	}
	if a := nameAddition(got); a != "a_expr_expr1_b_c" {
		t.Errorf("nameAddition = %q", a)
	}
}

// chooseName numbers a name taken in the schema or earlier in the plan,
// as PostgreSQL does (checked: film_length_check, film_length_check1).
func TestChooseName(t *testing.T) {
	s := pagila(t)
	b := newBuilder(s, Options{Schema: s})
	// film_pkey is taken by the schema (constraint and index).
	if got := b.chooseName(constraintIndexName, "public", "film", "", "pkey"); got != "film_pkey1" {
		t.Errorf("pkey: got %q", got)
	}
	if got := b.chooseName(constraintName, "public", "film", "length", "check"); got != "film_length_check" {
		t.Errorf("first check: got %q", got)
	}
	if got := b.chooseName(constraintName, "public", "film", "length", "check"); got != "film_length_check1" {
		t.Errorf("second check: got %q", got)
	}
	// A constraint name does not take a relation name.
	if got := b.chooseName(relationName, "public", "film", "length", "check"); got != "film_length_check" {
		t.Errorf("relation: got %q", got)
	}
	// Without a schema only the plan's own names count.
	nb := newBuilder(nil, Options{})
	if got := nb.chooseName(constraintIndexName, "public", "film", "", "pkey"); got != "film_pkey" {
		t.Errorf("no schema: got %q", got)
	}
}
