package schema

// Canonical forms.
//
// The offline loader (ParseDump) and the live introspection (package db)
// must fill the model with identical strings for identical objects. Both
// therefore run every expression, statement and clause through the same
// functions here: parse with pg_query, deparse with pg_query. The live side
// feeds PostgreSQL's own text (pg_get_expr, pg_get_indexdef,
// pg_get_viewdef, pg_get_constraintdef, pg_get_triggerdef,
// pg_get_partkeydef, read with search_path = ''); the offline side feeds the
// parse-tree nodes of the dump, which pg_dump wrote from those same
// functions. Redundant parentheses, keyword case and spacing disappear in
// the round trip, so "CHECK (((VALUE >= 1901)))" and "CHECK (value >= 1901)"
// compare equal.
//
// Clauses that are not statements on their own (a constraint clause, a
// partition key) are canonicalised inside a synthetic statement whose prefix
// cutover builds itself ("ALTER TABLE x ADD CONSTRAINT n "); the canonical
// clause is the deparsed text after that known prefix. The synthetic names
// are plain lower-case identifiers, so the deparser never quotes them and
// the prefix is fixed.

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// CanonicalExpr returns the canonical form of one scalar expression (a
// column default, a generated column's expression, an index expression):
// it parses "SELECT <expr>" and deparses the expression.
func CanonicalExpr(expr string) (string, error) {
	tree, err := pg_query.Parse("SELECT " + expr)
	if err != nil {
		return "", fmt.Errorf("canonical expression %q: %w", expr, err)
	}
	sel := singleSelect(tree)
	if sel == nil || len(sel.TargetList) != 1 || sel.FromClause != nil {
		return "", fmt.Errorf("canonical expression %q: not a single expression", expr)
	}
	rt := sel.TargetList[0].GetResTarget()
	if rt == nil || rt.Name != "" {
		return "", fmt.Errorf("canonical expression %q: not a single expression", expr)
	}
	return deparseExpr(rt.Val)
}

// CanonicalStatement returns the canonical form of one SQL statement (an
// index or trigger definition).
func CanonicalStatement(stmt string) (string, error) {
	tree, err := pg_query.Parse(stmt)
	if err != nil {
		return "", fmt.Errorf("canonical statement: %w", err)
	}
	if len(tree.Stmts) != 1 {
		return "", fmt.Errorf("canonical statement: want one statement, got %d", len(tree.Stmts))
	}
	return deparseStmt(tree.Stmts[0].Stmt)
}

// CanonicalQuery returns the canonical form of a view's defining query
// (pg_get_viewdef output, with or without a trailing semicolon).
func CanonicalQuery(selectSQL string) (string, error) {
	tree, err := pg_query.Parse(selectSQL)
	if err != nil {
		return "", fmt.Errorf("canonical query: %w", err)
	}
	if len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetSelectStmt() == nil {
		return "", fmt.Errorf("canonical query: not a single SELECT")
	}
	return deparseStmt(tree.Stmts[0].Stmt)
}

// constraintPrefix is the synthetic statement a constraint clause is
// canonicalised in; see the package comment above.
const constraintPrefix = "ALTER TABLE x ADD CONSTRAINT n "

// CanonicalConstraint returns the canonical form of a table or domain
// constraint clause as it follows "ADD CONSTRAINT name" (pg_get_constraintdef
// output): "PRIMARY KEY (actor_id)", "CHECK (value >= 1901 AND value <=
// 2155)", "FOREIGN KEY (a) REFERENCES public.t (id) ON DELETE CASCADE".
// A trailing NOT VALID is dropped: validity is Constraint.Valid, so a
// validated and an unvalidated constraint differ only there.
//
// Method: the clause is parsed inside "ALTER TABLE x ADD CONSTRAINT n
// <clause>", the Constraint node is taken from the tree, and
// deparseConstraint renders it (see there).
func CanonicalConstraint(clause string) (string, error) {
	tree, err := pg_query.Parse(constraintPrefix + clause)
	if err != nil {
		return "", fmt.Errorf("canonical constraint %q: %w", clause, err)
	}
	var con *pg_query.Constraint
	if len(tree.Stmts) == 1 {
		if at := tree.Stmts[0].Stmt.GetAlterTableStmt(); at != nil && len(at.Cmds) == 1 {
			if cmd := at.Cmds[0].GetAlterTableCmd(); cmd != nil {
				con = cmd.Def.GetConstraint()
			}
		}
	}
	if con == nil {
		return "", fmt.Errorf("canonical constraint %q: not a constraint clause", clause)
	}
	return deparseConstraint(con)
}

