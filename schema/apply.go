package schema

// Evolving the model statement by statement.
//
// A migration often holds several statements that build on each other:
// drop the views, then the table they read; add a column, then make it NOT
// NULL; drop a constraint, then add one under the same name. To check the
// second statement, the planner needs the schema as the first one leaves
// it. Apply computes that: it changes the model as PostgreSQL would change
// the database if the statement ran as written. Clone and Snapshot let a
// caller keep the model as it was.
//
// Apply reuses the dump loader (dump.go) for everything a dump can hold:
// CREATE TABLE / INDEX / VIEW / MATERIALIZED VIEW / TYPE / DOMAIN /
// SEQUENCE / TRIGGER and the ALTER TABLE subcommands pg_dump writes, so
// implicit names, canonical definitions and the columns views use come out
// exactly as ParseDump (and db.Introspect) fill them. What a dump never
// holds (renames, drops with their cascades, type changes) is here.

import (
	"fmt"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/pgtree"
)

// Clone returns a deep copy of the schema: nothing is shared with s.
func (s *Schema) Clone() *Schema {
	if s == nil {
		return nil
	}
	c := &Schema{
		ServerVersion: s.ServerVersion,
		Source:        s.Source,
		Tables:        make(map[string]*Table, len(s.Tables)),
		Views:         make(map[string]*View, len(s.Views)),
		Enums:         make(map[string]*Enum, len(s.Enums)),
		Domains:       make(map[string]*Domain, len(s.Domains)),
		Sequences:     make(map[string]*Sequence, len(s.Sequences)),
	}
	for k, t := range s.Tables {
		c.Tables[k] = t.clone()
	}
	for k, v := range s.Views {
		c.Views[k] = v.clone()
	}
	for k, e := range s.Enums {
		c.Enums[k] = e.clone()
	}
	for k, d := range s.Domains {
		c.Domains[k] = d.clone()
	}
	for k, q := range s.Sequences {
		c.Sequences[k] = q.clone()
	}
	return c
}

// Snapshot returns a copy of the schema that shares its tables, views,
// types and sequences with s: only the maps are new, so it is cheap (no
// object is copied). It keeps describing the schema as it is now when s is
// later changed by Apply, because Apply never modifies a shared object in
// place: it replaces it in s's map by a changed copy. Code that modifies
// the objects of a schema by other means must Clone it instead.
func (s *Schema) Snapshot() *Schema {
	if s == nil {
		return nil
	}
	c := &Schema{
		ServerVersion: s.ServerVersion,
		Source:        s.Source,
		Tables:        make(map[string]*Table, len(s.Tables)),
		Views:         make(map[string]*View, len(s.Views)),
		Enums:         make(map[string]*Enum, len(s.Enums)),
		Domains:       make(map[string]*Domain, len(s.Domains)),
		Sequences:     make(map[string]*Sequence, len(s.Sequences)),
	}
	for k, t := range s.Tables {
		c.Tables[k] = t
	}
	for k, v := range s.Views {
		c.Views[k] = v
	}
	for k, e := range s.Enums {
		c.Enums[k] = e
	}
	for k, d := range s.Domains {
		c.Domains[k] = d
	}
	for k, q := range s.Sequences {
		c.Sequences[k] = q
	}
	return c
}

func cloneStrings(ss []string) []string {
	if ss == nil {
		return nil
	}
	return append(make([]string, 0, len(ss)), ss...)
}

func (t *Table) clone() *Table {
	c := *t
	if t.Columns != nil {
		c.Columns = make([]*Column, len(t.Columns))
		for i, col := range t.Columns {
			cc := *col
			c.Columns[i] = &cc
		}
	}
	c.Indexes = cloneIndexes(t.Indexes)
	if t.Constraints != nil {
		c.Constraints = make([]*Constraint, len(t.Constraints))
		for i, con := range t.Constraints {
			cc := *con
			cc.Columns, cc.RefColumns = cloneStrings(con.Columns), cloneStrings(con.RefColumns)
			c.Constraints[i] = &cc
		}
	}
	if t.Triggers != nil {
		c.Triggers = make([]*Trigger, len(t.Triggers))
		for i, tr := range t.Triggers {
			tc := *tr
			tc.Events = cloneStrings(tr.Events)
			c.Triggers[i] = &tc
		}
	}
	c.Partitions = cloneStrings(t.Partitions)
	return &c
}

func cloneIndexes(ixs []*Index) []*Index {
	if ixs == nil {
		return nil
	}
	out := make([]*Index, len(ixs))
	for i, ix := range ixs {
		c := *ix
		c.Columns = cloneStrings(ix.Columns)
		out[i] = &c
	}
	return out
}

func (v *View) clone() *View {
	c := *v
	if v.Uses != nil {
		c.Uses = append(make([]ColumnRef, 0, len(v.Uses)), v.Uses...)
	}
	c.DependsOn = cloneStrings(v.DependsOn)
	c.Indexes = cloneIndexes(v.Indexes)
	return &c
}

func (e *Enum) clone() *Enum {
	c := *e
	c.Values = cloneStrings(e.Values)
	return &c
}

func (d *Domain) clone() *Domain {
	c := *d
	c.Checks = cloneStrings(d.Checks)
	return &c
}

func (q *Sequence) clone() *Sequence {
	c := *q
	if q.OwnedBy != nil {
		o := *q.OwnedBy
		c.OwnedBy = &o
	}
	return &c
}

// Apply changes the model as running stmt (one parsed statement: a
// pg_query RawStmt's Stmt) as written would change the database:
//
//   - CREATE TABLE (a new table is empty: RowEstimate and Bytes 0), CREATE
//     INDEX, CREATE [OR REPLACE] VIEW, CREATE MATERIALIZED VIEW, CREATE
//     TYPE ... AS ENUM, CREATE DOMAIN, CREATE SEQUENCE, ALTER SEQUENCE ...
//     OWNED BY, CREATE TRIGGER, ALTER TYPE ... ADD VALUE;
//   - ALTER TABLE ADD / DROP COLUMN (with what PostgreSQL drops with a
//     column: its indexes and constraints, and under CASCADE the views,
//     foreign keys and triggers using it), ALTER COLUMN TYPE (the type in
//     format_type form; indexes, constraints and views refer to the column
//     by name and keep doing so), SET / DROP NOT NULL, SET / DROP DEFAULT,
//     ADD CONSTRAINT (PRIMARY KEY and UNIQUE with their index, named like
//     the constraint; USING INDEX), DROP CONSTRAINT (CASCADE drops the
//     foreign keys that need it), VALIDATE CONSTRAINT, ADD IDENTITY,
//     ATTACH / DETACH PARTITION; column changes reach the partitions;
//   - RENAME of a column (index, constraint, trigger and view definitions,
//     the columns views use, sequence ownership and foreign keys of other
//     tables follow), of a table or view (partition links, foreign keys,
//     views, index and trigger definitions follow the new key), of an
//     index, a constraint or a sequence;
//   - DROP TABLE / VIEW / MATERIALIZED VIEW / INDEX / SEQUENCE / TYPE /
//     DOMAIN; CASCADE drops the dependent views (and a table's partitions,
//     foreign keys referencing it and sequences it owns).
//
// Any other statement (UPDATE, DELETE, SET, BEGIN, COMMENT, GRANT, CREATE
// FUNCTION, ALTER TABLE subcommands the model does not describe...) leaves
// the model as it is. A statement that refers to a table or column the
// model does not have is an error, except with IF EXISTS; Apply does not
// otherwise check that PostgreSQL would accept the statement (the planner
// does that before applying it), so on such an error the model may be
// partly changed.
//
// Apply never modifies an object (table, view, enum, domain, sequence) in
// place: it replaces it in s's maps by a changed copy, so a Snapshot taken
// before still shows the schema as it was. The statement node is not
// modified either.
func (s *Schema) Apply(stmt *pg_query.Node) error {
	if stmt == nil {
		return nil
	}
	a := &applier{s: s, copied: map[string]bool{}}
	err := a.statement(proto.Clone(stmt).(*pg_query.Node))
	a.sortTouched()
	return err
}

