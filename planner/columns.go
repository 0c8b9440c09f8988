package planner

// Helpers shared by the column change kinds (op_change_type.go,
// op_add_column.go, op_drop_column.go): column types as they compare them
// (which type changes PostgreSQL makes without rewriting the table, which
// conversions cannot fail, whether a type exists in the schema), and the
// partitions that share a partitioned table's columns.

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/schema"
)

// colType is a type name reduced to what the comparisons need.
type colType struct {
	// schema is "" for a built-in (pg_catalog) type.
	schema string
	// name is the internal name of a built-in type (int4, varchar,
	// timestamptz, numeric) or the name of a user type.
	name string
	// mods are the numeric type modifiers (45 in varchar(45)); nil when
	// the type has none. hasTextMods is set when a modifier is not a
	// number (then no comparison treats the type as widenable).
	mods        []int64
	hasTextMods bool
	// array is true for an array type.
	array bool
}

// sqlNames maps the SQL spellings a parse tree can hold to internal names.
var sqlNames = map[string]string{
	"smallint": "int2", "integer": "int4", "int": "int4", "bigint": "int8",
	"real": "float4", "boolean": "bool", "decimal": "numeric",
}

// builtinTypeNames are the internal names of pg_catalog types that may be
// written unqualified; an unqualified name not listed here is a user type
// in schema public, as with the default search_path.
var builtinTypeNames = setOfStrings(
	"int2", "int4", "int8", "float4", "float8", "bool", "numeric", "varchar",
	"bpchar", "char", "bit", "varbit", "timestamp", "timestamptz", "time",
	"timetz", "interval", "text", "bytea", "name", "oid", "date", "json",
	"jsonb", "jsonpath", "xml", "uuid", "money", "inet", "cidr", "macaddr",
	"macaddr8", "point", "line", "lseg", "box", "path", "polygon", "circle",
	"tsvector", "tsquery", "regclass", "regtype", "regproc", "regconfig",
	"pg_lsn", "pg_snapshot", "txid_snapshot", "int4range", "int8range",
	"numrange", "tsrange", "tstzrange", "daterange", "int4multirange",
	"int8multirange", "nummultirange", "tsmultirange", "tstzmultirange",
	"datemultirange", "xid", "xid8", "cid", "tid",
)