// partKeyPrefix is the synthetic statement a partition key is
// canonicalised in.
const partKeyPrefix = "CREATE TABLE x () PARTITION BY "

// CanonicalPartitionKey returns the canonical form of a PARTITION BY clause
// without the keywords (pg_get_partkeydef output), e.g. "RANGE
// (payment_date)".
func CanonicalPartitionKey(def string) (string, error) {
	tree, err := pg_query.Parse(partKeyPrefix + def)
	if err != nil {
		return "", fmt.Errorf("canonical partition key %q: %w", def, err)
	}
	if len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetCreateStmt().GetPartspec() == nil {
		return "", fmt.Errorf("canonical partition key %q: not a partition key", def)
	}
	return deparsePartitionKey(tree.Stmts[0].Stmt.GetCreateStmt().GetPartspec())
}

// CanonicalType parses a type as written in SQL ("varchar(45)",
// "int4[]", "public.mpaa_rating") and returns it in format_type form.
func CanonicalType(typ string) (string, error) {
	tree, err := pg_query.Parse("SELECT NULL::" + typ)
	if err != nil {
		return "", fmt.Errorf("canonical type %q: %w", typ, err)
	}
	sel := singleSelect(tree)
	if sel == nil || len(sel.TargetList) != 1 {
		return "", fmt.Errorf("canonical type %q: not a type", typ)
	}
	tc := sel.TargetList[0].GetResTarget().GetVal().GetTypeCast()
	if tc == nil || tc.Arg.GetAConst() == nil || !tc.Arg.GetAConst().Isnull {
		return "", fmt.Errorf("canonical type %q: not a type", typ)
	}
	return FormatType(tc.TypeName), nil
}

func singleSelect(tree *pg_query.ParseResult) *pg_query.SelectStmt {
	if len(tree.Stmts) != 1 {
		return nil
	}
	return tree.Stmts[0].Stmt.GetSelectStmt()
}

// deparseStmt deparses one statement node.
func deparseStmt(n *pg_query.Node) (string, error) {
	out, err := pg_query.Deparse(&pg_query.ParseResult{Stmts: []*pg_query.RawStmt{{Stmt: n}}})
	if err != nil {
		return "", fmt.Errorf("deparse: %w", err)
	}
	return out, nil
}

// deparseExpr deparses an expression node, by the fast path when it
// applies.
func deparseExpr(n *pg_query.Node) (string, error) {
	fast, ok := fastExpr(n)
	if ok && !verifyFastPaths {
		return fast, nil
	}
	out, err := deparseExprSlow(n)
	if ok && err == nil && out != fast {
		panic(fmt.Sprintf("schema: fast expression path wrote %q, the deparser %q", fast, out))
	}
	return out, err
}

// deparseExprSlow deparses an expression node by wrapping it in a SELECT.
func deparseExprSlow(n *pg_query.Node) (string, error) {
	sel := &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: &pg_query.SelectStmt{
		TargetList: []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: n}}}},
	}}}
	out, err := deparseStmt(sel)
	if err != nil {
		return "", err
	}
	expr, ok := strings.CutPrefix(out, "SELECT ")
	if !ok {
		return "", fmt.Errorf("deparse expression: unexpected %q", out)
	}
	return expr, nil
}

// deparseConstraint renders a Constraint node as the clause following
// "ADD CONSTRAINT name". The node is deparsed inside a synthetic
// "ALTER TABLE x ADD CONSTRAINT n <constraint>" (with the name and NOT VALID
// temporarily replaced, then restored) and the known prefix is cut off.
func deparseConstraint(c *pg_query.Constraint) (string, error) {
	fast, ok := fastConstraint(c)
	if ok && !verifyFastPaths {
		return fast, nil
	}
	out, err := deparseConstraintSlow(c)
	if ok && err == nil && out != fast {
		panic(fmt.Sprintf("schema: fast constraint path wrote %q, the deparser %q", fast, out))
	}
	return out, err
}