// applier carries one Apply call.
type applier struct {
	s *Schema
	// l is the dump loader over s, built when a statement needs it;
	// named holds "schema.prefix" of the names it knows (see names).
	l     *loader
	named map[string]bool
	// copied holds "kind:key" of the objects this call has already
	// replaced by a copy (or created): those may be changed in place.
	copied  map[string]bool
	touched []*Table
	views   []*View
}

// copyOnFirstUse returns m[key], replaced by a copy the first time this
// statement asks for it, so that snapshots sharing the old object never see
// the change; fresh reports that the copy was made now. nil when absent.
func copyOnFirstUse[T any](a *applier, m map[string]*T, kind, key string, clone func(*T) *T) (v *T, fresh bool) {
	v = m[key]
	if v == nil || a.copied[kind+":"+key] {
		return v, false
	}
	v = clone(v)
	m[key] = v
	a.copied[kind+":"+key] = true
	return v, true
}

// table returns the table to change, copied on first use; nil when the
// model has no such table.
func (a *applier) table(key string) *Table {
	t, fresh := copyOnFirstUse(a, a.s.Tables, "table", key, (*Table).clone)
	if fresh {
		a.touched = append(a.touched, t)
	}
	return t
}

// view returns the view to change, copied on first use, or nil.
func (a *applier) view(key string) *View {
	v, fresh := copyOnFirstUse(a, a.s.Views, "view", key, (*View).clone)
	if fresh {
		a.views = append(a.views, v)
	}
	return v
}

// sequence returns the sequence to change, copied on first use, or nil.
func (a *applier) sequence(key string) *Sequence {
	q, _ := copyOnFirstUse(a, a.s.Sequences, "seq", key, (*Sequence).clone)
	return q
}

// created records a table the statement created: it is this call's own.
func (a *applier) created(t *Table) {
	a.copied["table:"+t.Key()] = true
	a.touched = append(a.touched, t)
}

// sortTouched keeps the model's order: indexes, constraints, triggers and
// partitions by name.
func (a *applier) sortTouched() {
	for _, t := range a.touched {
		sort.SliceStable(t.Indexes, func(i, j int) bool { return t.Indexes[i].Name < t.Indexes[j].Name })
		sort.SliceStable(t.Constraints, func(i, j int) bool { return t.Constraints[i].Name < t.Constraints[j].Name })
		sort.SliceStable(t.Triggers, func(i, j int) bool { return t.Triggers[i].Name < t.Triggers[j].Name })
		sort.Strings(t.Partitions)
	}
	for _, v := range a.views {
		sort.SliceStable(v.Indexes, func(i, j int) bool { return v.Indexes[i].Name < v.Indexes[j].Name })
		sortUses(v)
	}
}

func sortUses(v *View) {
	sort.Slice(v.Uses, func(i, j int) bool {
		if v.Uses[i].Relation != v.Uses[j].Relation {
			return v.Uses[i].Relation < v.Uses[j].Relation
		}
		return v.Uses[i].Column < v.Uses[j].Column
	})
	sort.Strings(v.DependsOn)
}

// loader returns the dump loader over the model. The loader chooses
// implicit names as PostgreSQL does, from the names in use; gathering them
// is the costly part of an Apply on a large schema, so loader gives a
// loader that knows none, for statements that name everything they create,
// and names(nsp, table) the loader that knows the names a new object of
// that table could collide with.
func (a *applier) loader() *loader {
	if a.l == nil {
		a.l = &loader{s: a.s, relNames: map[string]bool{}, conNames: map[string]bool{}, functions: map[string]bool{}}
	}
	return a.l
}

// names returns the loader knowing the names in use in schema nsp that an
// implicit name for an object of table could take: every implicit name the
// loader chooses starts with the table's name (makeObjectName shortens it
// to no less than about 25 bytes), so only names sharing its first 16 bytes
// are gathered.
func (a *applier) names(nsp, table string) *loader {
	l := a.loader()
	prefix := table[:clipUTF8len(table, 16)]
	if a.named[nsp+"."+prefix] {
		return l
	}
	if a.named == nil {
		a.named = map[string]bool{}
	}
	a.named[nsp+"."+prefix] = true
	match := func(schema, name string) bool { return schema == nsp && strings.HasPrefix(name, prefix) }
	for _, t := range a.s.Tables {
		if t.Schema != nsp {
			continue
		}
		if strings.HasPrefix(t.Name, prefix) {
			l.relNames[t.Key()] = true
		}
		for _, ix := range t.Indexes {
			if strings.HasPrefix(ix.Name, prefix) {
				l.relNames[Key(nsp, ix.Name)] = true
			}
		}
		for _, c := range t.Constraints {
			if strings.HasPrefix(c.Name, prefix) {
				l.conNames[Key(nsp, c.Name)] = true
			}
		}
	}
	for k, v := range a.s.Views {
		if match(v.Schema, v.Name) {
			l.relNames[k] = true
		}
		for _, ix := range v.Indexes {
			if match(v.Schema, ix.Name) {
				l.relNames[Key(v.Schema, ix.Name)] = true
			}
		}
	}
	for k, q := range a.s.Sequences {
		if match(q.Schema, q.Name) {
			l.relNames[k] = true
		}
	}
	return l
}

