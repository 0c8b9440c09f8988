package pgtree

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func TestWalkReachesNestedNodes(t *testing.T) {
	tree, err := pg_query.Parse(`SELECT a FROM t WHERE b IN (SELECT c FROM u WHERE d = 1) ORDER BY e`)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	Walk(tree.ProtoReflect(), func(m protoreflect.Message) {
		if cr, ok := m.Interface().(*pg_query.ColumnRef); ok {
			cols = append(cols, cr.Fields[len(cr.Fields)-1].GetString_().GetSval())
		}
	})
	want := []string{"a", "b", "c", "d", "e"}
	if len(cols) != len(want) {
		t.Fatalf("column refs %v, want %v", cols, want)
	}
	seen := map[string]bool{}
	for _, c := range cols {
		seen[c] = true
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("column ref %s not reached (got %v)", w, cols)
		}
	}
}