func deparseConstraintSlow(c *pg_query.Constraint) (string, error) {
	name, skip := c.Conname, c.SkipValidation
	c.Conname, c.SkipValidation = "n", false
	defer func() { c.Conname, c.SkipValidation = name, skip }()
	stmt := &pg_query.Node{Node: &pg_query.Node_AlterTableStmt{AlterTableStmt: &pg_query.AlterTableStmt{
		Relation: &pg_query.RangeVar{Relname: "x", Inh: true, Relpersistence: "p"},
		Objtype:  pg_query.ObjectType_OBJECT_TABLE,
		Cmds: []*pg_query.Node{{Node: &pg_query.Node_AlterTableCmd{AlterTableCmd: &pg_query.AlterTableCmd{
			Subtype:  pg_query.AlterTableType_AT_AddConstraint,
			Def:      &pg_query.Node{Node: &pg_query.Node_Constraint{Constraint: c}},
			Behavior: pg_query.DropBehavior_DROP_RESTRICT,
		}}}},
	}}}
	out, err := deparseStmt(stmt)
	if err != nil {
		return "", err
	}
	clause, ok := strings.CutPrefix(out, constraintPrefix)
	if !ok {
		return "", fmt.Errorf("deparse constraint: unexpected %q", out)
	}
	return clause, nil
}

// deparsePartitionKey renders a PARTITION BY specification as "RANGE
// (a, b)": the spec is deparsed inside "CREATE TABLE x () PARTITION BY ...",
// the prefix is cut, and a space is put after the strategy keyword, as
// pg_get_partkeydef writes it.
func deparsePartitionKey(spec *pg_query.PartitionSpec) (string, error) {
	stmt := &pg_query.Node{Node: &pg_query.Node_CreateStmt{CreateStmt: &pg_query.CreateStmt{
		Relation: &pg_query.RangeVar{Relname: "x", Inh: true, Relpersistence: "p"},
		Partspec: spec,
		Oncommit: pg_query.OnCommitAction_ONCOMMIT_NOOP,
	}}}
	out, err := deparseStmt(stmt)
	if err != nil {
		return "", err
	}
	clause, ok := strings.CutPrefix(out, partKeyPrefix)
	if !ok {
		return "", fmt.Errorf("deparse partition key: unexpected %q", out)
	}
	for _, s := range []string{"RANGE", "LIST", "HASH"} {
		if rest, ok := strings.CutPrefix(clause, s+"("); ok {
			return s + " (" + rest, nil
		}
	}
	return "", fmt.Errorf("deparse partition key: unexpected %q", out)
}

// FormatType writes a type name as PostgreSQL's format_type() does with an
// empty search_path: built-in types by their SQL names ("integer",
// "character varying(45)", "timestamp(3) without time zone", "text[]"),
// every other type schema-qualified and quoted where needed
// ("public.mpaa_rating", `public."bıgınt"`). An unqualified name that is
// not a built-in type resolves to schema public, as with the default
// search_path. Arrays print one "[]" whatever their dimensions, as
// format_type does.
func FormatType(tn *pg_query.TypeName) string {
	if tn == nil {
		return ""
	}
	var names []string
	for _, n := range tn.Names {
		names = append(names, n.GetString_().GetSval())
	}
	var nsp, name string
	switch len(names) {
	case 0:
		return ""
	case 1:
		name = names[0]
	default:
		nsp, name = names[len(names)-2], names[len(names)-1]
	}
	mods := typmodValues(tn.Typmods)
	var out string
	if nsp == "" || nsp == "pg_catalog" {
		if b, ok := builtinType(name, mods); ok {
			out = b
		} else if nsp == "pg_catalog" || catalogTypes[name] {
			out = QuoteIdent(name) + genericTypmods(mods)
		}
	}
	if out == "" {
		if nsp == "" {
			nsp = "public"
		}
		out = QuoteIdent(nsp) + "." + QuoteIdent(name) + genericTypmods(mods)
	}
	if len(tn.ArrayBounds) > 0 {
		out += "[]"
	}
	return out
}

