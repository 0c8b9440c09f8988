package planner

// Helpers shared by the constraint and index change kinds (op_add_*.go,
// op_create_index.go, op_drop_*.go): PostgreSQL's own default names, so a
// plan creates exactly the names the naive statement would have; statement
// builders; the gates they share.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// nameDataLen is PostgreSQL's NAMEDATALEN: identifiers are at most 63 bytes.
const nameDataLen = 64

// makeObjectName is PostgreSQL's makeObjectName (indexcmds.c): name1, name2
// and label joined by "_", the longer of name1 and name2 truncated first so
// the result fits in 63 bytes, never cutting a UTF-8 character. An empty
// name2 or label is left out.
func makeObjectName(name1, name2, label string) string {
	n1, n2 := len(name1), len(name2)
	overhead := 0
	if label != "" {
		overhead += len(label) + 1
	}
	if name2 != "" {
		overhead++
	}
	avail := nameDataLen - 1 - overhead
	for n1+n2 > avail {
		if n1 > n2 {
			n1--
		} else {
			n2--
		}
	}
	out := name1[:clipUTF8(name1, n1)]
	if name2 != "" {
		out += "_" + name2[:clipUTF8(name2, n2)]
	}
	if label != "" {
		out += "_" + label
	}
	return out
}

// clipUTF8 returns the largest length <= n that does not cut a character.
func clipUTF8(s string, n int) int {
	if n >= len(s) {
		return len(s)
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return n
}

// nameAddition is PostgreSQL's ChooseIndexNameAddition (and
// ChooseForeignKeyConstraintNameAddition): the column names joined by "_",
// stopping once the result reaches NAMEDATALEN bytes.
func nameAddition(cols []string) string {
	var sb strings.Builder
	for _, c := range cols {
		if sb.Len() > 0 {
			sb.WriteByte('_')
		}
		if len(c) > nameDataLen-1 {
			c = c[:nameDataLen-1]
		}
		sb.WriteString(c)
		if sb.Len() >= nameDataLen {
			break
		}
	}
	return sb.String()
}

// indexColumnNames is PostgreSQL's ChooseIndexColumnNames: the name of each
// key and INCLUDE column of an index, "expr" for an expression, made
// distinct by appending a number ("expr", "expr1").
func indexColumnNames(elems []*pg_query.Node) []string {
	var out []string
	for _, n := range elems {
		ie := n.GetIndexElem()
		orig := "expr"
		switch {
		case ie == nil:
		case ie.Indexcolname != "":
			orig = ie.Indexcolname
		case ie.Name != "":
			orig = ie.Name
		}
		cur := orig
		for i := 1; containsString(out, cur); i++ {
			suffix := strconv.Itoa(i)
			cur = orig[:clipUTF8(orig, nameDataLen-1-len(suffix))] + suffix
		}
		out = append(out, cur)
	}
	return out
}

// nameKind says which namespace-wide names a generated name must avoid.
type nameKind int

const (
	// relationName: pg_class names (tables, views, indexes, sequences).
	relationName nameKind = iota
	// constraintName: pg_constraint names of the schema.
	constraintName
	// constraintIndexName: an index backing a constraint avoids both.
	constraintIndexName
)

// reserveName records a name this plan creates, so a second unnamed object
// in the same input gets PostgreSQL's next name ("t_a_check1"), as the naive
// statements run in sequence would.
func (b *builder) reserveName(kind nameKind, nsp, name string) {
	if b.names == nil {
		b.names = map[string]bool{}
	}
	if kind == relationName || kind == constraintIndexName {
		b.names["rel:"+nsp+"."+name] = true
		// A name an earlier statement frees only late (multistatement.go).
		b.claimRelation(nsp, name)
	}
	if kind == constraintName || kind == constraintIndexName {
		b.names["con:"+nsp+"."+name] = true
	}
}

// mark records a fact about the plan being built (a partition index
// attached, an index planned on some columns) and reports whether it was
// recorded before.
func (b *builder) mark(fact string) (already bool) {
	if b.names == nil {
		b.names = map[string]bool{}
	}
	already = b.names["fact:"+fact]
	b.names["fact:"+fact] = true
	return already
}

// marked reports whether the fact was recorded by mark.
func (b *builder) marked(fact string) bool { return b.names["fact:"+fact] }

// nameTaken reports whether name is in use in schema nsp, in the schema
// model (when there is one) or among the names this plan creates.
func (b *builder) nameTaken(kind nameKind, nsp, name string) bool {
	if (kind == relationName || kind == constraintIndexName) && (b.names["rel:"+nsp+"."+name] || relationExists(b.schema, nsp, name)) {
		return true
	}
	if (kind == constraintName || kind == constraintIndexName) && (b.names["con:"+nsp+"."+name] || constraintExists(b.schema, nsp, name)) {
		return true
	}
	return false
}

// chooseName is PostgreSQL's ChooseRelationName / ChooseConstraintName:
// makeObjectName(name1, name2, label), and on a conflict label1, label2...
// The name is reserved for the rest of the plan.
func (b *builder) chooseName(kind nameKind, nsp, name1, name2, label string) string {
	mod := label
	for pass := 1; ; pass++ {
		name := makeObjectName(name1, name2, mod)
		if !b.nameTaken(kind, nsp, name) {
			b.reserveName(kind, nsp, name)
			return name
		}
		mod = label + strconv.Itoa(pass)
	}
}

// relationExists reports whether schema nsp has a table, view, index or
// sequence named name; false without a schema.
func relationExists(s *schema.Schema, nsp, name string) bool {
	if s == nil {
		return false
	}
	k := schema.Key(nsp, name)
	if s.Tables[k] != nil || s.Views[k] != nil || s.Sequences[k] != nil {
		return true
	}
	for _, t := range s.Tables {
		if t.Schema == nsp && t.Index(name) != nil {
			return true
		}
	}
	return false
}

// constraintExists reports whether a table of schema nsp has a constraint
// named name; false without a schema.
func constraintExists(s *schema.Schema, nsp, name string) bool {
	if s == nil {
		return false
	}
	for _, t := range s.Tables {
		if t.Schema == nsp && t.Constraint(name) != nil {
			return true
		}
	}
	return false
}

// findIndex returns the index named name in schema nsp and its table.
func findIndex(s *schema.Schema, nsp, name string) (*schema.Table, *schema.Index) {
	if s == nil {
		return nil, nil
	}
	keys := make([]string, 0, len(s.Tables))
	for k := range s.Tables {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t := s.Tables[k]
		if t.Schema != nsp {
			continue
		}
		if ix := t.Index(name); ix != nil {
			return t, ix
		}
	}
	return nil, nil
}

// tableRel is the relName of a schema table.
func tableRel(t *schema.Table) relName { return relName{t.Schema, t.Name} }

// rangeVar is the parse-tree form of a qualified relation.
func rangeVar(r relName) *pg_query.RangeVar {
	return &pg_query.RangeVar{Schemaname: r.Schema, Relname: r.Name, Inh: true, Relpersistence: "p"}
}

// deparseStmt deparses one statement node.
func deparseStmt(n *pg_query.Node) (string, error) {
	return pg_query.Deparse(&pg_query.ParseResult{Stmts: []*pg_query.RawStmt{{Stmt: n}}})
}

// addConstraintSQL is ALTER TABLE t ADD <con>, deparsed from the parse tree
// so every clause the user wrote (MATCH, ON DELETE, DEFERRABLE...) is kept.
func addConstraintSQL(t relName, con *pg_query.Constraint) (string, error) {
	return deparseStmt(&pg_query.Node{Node: &pg_query.Node_AlterTableStmt{AlterTableStmt: &pg_query.AlterTableStmt{
		Relation: rangeVar(t),
		Objtype:  pg_query.ObjectType_OBJECT_TABLE,
		Cmds: []*pg_query.Node{{Node: &pg_query.Node_AlterTableCmd{AlterTableCmd: &pg_query.AlterTableCmd{
			Subtype:  pg_query.AlterTableType_AT_AddConstraint,
			Def:      &pg_query.Node{Node: &pg_query.Node_Constraint{Constraint: con}},
			Behavior: pg_query.DropBehavior_DROP_RESTRICT,
		}}}},
	}}})
}

// dropConstraintSQL undoes an added constraint.
func dropConstraintSQL(t relName, name string) string {
	return fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", t.quoted(), ident(name))
}

// validateConstraintSQL validates a NOT VALID constraint.
func validateConstraintSQL(t relName, name string) string {
	return fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", t.quoted(), ident(name))
}

// noUndo is the rollback of a step that changes nothing that needs undoing.
func noUndo(why string) string { return "SELECT 1 /* " + why + " */" }

// precheck is a read-only step that runs query, whose result must be zero
// or true, before a change that would fail (or, NOT VALID, start rejecting
// writes) on data that does not fit; its gate is the same query, so the
// plan stops until the data is fixed. scan says what the query reads.
func precheck(id, summary string, t relName, query, gate, scan string) plans.Step {
	return plans.Step{
		ID:            id,
		Summary:       summary,
		SQL:           query,
		Rollback:      noUndo("a read-only check"),
		Lock:          plans.LockAccessShare,
		Table:         t.String(),
		Transactional: true,
		Rewrite:       plans.ImpactScan,
		Gate:          &plans.Gate{Description: gate, SQL: query},
		Hazards: []plans.Hazard{{Type: plans.HazardTableScan,
			Message: scan + "; nothing is locked against the application"}},
	}
}

// indexValidGate checks that a concurrently built index is valid: a failed
// or interrupted build leaves an INVALID index behind (which IF NOT EXISTS
// then wrongly accepts).
func indexValidGate(ix relName) *plans.Gate {
	return &plans.Gate{
		Description: "index " + ix.String() + " exists and is valid (a failed concurrent build leaves it INVALID: drop it and run the step again)",
		SQL:         fmt.Sprintf("SELECT indisvalid FROM pg_catalog.pg_index WHERE indexrelid = %s::regclass", literal(ix.quoted())),
	}
}

// dataStage is where a step that must see the table's final data goes (a
// NOT VALID constraint whose gate counts violating rows, a unique index
// build): the expand stage, unless an earlier statement of the input
// changes the table's data in a batched backfill, which runs in the migrate
// phase; then right after it.
func (b *builder) dataStage(t relName) stage {
	for _, spec := range b.backfills {
		if spec.table == t {
			return stageAfterBackfill
		}
	}
	return stageExpand
}

// nameList turns a list of String nodes (column lists of constraints) into
// names.
func nameList(nodes []*pg_query.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.GetString_().GetSval())
	}
	return out
}

