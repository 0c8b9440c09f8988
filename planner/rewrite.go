package planner

import (
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/pgtree"
)

// walk calls fn on every message of the parse tree below m, depth first.
func walk(m protoreflect.Message, fn func(protoreflect.Message)) { pgtree.Walk(m, fn) }

// renameColumnRefs rewrites, in place, every unqualified or
// relation-qualified reference to column from into to: column references
// (`c`, `t.c`), index elements and constraint key lists.
func renameColumnRefs(root protoreflect.Message, from, to string) {
	walk(root, func(m protoreflect.Message) {
		switch n := m.Interface().(type) {
		case *pg_query.ColumnRef:
			if len(n.Fields) == 0 {
				return
			}
			last := n.Fields[len(n.Fields)-1].GetString_()
			if last != nil && last.Sval == from {
				last.Sval = to
			}
		case *pg_query.IndexElem:
			if n.Name == from {
				n.Name = to
			}
		case *pg_query.Constraint:
			for _, k := range n.Keys {
				if s := k.GetString_(); s != nil && s.Sval == from {
					s.Sval = to
				}
			}
			for _, k := range n.FkAttrs {
				if s := k.GetString_(); s != nil && s.Sval == from {
					s.Sval = to
				}
			}
		}
	})
}

// parseOne parses SQL that must hold exactly one statement.
func parseOne(sql string) (*pg_query.ParseResult, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", short(sql), err)
	}
	if len(tree.Stmts) != 1 {
		return nil, fmt.Errorf("expected one statement in %q, found %d", short(sql), len(tree.Stmts))
	}
	return tree, nil
}

// copyIndexOnColumn returns a CREATE INDEX CONCURRENTLY statement that
// builds, under the name newName, the same index as def (a canonical
// CREATE INDEX statement from the schema) with column from replaced by to.
// A unique index stays unique; a primary-key index becomes a unique index.
func copyIndexOnColumn(def, newName, from, to string) (string, error) {
	tree, err := parseOne(def)
	if err != nil {
		return "", err
	}
	ix := tree.Stmts[0].Stmt.GetIndexStmt()
	if ix == nil {
		return "", fmt.Errorf("not a CREATE INDEX statement: %q", short(def))
	}
	renameColumnRefs(ix.ProtoReflect(), from, to)
	ix.Idxname = newName
	ix.Concurrent = true
	ix.IfNotExists = false
	ix.Primary = false
	ix.Isconstraint = false
	return pg_query.Deparse(tree)
}

// rewriteStatement parses a single statement, renames column references in
// it and deparses it again (used for CHECK constraints and views).
func rewriteStatement(sql, from, to string) (string, error) {
	tree, err := parseOne(sql)
	if err != nil {
		return "", err
	}
	renameColumnRefs(tree.Stmts[0].ProtoReflect(), from, to)
	return pg_query.Deparse(tree)
}

// usesColumn reports whether the statement refers to the column anywhere
// (column references, index elements, constraint keys).
func usesColumn(sql, column string) (bool, error) {
	tree, err := parseOne(sql)
	if err != nil {
		return false, err
	}
	found := false
	walk(tree.Stmts[0].ProtoReflect(), func(m protoreflect.Message) {
		switch n := m.Interface().(type) {
		case *pg_query.ColumnRef:
			if len(n.Fields) > 0 {
				if s := n.Fields[len(n.Fields)-1].GetString_(); s != nil && s.Sval == column {
					found = true
				}
			}
		case *pg_query.IndexElem:
			if n.Name == column {
				found = true
			}
		case *pg_query.Constraint:
			for _, k := range append(append([]*pg_query.Node{}, n.Keys...), n.FkAttrs...) {
				if s := k.GetString_(); s != nil && s.Sval == column {
					found = true
				}
			}
		}
	})
	return found, nil
}