// typmod is one type modifier as written: a number or an identifier.
type typmod struct {
	num   int64
	isNum bool
	text  string
}

func typmodValues(nodes []*pg_query.Node) []typmod {
	var out []typmod
	for _, n := range nodes {
		switch {
		case n.GetAConst() != nil && n.GetAConst().GetIval() != nil:
			out = append(out, typmod{num: int64(n.GetAConst().GetIval().Ival), isNum: true})
		case n.GetAConst() != nil && n.GetAConst().GetSval() != nil:
			out = append(out, typmod{text: n.GetAConst().GetSval().Sval})
		case n.GetAConst() != nil && n.GetAConst().GetFval() != nil:
			out = append(out, typmod{text: n.GetAConst().GetFval().Fval})
		case n.GetColumnRef() != nil:
			var parts []string
			for _, f := range n.GetColumnRef().Fields {
				parts = append(parts, f.GetString_().GetSval())
			}
			out = append(out, typmod{text: strings.Join(parts, ".")})
		}
	}
	return out
}

func genericTypmods(mods []typmod) string {
	if len(mods) == 0 {
		return ""
	}
	parts := make([]string, len(mods))
	for i, m := range mods {
		if m.isNum {
			parts[i] = strconv.FormatInt(m.num, 10)
		} else {
			parts[i] = m.text
		}
	}
	return "(" + strings.Join(parts, ",") + ")"
}

// builtinType handles the types format_type prints specially (SQL-standard
// names and typmod layouts), accepting both the internal and the SQL
// spellings a parse tree can hold.
func builtinType(name string, mods []typmod) (string, bool) {
	paren := func(i int) string {
		if len(mods) > i && mods[i].isNum {
			return "(" + strconv.FormatInt(mods[i].num, 10) + ")"
		}
		return ""
	}
	switch name {
	case "int2", "smallint":
		return "smallint", true
	case "int4", "int", "integer":
		return "integer", true
	case "int8", "bigint":
		return "bigint", true
	case "float4", "real":
		return "real", true
	case "float8":
		return "double precision", true
	case "bool", "boolean":
		return "boolean", true
	case "numeric", "decimal":
		switch {
		case len(mods) >= 2 && mods[0].isNum && mods[1].isNum:
			return fmt.Sprintf("numeric(%d,%d)", mods[0].num, mods[1].num), true
		case len(mods) == 1 && mods[0].isNum:
			return fmt.Sprintf("numeric(%d,0)", mods[0].num), true
		}
		return "numeric", true
	case "varchar":
		return "character varying" + paren(0), true
	case "bpchar":
		if len(mods) == 0 {
			// bpchar without a length is not character(1); format_type
			// says "bpchar".
			return "bpchar", true
		}
		return "character" + paren(0), true
	case "bit":
		return "bit" + paren(0), true
	case "varbit":
		return "bit varying" + paren(0), true
	case "timestamp":
		return "timestamp" + paren(0) + " without time zone", true
	case "timestamptz":
		return "timestamp" + paren(0) + " with time zone", true
	case "time":
		return "time" + paren(0) + " without time zone", true
	case "timetz":
		return "time" + paren(0) + " with time zone", true
	case "interval":
		return "interval" + intervalTypmod(mods), true
	case "char":
		return `"char"`, true
	}
	return "", false
}

// Interval field bits (PostgreSQL's datetime.h) and the typmod meaning "all
// fields".
const (
	intervalMonth     = 1 << 1
	intervalYear      = 1 << 2
	intervalDay       = 1 << 3
	intervalHour      = 1 << 10
	intervalMinute    = 1 << 11
	intervalSecond    = 1 << 12
	intervalFullRange = 0x7FFF
)