// clipUTF8len is the largest length <= n that does not cut a character.
func clipUTF8len(s string, n int) int {
	if n >= len(s) {
		return len(s)
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return n
}

func (a *applier) statement(n *pg_query.Node) error {
	switch st := n.Node.(type) {
	case *pg_query.Node_CreateStmt:
		return a.createTable(st.CreateStmt)
	case *pg_query.Node_IndexStmt:
		return a.createIndex(st.IndexStmt)
	case *pg_query.Node_ViewStmt:
		return a.createView(n, rangeKey(st.ViewStmt.View), st.ViewStmt.Replace, false)
	case *pg_query.Node_CreateTableAsStmt:
		// CREATE TABLE AS makes a table whose column types only the
		// server knows: not modelled.
		if st.CreateTableAsStmt.Objtype == pg_query.ObjectType_OBJECT_MATVIEW && st.CreateTableAsStmt.Into != nil {
			return a.createView(n, rangeKey(st.CreateTableAsStmt.Into.Rel), false, st.CreateTableAsStmt.IfNotExists)
		}
	case *pg_query.Node_CreateEnumStmt:
		if a.s.Enums[Key(nameList(st.CreateEnumStmt.TypeName))] == nil {
			return a.loader().statement(n)
		}
	case *pg_query.Node_CreateDomainStmt:
		if a.s.Domains[Key(nameList(st.CreateDomainStmt.Domainname))] == nil {
			return a.loader().statement(n)
		}
	case *pg_query.Node_CreateSeqStmt:
		if a.s.Sequences[rangeKey(st.CreateSeqStmt.Sequence)] == nil {
			return a.loader().statement(n)
		}
	case *pg_query.Node_AlterSeqStmt:
		if a.sequence(rangeKey(st.AlterSeqStmt.Sequence)) != nil {
			return a.loader().statement(n)
		}
	case *pg_query.Node_AlterEnumStmt:
		key := Key(nameList(st.AlterEnumStmt.TypeName))
		e := a.s.Enums[key]
		if e == nil {
			return fmt.Errorf("ALTER TYPE %s: no such enum type", key)
		}
		a.s.Enums[key] = e.clone()
		a.loader().alterEnum(st.AlterEnumStmt)
	case *pg_query.Node_CreateTrigStmt:
		if a.table(rangeKey(st.CreateTrigStmt.Relation)) != nil {
			return a.loader().createTrigger(st.CreateTrigStmt)
		}
	case *pg_query.Node_AlterTableStmt:
		return a.alterTable(st.AlterTableStmt)
	case *pg_query.Node_RenameStmt:
		return a.rename(st.RenameStmt)
	case *pg_query.Node_DropStmt:
		return a.drop(st.DropStmt)
	}
	return nil
}

// relationExists reports whether a table, view, sequence or index has the
// name in the schema nsp.
func (a *applier) relationExists(nsp, name string) bool {
	k := Key(nsp, name)
	if a.s.Tables[k] != nil || a.s.Views[k] != nil || a.s.Sequences[k] != nil {
		return true
	}
	t, v, _ := a.findIndex(nsp, name)
	return t != nil || v != nil
}

// findIndex finds the index named name in schema nsp, on a table or a
// materialized view.
func (a *applier) findIndex(nsp, name string) (*Table, *View, *Index) {
	for _, t := range a.s.Tables {
		if t.Schema == nsp {
			if ix := t.Index(name); ix != nil {
				return t, nil, ix
			}
		}
	}
	for _, v := range a.s.Views {
		if v.Schema != nsp {
			continue
		}
		for _, ix := range v.Indexes {
			if ix.Name == name {
				return nil, v, ix
			}
		}
	}
	return nil, nil, nil
}

// partitionTree returns the key and the keys of every partition below it,
// parents first.
func (a *applier) partitionTree(key string) []string {
	out := []string{key}
	for i := 0; i < len(out); i++ {
		if t := a.s.Tables[out[i]]; t != nil {
			out = append(out, t.Partitions...)
		}
	}
	return out
}

func (a *applier) createTable(st *pg_query.CreateStmt) error {
	key := rangeKey(st.Relation)
	if a.relationExists(qualify(st.Relation)) {
		if st.IfNotExists {
			return nil
		}
		return fmt.Errorf("CREATE TABLE %s: a relation of that name exists", key)
	}
	if st.Partbound != nil {
		for _, in := range st.InhRelations {
			if rv := in.GetRangeVar(); rv != nil {
				a.table(rangeKey(rv)) // its partition list grows
			}
		}
	}
	l := a.names(qualify(st.Relation))
	if err := l.createTable(st); err != nil {
		return err
	}
	t := a.s.Tables[key]
	t.RowEstimate, t.Bytes = 0, 0
	a.created(t)
	return l.completeFKs()
}

func (a *applier) createIndex(st *pg_query.IndexStmt) error {
	nsp, _ := qualify(st.Relation)
	if st.Idxname != "" && st.IfNotExists && a.relationExists(nsp, st.Idxname) {
		return nil
	}
	key := rangeKey(st.Relation)
	if a.table(key) == nil {
		if v := a.s.Views[key]; v == nil || !v.Materialized {
			return fmt.Errorf("CREATE INDEX: no table %s", key)
		}
		a.view(key)
	}
	l := a.loader()
	if st.Idxname == "" {
		l = a.names(nsp, st.Relation.Relname)
	}
	return l.createIndex(st)
}

// createView creates (or replaces) a view or materialized view and works
// out the columns it reads, as ParseDump does.
func (a *applier) createView(n *pg_query.Node, key string, replace, ifNotExists bool) error {
	if a.s.Views[key] != nil || a.s.Tables[key] != nil {
		switch {
		case ifNotExists:
			return nil
		case replace && a.s.Views[key] != nil:
			// The loader analyses only views it has not seen.
			delete(a.s.Views, key)
		default:
			return fmt.Errorf("CREATE VIEW %s: a relation of that name exists", key)
		}
	}
	l := a.loader()
	var err error
	if st := n.GetViewStmt(); st != nil {
		err = l.createView(st)
	} else {
		err = l.createMatView(n.GetCreateTableAsStmt())
	}
	if err != nil {
		return err
	}
	a.copied["view:"+key] = true
	a.views = append(a.views, a.s.Views[key])
	// The views it reads are analysed too, on copies, for their output
	// columns (the model does not keep them).
	seen := map[string]bool{key: true}
	queue := []*pg_query.Node{n}
	for len(queue) > 0 {
		q := queue[0]
		queue = queue[1:]
		for _, rk := range rangeVarKeys(q) {
			v := a.s.Views[rk]
			if v == nil || seen[rk] {
				continue
			}
			seen[rk] = true
			tree, err := pg_query.Parse(v.Definition)
			if err != nil || len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetSelectStmt() == nil {
				continue
			}
			l.views = append(l.views, pendingView{view: v.clone(), query: tree.Stmts[0].Stmt.GetSelectStmt()})
			queue = append(queue, tree.Stmts[0].Stmt)
		}
	}
	l.analyzeViews()
	l.views = nil
	return nil
}

// rangeVarKeys lists the keys of the relations a statement names in
// RangeVars (a CTE's name may be among them: callers look keys up).
func rangeVarKeys(n *pg_query.Node) []string {
	var out []string
	var visit func(*pg_query.Node)
	visit = func(n *pg_query.Node) {
		if rv := n.GetRangeVar(); rv != nil {
			out = append(out, rangeKey(rv))
			return
		}
		eachChild(n, visit)
	}
	visit(n)
	return out
}

func (a *applier) alterTable(st *pg_query.AlterTableStmt) error {
	if st.Objtype != pg_query.ObjectType_OBJECT_TABLE {
		return nil // ALTER INDEX / VIEW / SEQUENCE: nothing the model holds
	}
	key := rangeKey(st.Relation)
	if a.s.Tables[key] == nil {
		if st.MissingOk {
			return nil
		}
		return fmt.Errorf("ALTER TABLE %s: no such table", key)
	}
	for _, cn := range st.Cmds {
		if cmd := cn.GetAlterTableCmd(); cmd != nil {
			if err := a.alterCmd(st, key, cmd); err != nil {
				return err
			}
		}
	}
	return nil
}

// oneCmd is the ALTER TABLE of one subcommand, on the relation rv.
func oneCmd(st *pg_query.AlterTableStmt, rv *pg_query.RangeVar, cmd *pg_query.AlterTableCmd) *pg_query.AlterTableStmt {
	return &pg_query.AlterTableStmt{Relation: rv, Objtype: st.Objtype, MissingOk: st.MissingOk,
		Cmds: []*pg_query.Node{{Node: &pg_query.Node_AlterTableCmd{AlterTableCmd: cmd}}}}
}

func (a *applier) alterCmd(st *pg_query.AlterTableStmt, key string, cmd *pg_query.AlterTableCmd) error {
	t := a.table(key)
	l := a.loader()
	if choosesName(cmd) {
		l = a.names(t.Schema, t.Name)
	}
	// Column changes reach the partitions, unless ONLY.
	tree := []string{key}
	if st.Relation.Inh {
		tree = a.partitionTree(key)
	}
	column := func(k string) (*Table, *Column, error) {
		tab := a.table(k)
		c := tab.Column(cmd.Name)
		if c == nil {
			return nil, nil, fmt.Errorf("ALTER TABLE %s: no column %s", k, cmd.Name)
		}
		return tab, c, nil
	}
	switch cmd.Subtype {
	case pg_query.AlterTableType_AT_AddColumn:
		cd := cmd.Def.GetColumnDef()
		if cd == nil || (t.Column(cd.Colname) != nil && cmd.MissingOk) {
			return nil
		}
		if t.Column(cd.Colname) != nil {
			return fmt.Errorf("ALTER TABLE %s: column %s exists", key, cd.Colname)
		}
		if err := l.alterTable(oneCmd(st, st.Relation, cmd)); err != nil {
			return err
		}
		col := t.Column(cd.Colname)
		for _, pk := range tree[1:] {
			if p := a.table(pk); p != nil && p.Column(col.Name) == nil {
				c := *col
				c.Identity = ""
				p.Columns = append(p.Columns, &c)
			}
		}
		return l.completeFKs()
	case pg_query.AlterTableType_AT_DropColumn:
		if t.Column(cmd.Name) == nil {
			if cmd.MissingOk {
				return nil
			}
			return fmt.Errorf("ALTER TABLE %s: no column %s", key, cmd.Name)
		}
		for _, k := range tree {
			a.dropColumn(k, cmd.Name)
		}
	case pg_query.AlterTableType_AT_AlterColumnType:
		cd := cmd.Def.GetColumnDef()
		if cd == nil || cd.TypeName == nil {
			return nil
		}
		for _, k := range tree {
			_, c, err := column(k)
			if err != nil {
				return err
			}
			c.Type = FormatType(cd.TypeName)
		}
	case pg_query.AlterTableType_AT_SetNotNull, pg_query.AlterTableType_AT_DropNotNull, pg_query.AlterTableType_AT_ColumnDefault:
		for _, k := range tree {
			if _, _, err := column(k); err != nil {
				return err
			}
			nsp, name := splitKey(k)
			if err := l.alterTable(oneCmd(st, &pg_query.RangeVar{Schemaname: nsp, Relname: name, Inh: true}, cmd)); err != nil {
				return err
			}
		}
	case pg_query.AlterTableType_AT_AddConstraint:
		if err := l.alterTable(oneCmd(st, st.Relation, cmd)); err != nil {
			return err
		}
		if err := l.completeFKs(); err != nil {
			return err
		}
		// A primary key makes its columns NOT NULL on the partitions too.
		if pk := t.PrimaryKey(); pk != nil && cmd.Def.GetConstraint().GetContype() == pg_query.ConstrType_CONSTR_PRIMARY {
			for _, k := range tree[1:] {
				p := a.table(k)
				for _, name := range pk.Columns {
					if c := p.Column(name); c != nil {
						c.NotNull = true
					}
				}
			}
		}
	case pg_query.AlterTableType_AT_DropConstraint:
		c := t.Constraint(cmd.Name)
		if c == nil {
			if cmd.MissingOk {
				return nil
			}
			return fmt.Errorf("ALTER TABLE %s: no constraint %s", key, cmd.Name)
		}
		if c.Type == PrimaryKey || c.Type == Unique {
			// Only under CASCADE can foreign keys still need it.
			for _, fk := range a.s.ReferencingForeignKeys(key) {
				if sameNames(fk.Constraint.RefColumns, c.Columns) {
					ft := a.table(fk.Table.Key())
					ft.Constraints = removeConstraint(ft.Constraints, fk.Constraint.Name)
				}
			}
		}
		return l.alterTable(oneCmd(st, st.Relation, cmd))
	case pg_query.AlterTableType_AT_ValidateConstraint, pg_query.AlterTableType_AT_AddIdentity:
		return l.alterTable(oneCmd(st, st.Relation, cmd))
	case pg_query.AlterTableType_AT_AttachPartition:
		if child := a.table(rangeKey(cmd.Def.GetPartitionCmd().GetName())); child == nil {
			return fmt.Errorf("ALTER TABLE %s ATTACH PARTITION: no table %s", key, rangeKey(cmd.Def.GetPartitionCmd().GetName()))
		}
		return l.alterTable(oneCmd(st, st.Relation, cmd))
	case pg_query.AlterTableType_AT_DetachPartition:
		ck := rangeKey(cmd.Def.GetPartitionCmd().GetName())
		child := a.table(ck)
		if child == nil || child.PartitionOf != key {
			return fmt.Errorf("ALTER TABLE %s DETACH PARTITION: %s is not a partition of it", key, ck)
		}
		child.PartitionOf = ""
		t.Partitions = removeString(t.Partitions, ck)
	}
	return nil
}

// choosesName reports whether the subcommand may create an object with an
// implicit name: a constraint, an identity's or a serial's sequence.
func choosesName(cmd *pg_query.AlterTableCmd) bool {
	switch cmd.Subtype {
	case pg_query.AlterTableType_AT_AddConstraint, pg_query.AlterTableType_AT_AddIdentity:
		return true
	case pg_query.AlterTableType_AT_AddColumn:
		cd := cmd.Def.GetColumnDef()
		if cd == nil || cd.TypeName == nil {
			return false
		}
		for _, c := range cd.Constraints {
			switch c.GetConstraint().GetContype() {
			case pg_query.ConstrType_CONSTR_NOTNULL, pg_query.ConstrType_CONSTR_NULL, pg_query.ConstrType_CONSTR_DEFAULT:
			default:
				return true
			}
		}
		_, name := nameList(cd.TypeName.Names)
		_, serial := serialTypes[name]
		return serial
	}
	return false
}

func splitKey(key string) (string, string) {
	nsp, name, _ := strings.Cut(key, ".")
	return nsp, name
}

func removeString(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}

func containsName(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dropColumn drops column col of table key with what PostgreSQL drops with
// it: the indexes and constraints of the table that involve it, the
// sequences it owns, and (which needs CASCADE) the foreign keys referencing
// it, the views reading it, the triggers and generated columns using it.
func (a *applier) dropColumn(key, col string) {
	t := a.table(key)
	if t == nil || t.Column(col) == nil {
		return
	}
	var cols []*Column
	for _, c := range t.Columns {
		if c.Name != col {
			cols = append(cols, c)
		}
	}
	t.Columns = cols
	var ixs []*Index
	for _, ix := range t.Indexes {
		if indexUses(ix, col) {
			if ix.Constraint != "" {
				t.Constraints = removeConstraint(t.Constraints, ix.Constraint)
			}
			continue
		}
		ixs = append(ixs, ix)
	}
	t.Indexes = ixs
	var cons []*Constraint
	for _, c := range t.Constraints {
		if !containsName(c.Columns, col) && !(c.Type == ForeignKey && c.RefTable == key && containsName(c.RefColumns, col)) {
			cons = append(cons, c)
		}
	}
	t.Constraints = cons
	for _, fk := range a.s.ReferencingForeignKeys(key) {
		if fk.Table.Key() != key && containsName(fk.Constraint.RefColumns, col) {
			ft := a.table(fk.Table.Key())
			ft.Constraints = removeConstraint(ft.Constraints, fk.Constraint.Name)
		}
	}
	var trs []*Trigger
	for _, tr := range t.Triggers {
		if !triggerUses(tr, col) {
			trs = append(trs, tr)
		}
	}
	t.Triggers = trs
	for k, q := range a.s.Sequences {
		if q.OwnedBy != nil && q.OwnedBy.Relation == key && q.OwnedBy.Column == col {
			delete(a.s.Sequences, k)
		}
	}
	for _, v := range a.s.ViewsUsingColumn(key, col) {
		delete(a.s.Views, v.Key())
	}
	for _, c := range t.Columns {
		if c.Generated != "" && exprUses(c.Generated, col) {
			a.dropColumn(key, c.Name)
		}
	}
}

// indexUses reports whether the index involves the column: as a key
// column, in an expression, in its predicate or its INCLUDE list.
func indexUses(ix *Index, col string) bool {
	if containsName(ix.Columns, col) {
		return true
	}
	if !containsName(ix.Columns, "") && !strings.Contains(ix.Definition, " WHERE ") && !strings.Contains(ix.Definition, " INCLUDE ") {
		return false
	}
	tree, err := pg_query.Parse(ix.Definition)
	if err != nil || len(tree.Stmts) != 1 {
		return false
	}
	used := false
	pgtree.Walk(tree.Stmts[0].Stmt.ProtoReflect(), func(m protoreflect.Message) {
		switch x := m.Interface().(type) {
		case *pg_query.IndexElem:
			used = used || x.Name == col
		case *pg_query.ColumnRef:
			used = used || lastField(x) == col
		}
	})
	return used
}

// triggerUses reports whether a trigger's column list or WHEN clause names
// the column.
func triggerUses(tr *Trigger, col string) bool {
	tree, err := pg_query.Parse(tr.Definition)
	if err != nil || len(tree.Stmts) != 1 {
		return false
	}
	st := tree.Stmts[0].Stmt.GetCreateTrigStmt()
	if st == nil {
		return false
	}
	return containsName(strs(st.Columns), col) || containsName(columnsIn(st.WhenClause), col)
}

// exprUses reports whether a canonical expression refers to the column.
func exprUses(expr, col string) bool {
	tree, err := pg_query.Parse("SELECT " + expr)
	if err != nil {
		return false
	}
	return containsName(columnsIn(tree.Stmts[0].Stmt), col)
}

func lastField(cr *pg_query.ColumnRef) string {
	if len(cr.Fields) == 0 {
		return ""
	}
	return cr.Fields[len(cr.Fields)-1].GetString_().GetSval()
}

func (a *applier) drop(st *pg_query.DropStmt) error {
	for _, obj := range st.Objects {
		var names []*pg_query.Node
		if list := obj.GetList(); list != nil {
			names = list.Items
		} else if tn := obj.GetTypeName(); tn != nil {
			names = tn.Names
		}
		if len(names) == 0 {
			continue
		}
		nsp, name := nameList(names)
		key := Key(nsp, name)
		switch st.RemoveType {
		case pg_query.ObjectType_OBJECT_TABLE:
			if a.s.Tables[key] == nil {
				if st.MissingOk {
					continue
				}
				return fmt.Errorf("DROP TABLE %s: no such table", key)
			}
			a.dropTable(key)
		case pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW:
			if a.s.Views[key] == nil {
				if st.MissingOk {
					continue
				}
				return fmt.Errorf("DROP VIEW %s: no such view", key)
			}
			a.dropView(key)
		case pg_query.ObjectType_OBJECT_INDEX:
			t, v, ix := a.findIndex(nsp, name)
			switch {
			case t != nil:
				t = a.table(t.Key())
				t.Indexes = removeIndex(t.Indexes, name)
				if ix.Constraint != "" {
					t.Constraints = removeConstraint(t.Constraints, ix.Constraint)
				}
			case v != nil:
				v = a.view(v.Key())
				v.Indexes = removeIndex(v.Indexes, name)
			case !st.MissingOk:
				return fmt.Errorf("DROP INDEX %s: no such index", key)
			}
		case pg_query.ObjectType_OBJECT_SEQUENCE:
			delete(a.s.Sequences, key)
		case pg_query.ObjectType_OBJECT_TYPE, pg_query.ObjectType_OBJECT_DOMAIN:
			delete(a.s.Enums, key)
			delete(a.s.Domains, key)
		}
	}
	return nil
}

func removeIndex(ixs []*Index, name string) []*Index {
	out := ixs[:0:0]
	for _, ix := range ixs {
		if ix.Name != name {
			out = append(out, ix)
		}
	}
	return out
}

// dropTable drops a table with its partitions, the views reading it, the
// foreign keys of other tables referencing it and the sequences it owns.
func (a *applier) dropTable(key string) {
	t := a.s.Tables[key]
	if t == nil {
		return
	}
	for _, pk := range t.Partitions {
		a.dropTable(pk)
	}
	for _, v := range a.s.ViewsUsingRelation(key) {
		delete(a.s.Views, v.Key())
	}
	for _, fk := range a.s.ReferencingForeignKeys(key) {
		if fk.Table.Key() != key {
			ft := a.table(fk.Table.Key())
			ft.Constraints = removeConstraint(ft.Constraints, fk.Constraint.Name)
		}
	}
	for k, q := range a.s.Sequences {
		if q.OwnedBy != nil && q.OwnedBy.Relation == key {
			delete(a.s.Sequences, k)
		}
	}
	if parent := a.table(t.PartitionOf); parent != nil {
		parent.Partitions = removeString(parent.Partitions, key)
	}
	delete(a.s.Tables, key)
}

// dropView drops a view and the views that read it.
func (a *applier) dropView(key string) {
	for _, v := range a.s.ViewsUsingRelation(key) {
		delete(a.s.Views, v.Key())
	}
	delete(a.s.Views, key)
}

func (a *applier) rename(r *pg_query.RenameStmt) error {
	switch r.RenameType {
	case pg_query.ObjectType_OBJECT_COLUMN:
		if r.RelationType != pg_query.ObjectType_OBJECT_TABLE {
			return nil // view columns: not modelled
		}
		key := rangeKey(r.Relation)
		t := a.s.Tables[key]
		if t == nil || t.Column(r.Subname) == nil {
			if r.MissingOk {
				return nil
			}
			return fmt.Errorf("RENAME COLUMN: no column %s in %s", r.Subname, key)
		}
		tree := []string{key}
		if r.Relation.Inh {
			tree = a.partitionTree(key)
		}
		for _, k := range tree {
			if err := a.renameColumn(k, r.Subname, r.Newname); err != nil {
				return err
			}
		}
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW:
		key := rangeKey(r.Relation)
		if a.s.Tables[key] == nil && a.s.Views[key] == nil {
			if r.MissingOk {
				return nil
			}
			return fmt.Errorf("RENAME: no relation %s", key)
		}
		return a.renameRelation(key, r.Newname)
	case pg_query.ObjectType_OBJECT_INDEX:
		nsp, name := qualify(r.Relation)
		t, v, ix := a.findIndex(nsp, name)
		if ix == nil {
			if r.MissingOk {
				return nil
			}
			return fmt.Errorf("ALTER INDEX %s RENAME: no such index", Key(nsp, name))
		}
		if t != nil {
			t = a.table(t.Key())
			if ix.Constraint != "" {
				return a.renameConstraint(t, ix.Constraint, r.Newname)
			}
			return renameIndex(t.Index(name), r.Newname)
		}
		v = a.view(v.Key())
		for _, x := range v.Indexes {
			if x.Name == name {
				return renameIndex(x, r.Newname)
			}
		}
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		t := a.table(rangeKey(r.Relation))
		if t == nil || t.Constraint(r.Subname) == nil {
			if r.MissingOk {
				return nil
			}
			return fmt.Errorf("RENAME CONSTRAINT: no constraint %s on %s", r.Subname, rangeKey(r.Relation))
		}
		return a.renameConstraint(t, r.Subname, r.Newname)
	case pg_query.ObjectType_OBJECT_SEQUENCE:
		key := rangeKey(r.Relation)
		q := a.sequence(key)
		if q == nil {
			if r.MissingOk {
				return nil
			}
			return fmt.Errorf("ALTER SEQUENCE %s RENAME: no such sequence", key)
		}
		return a.renameSequence(q, r.Newname)
	}
	return nil
}

// renameIndex renames an index (not backing a constraint) in place.
func renameIndex(ix *Index, name string) error {
	def, err := rewriteIndex(ix.Definition, func(st *pg_query.IndexStmt) { st.Idxname = name })
	if err != nil {
		return err
	}
	ix.Name, ix.Definition = name, def
	return nil
}

// renameConstraint renames a constraint of t (already copied) and the
// index that backs it: PostgreSQL keeps their names equal.
func (a *applier) renameConstraint(t *Table, from, to string) error {
	c := t.Constraint(from)
	c.Name = to
	for _, ix := range t.Indexes {
		if ix.Constraint == from {
			ix.Constraint = to
			if err := renameIndex(ix, to); err != nil {
				return err
			}
		}
	}
	return nil
}

// renameSequence renames a sequence (already copied); column defaults
// calling nextval on it name it anew.
func (a *applier) renameSequence(q *Sequence, name string) error {
	oldKey := seqKey(q)
	oldText := []string{QuoteIdent(q.Schema) + "." + QuoteIdent(q.Name), q.Schema + "." + q.Name}
	if q.Schema == "public" {
		oldText = append(oldText, q.Name, QuoteIdent(q.Name))
	}
	delete(a.s.Sequences, oldKey)
	q.Name = name
	a.s.Sequences[seqKey(q)] = q
	a.copied["seq:"+seqKey(q)] = true
	newText := QuoteIdent(q.Schema) + "." + QuoteIdent(name)
	for k, t := range a.s.Tables {
		for i, c := range t.Columns {
			if c.Default == "" || !strings.Contains(c.Default, "nextval") {
				continue
			}
			def, changed, err := rewriteExpr(c.Default, func(m protoreflect.Message) bool {
				ac, ok := m.Interface().(*pg_query.A_Const)
				if !ok || ac.GetSval() == nil || !containsName(oldText, ac.GetSval().Sval) {
					return false
				}
				ac.GetSval().Sval = newText
				return true
			})
			if err != nil {
				return err
			}
			if changed {
				a.table(k).Columns[i].Default = def
			}
		}
	}
	return nil
}

// seqKey returns the sequence's map key.
func seqKey(q *Sequence) string { return Key(q.Schema, q.Name) }

// rewriteIndex parses an index definition, lets fn change it and deparses
// it in canonical form.
func rewriteIndex(def string, fn func(*pg_query.IndexStmt)) (string, error) {
	tree, err := pg_query.Parse(def)
	if err != nil || len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetIndexStmt() == nil {
		return "", fmt.Errorf("index definition %q: not a CREATE INDEX statement", def)
	}
	st := tree.Stmts[0].Stmt.GetIndexStmt()
	fn(st)
	return deparseIndex(st)
}

// rewriteStatement parses a canonical statement (trigger definition, view
// query), lets fn change it and deparses it.
func rewriteStatement(def string, fn func(*pg_query.Node)) (string, error) {
	tree, err := pg_query.Parse(def)
	if err != nil || len(tree.Stmts) != 1 {
		return "", fmt.Errorf("definition %q does not parse as one statement", def)
	}
	fn(tree.Stmts[0].Stmt)
	return deparseStmt(tree.Stmts[0].Stmt)
}

// rewriteConstraint parses a canonical constraint clause, lets fn change
// it and deparses it.
func rewriteConstraint(def string, fn func(*pg_query.Constraint)) (string, error) {
	tree, err := pg_query.Parse(constraintPrefix + def)
	if err != nil || len(tree.Stmts) != 1 {
		return "", fmt.Errorf("constraint %q does not parse", def)
	}
	c := tree.Stmts[0].Stmt.GetAlterTableStmt().GetCmds()[0].GetAlterTableCmd().GetDef().GetConstraint()
	if c == nil {
		return "", fmt.Errorf("constraint %q does not parse", def)
	}
	fn(c)
	return deparseConstraint(c)
}

// rewriteExpr parses a canonical expression and lets fn change its
// messages (fn reports a change); it returns the deparsed expression.
func rewriteExpr(expr string, fn func(protoreflect.Message) bool) (string, bool, error) {
	tree, err := pg_query.Parse("SELECT " + expr)
	if err != nil {
		return "", false, fmt.Errorf("expression %q does not parse", expr)
	}
	val := tree.Stmts[0].Stmt.GetSelectStmt().GetTargetList()[0].GetResTarget().GetVal()
	changed := false
	pgtree.Walk(val.ProtoReflect(), func(m protoreflect.Message) { changed = fn(m) || changed })
	if !changed {
		return expr, false, nil
	}
	out, err := deparseExpr(val)
	return out, true, err
}

// renameStrings renames from to to in a list of String nodes.
func renameStrings(nodes []*pg_query.Node, from, to string) {
	for _, n := range nodes {
		if s := n.GetString_(); s != nil && s.Sval == from {
			s.Sval = to
		}
	}
}

// renameRefs renames the column from to to in the column references and
// index elements below m whose last name is from.
func renameRefs(m protoreflect.Message, from, to string) {
	pgtree.Walk(m, func(m protoreflect.Message) {
		switch x := m.Interface().(type) {
		case *pg_query.ColumnRef:
			if lastField(x) == from {
				x.Fields[len(x.Fields)-1].GetString_().Sval = to
			}
		case *pg_query.IndexElem:
			if x.Name == from {
				x.Name = to
			}
		case *pg_query.PartitionElem:
			if x.Name == from {
				x.Name = to
			}
		}
	})
}

// renameColumn renames column from of table key to to, and every
// definition that names it.
func (a *applier) renameColumn(key, from, to string) error {
	t := a.table(key)
	c := t.Column(from)
	if c == nil {
		return nil
	}
	c.Name = to
	var err error
	for _, col := range t.Columns {
		if col.Generated != "" {
			if col.Generated, _, err = rewriteExpr(col.Generated, func(m protoreflect.Message) bool {
				if cr, ok := m.Interface().(*pg_query.ColumnRef); ok && lastField(cr) == from {
					cr.Fields[len(cr.Fields)-1].GetString_().Sval = to
					return true
				}
				return false
			}); err != nil {
				return err
			}
		}
	}
	for _, ix := range t.Indexes {
		if !indexUses(ix, from) {
			continue
		}
		for i, name := range ix.Columns {
			if name == from {
				ix.Columns[i] = to
			}
		}
		if ix.Definition, err = rewriteIndex(ix.Definition, func(st *pg_query.IndexStmt) {
			renameRefs(st.ProtoReflect(), from, to)
		}); err != nil {
			return err
		}
	}
	for _, con := range t.Constraints {
		self := con.Type == ForeignKey && con.RefTable == key
		if !containsName(con.Columns, from) && !(self && containsName(con.RefColumns, from)) && con.Type != Exclusion {
			continue
		}
		for i, name := range con.Columns {
			if name == from {
				con.Columns[i] = to
			}
		}
		if self {
			for i, name := range con.RefColumns {
				if name == from {
					con.RefColumns[i] = to
				}
			}
		}
		if con.Definition, err = rewriteConstraint(con.Definition, func(pc *pg_query.Constraint) {
			renameStrings(pc.Keys, from, to)
			renameStrings(pc.Including, from, to)
			renameStrings(pc.FkAttrs, from, to)
			if self {
				renameStrings(pc.PkAttrs, from, to)
			}
			if pc.RawExpr != nil {
				renameRefs(pc.RawExpr.ProtoReflect(), from, to)
			}
			for _, ex := range pc.Exclusions {
				renameRefs(ex.ProtoReflect(), from, to)
			}
			if pc.WhereClause != nil {
				renameRefs(pc.WhereClause.ProtoReflect(), from, to)
			}
		}); err != nil {
			return err
		}
	}
	for _, fk := range a.s.ReferencingForeignKeys(key) {
		if fk.Table.Key() == key || !containsName(fk.Constraint.RefColumns, from) {
			continue
		}
		con := a.table(fk.Table.Key()).Constraint(fk.Constraint.Name)
		for i, name := range con.RefColumns {
			if name == from {
				con.RefColumns[i] = to
			}
		}
		if con.Definition, err = rewriteConstraint(con.Definition, func(pc *pg_query.Constraint) {
			renameStrings(pc.PkAttrs, from, to)
		}); err != nil {
			return err
		}
	}
	for _, tr := range t.Triggers {
		if !triggerUses(tr, from) {
			continue
		}
		if tr.Definition, err = rewriteStatement(tr.Definition, func(n *pg_query.Node) {
			st := n.GetCreateTrigStmt()
			renameStrings(st.Columns, from, to)
			if st.WhenClause != nil {
				renameRefs(st.WhenClause.ProtoReflect(), from, to)
			}
		}); err != nil {
			return err
		}
	}
	if t.PartitionKey != "" {
		tree, err := pg_query.Parse(partKeyPrefix + t.PartitionKey)
		if err == nil && len(tree.Stmts) == 1 {
			spec := tree.Stmts[0].Stmt.GetCreateStmt().GetPartspec()
			renameRefs(spec.ProtoReflect(), from, to)
			if t.PartitionKey, err = deparsePartitionKey(spec); err != nil {
				return err
			}
		}
	}
	for k, q := range a.s.Sequences {
		if q.OwnedBy != nil && q.OwnedBy.Relation == key && q.OwnedBy.Column == from {
			a.sequence(k).OwnedBy.Column = to
		}
	}
	for k, v := range a.s.Views {
		uses := false
		for _, u := range v.Uses {
			uses = uses || (u.Relation == key && u.Column == from)
		}
		if !uses {
			continue
		}
		v = a.view(k)
		for i := range v.Uses {
			if v.Uses[i].Relation == key && v.Uses[i].Column == from {
				v.Uses[i].Column = to
			}
		}
		if v.Definition, err = rewriteStatement(v.Definition, func(n *pg_query.Node) {
			renameViewColumn(n, t, from, to)
		}); err != nil {
			return err
		}
	}
	return nil
}

// renameViewColumn renames the references to column from of table t in a
// view's query, as pg_get_viewdef shows them after the rename: a reference
// qualified by the table's name or by an alias of it, or unqualified at a
// query level that reads the table. An output column that took its name
// from the reference keeps it ("t.new AS old"), as PostgreSQL keeps the
// view's column names.
func renameViewColumn(n *pg_query.Node, t *Table, from, to string) {
	key := t.Key()
	// Names under which the table is visible, and whether each query level
	// reads it.
	names := map[string]bool{}
	pgtree.Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if rv, ok := m.Interface().(*pg_query.RangeVar); ok && rangeKey(rv) == key {
			if rv.Alias != nil {
				names[rv.Alias.Aliasname] = true
			} else {
				names[rv.Relname] = true
			}
		}
	})
	var visit func(sel *pg_query.SelectStmt)
	visit = func(sel *pg_query.SelectStmt) {
		if sel == nil {
			return
		}
		reads := false
		for _, f := range sel.FromClause {
			for _, rk := range rangeVarKeys(f) {
				reads = reads || rk == key
			}
		}
		rename := func(cr *pg_query.ColumnRef) bool {
			if lastField(cr) != from {
				return false
			}
			if len(cr.Fields) == 1 && !reads {
				return false
			}
			if len(cr.Fields) > 1 && !names[cr.Fields[len(cr.Fields)-2].GetString_().GetSval()] {
				return false
			}
			cr.Fields[len(cr.Fields)-1].GetString_().Sval = to
			return true
		}
		for _, tn := range sel.TargetList {
			if rt := tn.GetResTarget(); rt != nil && rt.Name == "" {
				if cr := rt.Val.GetColumnRef(); cr != nil && rename(cr) {
					rt.Name = from
				}
			}
		}
		// Every other reference of this level; nested SELECTs are levels
		// of their own.
		var refs func(m protoreflect.Message)
		refs = func(m protoreflect.Message) {
			switch x := m.Interface().(type) {
			case *pg_query.SelectStmt:
				if x != sel {
					visit(x)
					return
				}
			case *pg_query.ColumnRef:
				rename(x)
				return
			}
			m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
				if fd.Message() == nil || fd.IsMap() {
					return true
				}
				if fd.IsList() {
					for i := 0; i < v.List().Len(); i++ {
						refs(v.List().Get(i).Message())
					}
					return true
				}
				refs(v.Message())
				return true
			})
		}
		refs(sel.ProtoReflect())
	}
	visit(n.GetSelectStmt())
}

