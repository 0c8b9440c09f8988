package planner

import (
	"sort"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/schema"
)

// Targets are the schema objects a change names, for loading only the part
// of a schema dump the plan needs (schema.ParseDumpFor).
type Targets struct {
	// Relations are "schema.name" keys (unqualified names are in public) of
	// every relation the input names: tables, views, sequences and indexes
	// it reads or changes, and the new names it gives (RENAME TO, CREATE
	// INDEX name); plus the constraint names it creates, since the planner
	// keeps constraint names unique per schema. Sorted, no duplicates.
	Relations []string
	// Types are the "schema.name" keys of the user types it names (column
	// types, ALTER TYPE, DROP TYPE, domains); built-in types are left out.
	// Sorted, no duplicates.
	Types []string
}

// Relations parses sql and returns the objects it names. It reads the parse
// tree only: every RangeVar (FROM items, the target of ALTER/CREATE/DROP,
// REFERENCES, PARTITION OF), every type name, the objects of DROP, the new
// names of RENAME, index names and constraint names. A syntax error is
// reported exactly as Plan reports it.
func Relations(sql string) (Targets, error) {
	tree, err := parseInput(sql)
	if err != nil {
		return Targets{}, err
	}
	rels, types := map[string]bool{}, map[string]bool{}
	for _, raw := range tree.Stmts {
		// Constraint and index names live in the schema of the table the
		// statement is about.
		nsp := "public"
		if rv := stmtRelation(raw.Stmt); rv != nil && rv.Schemaname != "" {
			nsp = rv.Schemaname
		}
		walk(raw.Stmt.ProtoReflect(), func(m protoreflect.Message) {
			switch n := m.Interface().(type) {
			case *pg_query.RangeVar:
				rels[rel(n).key()] = true
			case *pg_query.TypeName:
				if k, ok := userTypeKey(n); ok {
					types[k] = true
				}
			case *pg_query.Constraint:
				for _, name := range []string{n.Conname, n.Indexname} {
					if name != "" {
						rels[schema.Key(nsp, name)] = true
					}
				}
			case *pg_query.IndexStmt:
				if n.Idxname != "" {
					rels[schema.Key(nsp, n.Idxname)] = true
				}
			case *pg_query.DropStmt:
				for _, obj := range n.Objects {
					if list := obj.GetList(); list != nil && dropsRelation(n.RemoveType) {
						rels[nameKey(list.Items)] = true
					}
				}
			case *pg_query.RenameStmt:
				renamed(n, nsp, rels, types)
			case *pg_query.AlterObjectSchemaStmt:
				if n.Relation != nil && n.Newschema != "" {
					rels[schema.Key(n.Newschema, n.Relation.Relname)] = true
				}
			case *pg_query.AlterEnumStmt:
				types[nameKey(n.TypeName)] = true
			case *pg_query.AlterDomainStmt:
				types[nameKey(n.TypeName)] = true
			case *pg_query.CreateEnumStmt:
				types[nameKey(n.TypeName)] = true
			case *pg_query.CreateDomainStmt:
				types[nameKey(n.Domainname)] = true
			}
		})
	}
	return Targets{Relations: sortedKeys(rels), Types: sortedKeys(types)}, nil
}

// stmtRelation returns the table a statement is about, or nil.
func stmtRelation(n *pg_query.Node) *pg_query.RangeVar {
	switch st := n.Node.(type) {
	case *pg_query.Node_AlterTableStmt:
		return st.AlterTableStmt.Relation
	case *pg_query.Node_CreateStmt:
		return st.CreateStmt.Relation
	case *pg_query.Node_IndexStmt:
		return st.IndexStmt.Relation
	case *pg_query.Node_RenameStmt:
		return st.RenameStmt.Relation
	}
	return nil
}

// renamed records the names a RENAME statement gives: a relation's or an
// index's new name, a constraint's old and new names, a type's new name.
func renamed(r *pg_query.RenameStmt, nsp string, rels, types map[string]bool) {
	switch r.RenameType {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
		pg_query.ObjectType_OBJECT_INDEX, pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_FOREIGN_TABLE:
		rels[schema.Key(nsp, r.Newname)] = true
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		rels[schema.Key(nsp, r.Subname)] = true
		rels[schema.Key(nsp, r.Newname)] = true
	case pg_query.ObjectType_OBJECT_TYPE, pg_query.ObjectType_OBJECT_DOMAIN:
		if list := r.Object.GetList(); list != nil {
			typeNsp, name := qualifiedName(list.Items)
			types[schema.Key(typeNsp, name)] = true
			types[schema.Key(typeNsp, r.Newname)] = true
		}
	}
}

// dropsRelation reports whether DROP of this object type names relations.
func dropsRelation(t pg_query.ObjectType) bool {
	switch t {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
		pg_query.ObjectType_OBJECT_INDEX, pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_FOREIGN_TABLE:
		return true
	}
	return false
}

// nameKey turns a qualified name list (String nodes) into a key, in schema
// public when unqualified.
func nameKey(nodes []*pg_query.Node) string { return schema.Key(qualifiedName(nodes)) }

// qualifiedName splits a qualified name list into schema and name.
func qualifiedName(nodes []*pg_query.Node) (nsp, name string) {
	var parts []string
	for _, n := range nodes {
		parts = append(parts, n.GetString_().GetSval())
	}
	switch len(parts) {
	case 0:
		return "public", ""
	case 1:
		return "public", parts[0]
	}
	return parts[len(parts)-2], parts[len(parts)-1]
}

// userTypeKey returns the key of a user type, false for built-in types
// (pg_catalog, or an unqualified name of builtinTypeNames) and %TYPE.
func userTypeKey(tn *pg_query.TypeName) (string, bool) {
	if tn.PctType || len(tn.Names) == 0 {
		return "", false
	}
	if len(tn.Names) == 1 && builtinTypeNames[tn.Names[0].GetString_().GetSval()] {
		return "", false
	}
	if len(tn.Names) >= 2 && tn.Names[len(tn.Names)-2].GetString_().GetSval() == "pg_catalog" {
		return "", false
	}
	return nameKey(tn.Names), true
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