// intervalTypmod writes an interval's fields and precision as
// intervaltypmodout does: " day to second(3)", "(3)", " year to month".
func intervalTypmod(mods []typmod) string {
	if len(mods) == 0 || !mods[0].isNum {
		return ""
	}
	fields := ""
	switch mods[0].num {
	case intervalYear:
		fields = " year"
	case intervalMonth:
		fields = " month"
	case intervalDay:
		fields = " day"
	case intervalHour:
		fields = " hour"
	case intervalMinute:
		fields = " minute"
	case intervalSecond:
		fields = " second"
	case intervalYear | intervalMonth:
		fields = " year to month"
	case intervalDay | intervalHour:
		fields = " day to hour"
	case intervalDay | intervalHour | intervalMinute:
		fields = " day to minute"
	case intervalDay | intervalHour | intervalMinute | intervalSecond:
		fields = " day to second"
	case intervalHour | intervalMinute:
		fields = " hour to minute"
	case intervalHour | intervalMinute | intervalSecond:
		fields = " hour to second"
	case intervalMinute | intervalSecond:
		fields = " minute to second"
	}
	if len(mods) >= 2 && mods[1].isNum {
		return fields + "(" + strconv.FormatInt(mods[1].num, 10) + ")"
	}
	return fields
}

// catalogTypes are the other base, pseudo and range types of pg_catalog: an
// unqualified reference to one of them is not a user type in public.
var catalogTypes = setOf(
	"text", "bytea", "name", "oid", "tid", "xid", "xid8", "cid", "date",
	"json", "jsonb", "jsonpath", "xml", "uuid", "money", "inet", "cidr",
	"macaddr", "macaddr8", "point", "line", "lseg", "box", "path", "polygon",
	"circle", "tsvector", "tsquery", "gtsvector", "regclass", "regtype",
	"regproc", "regprocedure", "regoper", "regoperator", "regconfig",
	"regdictionary", "regnamespace", "regrole", "regcollation", "pg_lsn",
	"pg_snapshot", "txid_snapshot", "int4range", "int8range", "numrange",
	"tsrange", "tstzrange", "daterange", "int4multirange", "int8multirange",
	"nummultirange", "tsmultirange", "tstzmultirange", "datemultirange",
	"record", "void", "trigger", "event_trigger", "anyelement", "anyarray",
	"anynonarray", "anyenum", "anyrange", "anymultirange", "cstring",
	"internal", "unknown", "refcursor", "aclitem", "int2vector", "oidvector",
	"pg_node_tree", "pg_ndistinct", "pg_dependencies", "pg_mcv_list",
)