// renameRelation renames a table or view: its key changes, and so does
// every reference to it in the model.
func (a *applier) renameRelation(oldKey, name string) error {
	nsp, oldName := splitKey(oldKey)
	newKey := Key(nsp, name)
	if a.relationExists(nsp, name) {
		return fmt.Errorf("RENAME %s: a relation named %s exists", oldKey, name)
	}
	var err error
	renameRV := func(n *pg_query.Node) {
		pgtree.Walk(n.ProtoReflect(), func(m protoreflect.Message) {
			if rv, ok := m.Interface().(*pg_query.RangeVar); ok && rangeKey(rv) == oldKey {
				rv.Relname = name
			}
		})
	}
	if t := a.table(oldKey); t != nil {
		delete(a.s.Tables, oldKey)
		t.Name = name
		a.s.Tables[newKey] = t
		a.copied["table:"+newKey] = true
		for _, ix := range t.Indexes {
			if ix.Definition, err = rewriteIndex(ix.Definition, func(st *pg_query.IndexStmt) { st.Relation.Relname = name }); err != nil {
				return err
			}
		}
		for _, tr := range t.Triggers {
			if tr.Definition, err = rewriteStatement(tr.Definition, renameRV); err != nil {
				return err
			}
		}
		for _, pk := range t.Partitions {
			a.table(pk).PartitionOf = newKey
		}
		if parent := a.table(t.PartitionOf); parent != nil {
			parent.Partitions = append(removeString(parent.Partitions, oldKey), newKey)
		}
		for _, fk := range a.s.ReferencingForeignKeys(oldKey) {
			con := a.table(fk.Table.Key()).Constraint(fk.Constraint.Name)
			con.RefTable = newKey
			if con.Definition, err = rewriteConstraint(con.Definition, func(pc *pg_query.Constraint) {
				pc.Pktable.Relname = name
			}); err != nil {
				return err
			}
		}
		for k, q := range a.s.Sequences {
			if q.OwnedBy != nil && q.OwnedBy.Relation == oldKey {
				a.sequence(k).OwnedBy.Relation = newKey
			}
		}
	} else {
		v := a.view(oldKey)
		delete(a.s.Views, oldKey)
		v.Name = name
		a.s.Views[newKey] = v
		a.copied["view:"+newKey] = true
		for _, ix := range v.Indexes {
			if ix.Definition, err = rewriteIndex(ix.Definition, func(st *pg_query.IndexStmt) { st.Relation.Relname = name }); err != nil {
				return err
			}
		}
	}
	for k, v := range a.s.Views {
		if !containsName(v.DependsOn, oldKey) {
			continue
		}
		v = a.view(k)
		for i, d := range v.DependsOn {
			if d == oldKey {
				v.DependsOn[i] = newKey
			}
		}
		for i := range v.Uses {
			if v.Uses[i].Relation == oldKey {
				v.Uses[i].Relation = newKey
			}
		}
		if v.Definition, err = rewriteStatement(v.Definition, func(n *pg_query.Node) {
			renameViewRelation(n, oldKey, oldName, name)
		}); err != nil {
			return err
		}
	}
	return nil
}

// renameViewRelation renames a relation in a view's query as
// pg_get_viewdef shows it after the rename: the relation itself, and the
// qualifier of column references that named it by its old name (it had no
// alias).
func renameViewRelation(n *pg_query.Node, oldKey, oldName, name string) {
	unaliased := false
	pgtree.Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if rv, ok := m.Interface().(*pg_query.RangeVar); ok && rangeKey(rv) == oldKey {
			rv.Relname = name
			unaliased = unaliased || rv.Alias == nil
		}
	})
	if !unaliased {
		return
	}
	pgtree.Walk(n.ProtoReflect(), func(m protoreflect.Message) {
		cr, ok := m.Interface().(*pg_query.ColumnRef)
		if !ok || len(cr.Fields) < 2 {
			return
		}
		if q := cr.Fields[len(cr.Fields)-2].GetString_(); q != nil && q.Sval == oldName {
			q.Sval = name
		}
	})
}