// identList quotes and joins column names: "a", "Unit Price".
func identList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = ident(c)
	}
	return strings.Join(q, ", ")
}

// objectRel turns the name list of a DROP or ALTER TYPE object (name,
// schema.name) into a relName; unqualified names are in public.
func objectRel(si stmtInfo, items []*pg_query.Node) (relName, error) {
	names := nameList(items)
	switch len(names) {
	case 1:
		return relName{"public", names[0]}, nil
	case 2:
		return relName{names[0], names[1]}, nil
	}
	return relName{}, si.unsupported("names qualified with a database name are not supported; connect to that database instead")
}

// columnRefNames lists the distinct column names an expression refers to,
// in order of appearance (the last field of each column reference).
func columnRefNames(n *pg_query.Node) []string {
	var out []string
	if n == nil {
		return nil
	}
	walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if cr, ok := m.Interface().(*pg_query.ColumnRef); ok && len(cr.Fields) > 0 {
			if s := cr.Fields[len(cr.Fields)-1].GetString_(); s != nil && !containsString(out, s.Sval) {
				out = append(out, s.Sval)
			}
		}
	})
	return out
}

// sameSet reports whether two column lists hold the same names.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !containsString(b, x) {
			return false
		}
	}
	return true
}

// uniqueKeyOn reports whether the table has a PRIMARY KEY or UNIQUE
// constraint, or a valid non-partial unique index, over exactly the columns
// (in any order): what a foreign key referencing them requires.
func uniqueKeyOn(t *schema.Table, cols []string) bool {
	for _, c := range t.Constraints {
		if (c.Type == schema.PrimaryKey || c.Type == schema.Unique) && sameSet(c.Columns, cols) {
			return true
		}
	}
	for _, ix := range t.Indexes {
		if ix.Unique && ix.Valid && !strings.Contains(ix.Definition, " WHERE ") && sameSet(ix.Columns, cols) {
			return true
		}
	}
	return false
}