func setOf(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// QuoteIdent quotes an identifier exactly when PostgreSQL's
// quote_identifier would: unless it is all lower-case letters, digits and
// underscores (not starting with a digit) and not a keyword other than an
// unreserved one.
func QuoteIdent(name string) string {
	safe := name != ""
	for i := 0; i < len(name) && safe; i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			safe = false
		}
	}
	if safe && !reservedKeywords[name] {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// reservedKeywords are PostgreSQL 16's keywords that are not
// UNRESERVED_KEYWORD (kwlist.h): quote_identifier quotes them.
var reservedKeywords = setOf(
	"all", "analyse", "analyze", "and", "any", "array", "as", "asc",
	"asymmetric", "authorization", "between", "bigint", "binary", "bit",
	"boolean", "both", "case", "cast", "char", "character", "check",
	"coalesce", "collate", "collation", "column", "concurrently",
	"constraint", "create", "cross", "current_catalog", "current_date",
	"current_role", "current_schema", "current_time", "current_timestamp",
	"current_user", "dec", "decimal", "default", "deferrable", "desc",
	"distinct", "do", "else", "end", "except", "exists", "extract", "false",
	"fetch", "float", "for", "foreign", "freeze", "from", "full", "grant",
	"greatest", "group", "grouping", "having", "ilike", "in", "initially",
	"inner", "inout", "int", "integer", "intersect", "interval", "into", "is",
	"isnull", "join", "json_array", "json_arrayagg", "json_object",
	"json_objectagg", "lateral", "leading", "least", "left", "like", "limit",
	"localtime", "localtimestamp", "national", "natural", "nchar", "none",
	"normalize", "not", "notnull", "null", "nullif", "numeric", "offset", "on",
	"only", "or", "order", "out", "outer", "overlaps", "overlay", "placing",
	"position", "precision", "primary", "real", "references", "returning",
	"right", "row", "select", "session_user", "setof", "similar", "smallint",
	"some", "substring", "symmetric", "system_user", "table", "tablesample",
	"then", "time", "timestamp", "to", "trailing", "treat", "trim", "true",
	"union", "unique", "user", "using", "values", "varchar", "variadic",
	"verbose", "when", "where", "window", "with", "xmlattributes",
	"xmlconcat", "xmlelement", "xmlexists", "xmlforest", "xmlnamespaces",
	"xmlparse", "xmlpi", "xmlroot", "xmlserialize", "xmltable",
)

// makeObjectName builds an implicit object name as PostgreSQL's
// makeObjectName does: name1_name2_label, truncating the longer of name1
// and name2 until it fits in NAMEDATALEN-1 (63) bytes, on character
// boundaries.
func makeObjectName(name1, name2, label string) string {
	overhead := 0
	if name2 != "" {
		overhead++
	}
	if label != "" {
		overhead += len(label) + 1
	}
	avail := 63 - overhead
	n1, n2 := len(name1), len(name2)
	for n1+n2 > avail {
		if n1 > n2 {
			n1--
		} else {
			n2--
		}
	}
	out := clipUTF8(name1, n1)
	if name2 != "" {
		out += "_" + clipUTF8(name2, n2)
	}
	if label != "" {
		out += "_" + label
	}
	return out
}

// clipUTF8 returns the longest prefix of s of at most n bytes that ends on
// a character boundary.
func clipUTF8(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Fast paths. Deparsing costs a round trip through the C library per call
// (about 7µs); a 1,000-table dump has thousands of plain primary keys,
// foreign keys and column indexes. fastConstraint and fastIndex render
// exactly those plain shapes in Go, following pg_query's deparser
// (postgres_deparse.c: deparseConstraint, deparseIndexStmt,
// deparseRangeVar, deparseColumnList) line by line, and decline everything
// else, which then goes through the deparser. The tests run with
// verifyFastPaths set, so every fast result they meet is compared with the
// deparser's.

// verifyFastPaths makes every fast-path result be checked against the
// deparser (tests set it).
var verifyFastPaths = false

// fastConstraint renders a PRIMARY KEY, UNIQUE or FOREIGN KEY constraint
// with plain column lists and no index options, without its name and
// without NOT VALID (see deparseConstraint).
func fastConstraint(c *pg_query.Constraint) (string, bool) {
	if len(c.Including) > 0 || len(c.Options) > 0 || c.Indexname != "" || c.Indexspace != "" || c.IsNoInherit {
		return "", false
	}
	var b strings.Builder
	switch c.Contype {
	case pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_UNIQUE:
		if len(c.Keys) == 0 {
			return "", false
		}
		if c.Contype == pg_query.ConstrType_CONSTR_PRIMARY {
			b.WriteString("PRIMARY KEY (")
		} else if c.NullsNotDistinct {
			b.WriteString("UNIQUE NULLS NOT DISTINCT (")
		} else {
			b.WriteString("UNIQUE (")
		}
		if !writeColumnList(&b, c.Keys) {
			return "", false
		}
		b.WriteByte(')')
	case pg_query.ConstrType_CONSTR_FOREIGN:
		pk := c.Pktable
		if len(c.FkAttrs) == 0 || len(c.PkAttrs) == 0 || pk == nil || !pk.Inh || pk.Catalogname != "" || pk.Alias != nil ||
			len(c.FkDelSetCols) > 0 || (c.FkMatchtype != "" && c.FkMatchtype != "s" && c.FkMatchtype != "f") {
			return "", false
		}
		b.WriteString("FOREIGN KEY (")
		if !writeColumnList(&b, c.FkAttrs) {
			return "", false
		}
		b.WriteString(") REFERENCES ")
		if pk.Schemaname != "" {
			b.WriteString(QuoteIdent(pk.Schemaname) + ".")
		}
		b.WriteString(QuoteIdent(pk.Relname) + " (")
		if !writeColumnList(&b, c.PkAttrs) {
			return "", false
		}
		b.WriteByte(')')
		if c.FkMatchtype == "f" {
			b.WriteString(" MATCH FULL")
		}
		for _, a := range []struct{ on, action string }{{" ON UPDATE ", c.FkUpdAction}, {" ON DELETE ", c.FkDelAction}} {
			switch a.action {
			case "", "a":
			case "r":
				b.WriteString(a.on + "RESTRICT")
			case "c":
				b.WriteString(a.on + "CASCADE")
			case "n":
				b.WriteString(a.on + "SET NULL")
			case "d":
				b.WriteString(a.on + "SET DEFAULT")
			default:
				return "", false
			}
		}
	default:
		return "", false
	}
	if c.Deferrable {
		b.WriteString(" DEFERRABLE")
	}
	if c.Initdeferred {
		b.WriteString(" INITIALLY DEFERRED")
	}
	return b.String(), true
}

// writeColumnList writes quoted names separated by ", " (deparseColumnList).
func writeColumnList(b *strings.Builder, names []*pg_query.Node) bool {
	for i, n := range names {
		s := n.GetString_()
		if s == nil {
			return false
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(QuoteIdent(s.Sval))
	}
	return true
}

// fastIndex renders a CREATE INDEX over plain columns (see
// deparseIndexStmt).
func fastIndex(ix *pg_query.IndexStmt) (string, bool) {
	rv := ix.Relation
	if ix.Idxname == "" || ix.AccessMethod == "" || rv == nil || rv.Catalogname != "" || rv.Alias != nil ||
		len(ix.IndexIncludingParams) > 0 || len(ix.Options) > 0 || ix.TableSpace != "" || ix.WhereClause != nil ||
		ix.NullsNotDistinct || ix.Concurrent || ix.IfNotExists || len(ix.IndexParams) == 0 {
		return "", false
	}
	var b strings.Builder
	b.WriteString("CREATE ")
	if ix.Unique {
		b.WriteString("UNIQUE ")
	}
	b.WriteString("INDEX " + QuoteIdent(ix.Idxname) + " ON ")
	if !rv.Inh {
		b.WriteString("ONLY ")
	}
	if rv.Schemaname != "" {
		b.WriteString(QuoteIdent(rv.Schemaname) + ".")
	}
	b.WriteString(QuoteIdent(rv.Relname) + " USING " + QuoteIdent(ix.AccessMethod) + " (")
	for i, p := range ix.IndexParams {
		e := p.GetIndexElem()
		if e == nil || e.Name == "" || e.Expr != nil || len(e.Collation) > 0 || len(e.Opclass) > 0 ||
			e.Ordering != pg_query.SortByDir_SORTBY_DEFAULT || e.NullsOrdering != pg_query.SortByNulls_SORTBY_NULLS_DEFAULT {
			return "", false
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(QuoteIdent(e.Name))
	}
	b.WriteByte(')')
	return b.String(), true
}

// deparseIndex renders a CREATE INDEX statement, by the fast path when it
// applies.
func deparseIndex(ix *pg_query.IndexStmt) (string, error) {
	fast, ok := fastIndex(ix)
	if ok && !verifyFastPaths {
		return fast, nil
	}
	out, err := deparseStmt(&pg_query.Node{Node: &pg_query.Node_IndexStmt{IndexStmt: ix}})
	if ok && err == nil && out != fast {
		panic(fmt.Sprintf("schema: fast index path wrote %q, the deparser %q", fast, out))
	}
	return out, err
}

// fastExpr renders the expressions column defaults are mostly made of:
// constants, casts of constants to a type outside pg_catalog, function
// calls with such arguments, and current_date and its kin (see
// deparseAConst, deparseTypeCast, deparseFuncCall,
// deparseSQLValueFunction).
func fastExpr(n *pg_query.Node) (string, bool) {
	switch e := n.Node.(type) {
	case *pg_query.Node_AConst:
		return fastConst(e.AConst)
	case *pg_query.Node_FuncCall:
		fc := e.FuncCall
		if fc.Funcformat != pg_query.CoercionForm_COERCE_EXPLICIT_CALL || len(fc.Funcname) != 1 || fc.AggDistinct ||
			fc.AggStar || fc.FuncVariadic || len(fc.AggOrder) > 0 || fc.AggFilter != nil || fc.Over != nil || fc.AggWithinGroup {
			return "", false
		}
		name := fc.Funcname[0].GetString_()
		if name == nil {
			return "", false
		}
		args := make([]string, len(fc.Args))
		for i, a := range fc.Args {
			s, ok := fastExpr(a)
			if !ok {
				return "", false
			}
			args[i] = s
		}
		return QuoteIdent(name.Sval) + "(" + strings.Join(args, ", ") + ")", true
	case *pg_query.Node_TypeCast:
		c, tn := e.TypeCast.Arg.GetAConst(), e.TypeCast.TypeName
		if c == nil || tn == nil || tn.Setof || tn.PctType || len(tn.Typmods) > 0 || len(tn.ArrayBounds) > 0 || len(tn.Names) == 0 {
			return "", false
		}
		names := make([]string, len(tn.Names))
		for i, nn := range tn.Names {
			s := nn.GetString_()
			if s == nil {
				return "", false
			}
			names[i] = QuoteIdent(s.Sval)
		}
		typ := strings.Join(names, ".")
		if len(names) == 2 && names[0] == "pg_catalog" {
			// deparseTypeName's SQL spellings; bpchar and bool casts of
			// constants have special forms, left to the deparser.
			name := tn.Names[1].GetString_().GetSval()
			if sql, ok := catalogCastNames[name]; ok {
				typ = sql
			} else if name == "bpchar" || name == "bool" || QuoteIdent(name) != name {
				return "", false
			} else {
				typ = "pg_catalog." + name
			}
		} else if names[0] == "pg_catalog" || (len(names) == 1 && names[0] == "point") {
			return "", false // " point 'x'" and other special forms
		}
		lit, ok := fastConst(c)
		if !ok {
			return "", false
		}
		if c.GetFval() != nil || (c.GetIval() != nil && c.GetIval().Ival < 0) {
			lit = "(" + lit + ")"
		}
		return lit + "::" + typ, true
	case *pg_query.Node_SqlvalueFunction:
		if e.SqlvalueFunction.Typmod != -1 {
			return "", false
		}
		name, ok := sqlValueFunctions[e.SqlvalueFunction.Op]
		return name, ok
	}
	return "", false
}

// catalogCastNames are deparseTypeName's spellings of pg_catalog types
// (without type modifiers).
var catalogCastNames = map[string]string{
	"varchar": "varchar", "numeric": "numeric", "int2": "smallint", "int4": "int", "int8": "bigint",
	"real": "real", "float4": "real", "float8": "double precision", "time": "time",
	"timetz": "time with time zone", "timestamp": "timestamp", "timestamptz": "timestamp with time zone",
	"interval": "interval",
}

var sqlValueFunctions = map[pg_query.SQLValueFunctionOp]string{
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE:      "current_date",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME:      "current_time",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP: "current_timestamp",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME:         "localtime",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP:    "localtimestamp",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_ROLE:      "current_role",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_USER:      "current_user",
	pg_query.SQLValueFunctionOp_SVFOP_USER:              "user",
	pg_query.SQLValueFunctionOp_SVFOP_SESSION_USER:      "session_user",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_CATALOG:   "current_catalog",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_SCHEMA:    "current_schema",
}

// fastConst renders a constant (deparseValue); strings with a backslash
// are written by the deparser in escape-string syntax and are left to it.
func fastConst(c *pg_query.A_Const) (string, bool) {
	if c.Isnull {
		return "NULL", true
	}
	switch v := c.Val.(type) {
	case *pg_query.A_Const_Ival:
		return strconv.FormatInt(int64(v.Ival.GetIval()), 10), true
	case *pg_query.A_Const_Fval:
		return v.Fval.GetFval(), true
	case *pg_query.A_Const_Boolval:
		if v.Boolval.GetBoolval() {
			return "true", true
		}
		return "false", true
	case *pg_query.A_Const_Sval:
		s := v.Sval.GetSval()
		if strings.Contains(s, `\`) {
			return "", false
		}
		return "'" + strings.ReplaceAll(s, "'", "''") + "'", true
	}
	return "", false
}