func setOfStrings(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// typeOf reduces a parse-tree type name.
func typeOf(tn *pg_query.TypeName) (colType, error) {
	if tn == nil || len(tn.Names) == 0 {
		return colType{}, fmt.Errorf("no type name")
	}
	if tn.PctType {
		return colType{}, fmt.Errorf("%%TYPE is not supported here; name the type")
	}
	if tn.Setof {
		return colType{}, fmt.Errorf("SETOF is not a column type")
	}
	var names []string
	for _, n := range tn.Names {
		names = append(names, n.GetString_().GetSval())
	}
	var t colType
	switch len(names) {
	case 1:
		t.name = names[0]
	case 2:
		t.schema, t.name = names[0], names[1]
	default:
		return colType{}, fmt.Errorf("type names qualified with a database name are not supported")
	}
	if t.schema == "pg_catalog" {
		t.schema = ""
	}
	if n, ok := sqlNames[t.name]; ok && t.schema == "" {
		t.name = n
	}
	if t.schema == "" && !builtinTypeNames[t.name] && len(names) == 1 {
		t.schema = "public"
	}
	for _, m := range tn.Typmods {
		if iv := m.GetAConst().GetIval(); iv != nil {
			t.mods = append(t.mods, int64(iv.Ival))
		} else {
			t.hasTextMods = true
		}
	}
	// numeric(p) means numeric(p,0).
	if t.schema == "" && t.name == "numeric" && len(t.mods) == 1 {
		t.mods = append(t.mods, 0)
	}
	t.array = len(tn.ArrayBounds) > 0
	return t, nil
}

// parseTypeName parses a type written as SQL (a schema column's type,
// which is format_type output) into its parse-tree form.
func parseTypeName(typ string) (*pg_query.TypeName, error) {
	tree, err := pg_query.Parse("SELECT NULL::" + typ)
	if err != nil || len(tree.Stmts) != 1 {
		return nil, fmt.Errorf("cannot read type %q", typ)
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 {
		return nil, fmt.Errorf("cannot read type %q", typ)
	}
	tc := sel.TargetList[0].GetResTarget().GetVal().GetTypeCast()
	if tc == nil {
		return nil, fmt.Errorf("cannot read type %q", typ)
	}
	return tc.TypeName, nil
}

// typeOfString reduces a type written as SQL.
func typeOfString(typ string) (colType, error) {
	tn, err := parseTypeName(typ)
	if err != nil {
		return colType{}, err
	}
	return typeOf(tn)
}

func (t colType) builtin(names ...string) bool {
	if t.schema != "" || t.array {
		return false
	}
	for _, n := range names {
		if t.name == n {
			return true
		}
	}
	return false
}

func (t colType) sameBase(u colType) bool {
	return t.schema == u.schema && t.name == u.name && t.array == u.array
}

func (t colType) equal(u colType) bool {
	if !t.sameBase(u) || t.hasTextMods || u.hasTextMods || len(t.mods) != len(u.mods) {
		return false
	}
	for i := range t.mods {
		if t.mods[i] != u.mods[i] {
			return false
		}
	}
	return true
}

// stringType reports whether values of the type are strings.
func (t colType) stringType() bool { return t.builtin("text", "varchar", "bpchar", "name") }

// binaryCoercible reports whether ALTER COLUMN ... TYPE from old to new
// keeps every stored value as it is, so PostgreSQL changes only the catalog
// (no table rewrite, indexes kept): varchar(n) widened or to text or to
// unconstrained varchar, text to unconstrained varchar, numeric precision
// raised at the same scale or to unconstrained numeric, timestamp and time
// precision raised, bit varying widened, cidr to inet. Arrays are left out:
// PostgreSQL rewrites a table for an array type change.
//
// timestamp <-> timestamptz is rewrite-free only when the session TimeZone
// is UTC (PostgreSQL 12+), which a plan made offline cannot promise: it is
// not listed here.
func binaryCoercible(old, new colType) bool {
	if old.array || new.array || old.hasTextMods || new.hasTextMods || old.schema != "" || new.schema != "" {
		return false
	}
	widened := func() bool {
		if len(new.mods) == 0 {
			return true // unconstrained
		}
		return len(old.mods) > 0 && new.mods[0] >= old.mods[0]
	}
	switch {
	case old.name == "varchar" && new.name == "varchar":
		return widened()
	case old.name == "varchar" && new.name == "text":
		return true
	case old.name == "text" && new.name == "varchar":
		return len(new.mods) == 0
	case old.name == "numeric" && new.name == "numeric":
		if len(new.mods) == 0 {
			return true
		}
		return len(old.mods) == 2 && len(new.mods) == 2 && new.mods[1] == old.mods[1] && new.mods[0] >= old.mods[0]
	case old.name == new.name && (old.name == "timestamp" || old.name == "timestamptz" || old.name == "time" || old.name == "timetz"):
		if len(new.mods) == 0 {
			return true // unconstrained precision is the maximum, 6
		}
		return len(old.mods) > 0 && new.mods[0] >= old.mods[0]
	case old.name == "varbit" && new.name == "varbit":
		return widened()
	case old.name == "cidr" && new.name == "inet":
		return true
	}
	return false
}

// conversionCannotFail reports whether every value of type old converts to
// type new by assignment: widening integer and float conversions, anything
// to unconstrained text or varchar, and the binary-coercible changes.
func conversionCannotFail(old, new colType) bool {
	if binaryCoercible(old, new) {
		return true
	}
	if old.array || new.array {
		return false
	}
	if new.builtin("text") || (new.builtin("varchar") && len(new.mods) == 0) {
		return true
	}
	unconstrainedNumeric := new.builtin("numeric") && len(new.mods) == 0
	switch {
	case old.builtin("int2"):
		return new.builtin("int4", "int8", "float4", "float8") || unconstrainedNumeric
	case old.builtin("int4"):
		return new.builtin("int8", "float8") || unconstrainedNumeric
	case old.builtin("int8"):
		return unconstrainedNumeric
	case old.builtin("float4"):
		return new.builtin("float8")
	}
	return false
}

// needsUsing reports whether PostgreSQL refuses ALTER COLUMN ... TYPE from
// old to new without a USING clause because there is no assignment cast:
// from a string type to a built-in non-string type or to an enum of s
// (strings convert to other types only explicitly; user types such as
// citext or a domain over text may have an assignment cast, so they are
// let through), and between boolean and the integer types.
func needsUsing(s *schema.Schema, old, new colType) bool {
	if old.array != new.array {
		return true
	}
	if old.stringType() && !new.stringType() {
		if new.schema == "" {
			return true
		}
		if s != nil && s.Enums[schema.Key(new.schema, new.name)] != nil {
			return true
		}
	}
	ints := []string{"int2", "int4", "int8"}
	if old.builtin("bool") && new.builtin(ints...) || old.builtin(ints...) && new.builtin("bool") {
		return true
	}
	return false
}

// typeKnown reports whether a type exists as far as the schema tells: a
// built-in type, an enum, domain or table row type of the schema, or a type
// some column of the schema already has (extension types such as citext
// are only known that way).
func typeKnown(s *schema.Schema, t colType) bool {
	if t.schema == "" {
		return builtinTypeNames[t.name]
	}
	k := schema.Key(t.schema, t.name)
	if s.Enums[k] != nil || s.Domains[k] != nil || s.Tables[k] != nil || s.Views[k] != nil {
		return true
	}
	for _, tab := range s.Tables {
		for _, c := range tab.Columns {
			if ct, err := typeOfString(c.Type); err == nil && ct.schema == t.schema && ct.name == t.name {
				return true
			}
		}
	}
	return false
}

// typeLabel names a type for messages: public.mpaa_rating, numeric.
func (t colType) label() string {
	s := t.name
	if t.schema != "" {
		s = t.schema + "." + s
	}
	if t.array {
		s += "[]"
	}
	return s
}

// domainWithConstraints returns the domain when t is a domain carrying NOT
// NULL or CHECK constraints (adding a column of such a type makes
// PostgreSQL check every existing row, rewriting the table), else nil.
func domainWithConstraints(s *schema.Schema, t colType) *schema.Domain {
	if s == nil || t.schema == "" || t.array {
		return nil
	}
	d := s.Domains[schema.Key(t.schema, t.name)]
	if d == nil || (!d.NotNull && len(d.Checks) == 0) {
		return nil
	}
	return d
}

// columnTypeSQL renders a column type with its optional COLLATE clause.
func columnTypeSQL(tn *pg_query.TypeName, coll *pg_query.CollateClause) (string, error) {
	typ, err := deparseType(tn)
	if err != nil {
		return "", err
	}
	if coll == nil {
		return typ, nil
	}
	var parts []string
	for _, n := range coll.Collname {
		parts = append(parts, ident(n.GetString_().GetSval()))
	}
	return typ + " COLLATE " + strings.Join(parts, "."), nil
}

// withPartitions returns the table followed by its partitions, recursively
// (sorted by key at each level): a column of a partitioned table is a
// column of every partition, and indexes and constraints declared on a
// partition depend on it too.
func withPartitions(s *schema.Schema, t *schema.Table) []*schema.Table {
	out := []*schema.Table{t}
	for _, k := range t.Partitions {
		if p := s.Tables[k]; p != nil {
			out = append(out, withPartitions(s, p)...)
		}
	}
	return out
}
