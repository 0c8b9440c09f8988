package schema

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"github.com/pganalyze/pg_query_go/v5/parser"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ParseDump reads a schema dump into the model: `pg_dump --schema-only`
// output, or a hand-written file of plain CREATE statements. The whole file
// is parsed once with pg_query (psql meta-commands such as pg_dump's
// \restrict lines are blanked first). Statements that do not change the
// model (SET, COMMENT, GRANT, OWNER TO, functions, extensions, ...) are
// skipped. Unqualified names resolve to schema public. A syntax error is
// reported as "source:line:col: message"; so is a statement the parser
// accepts but that refers to a table the file never created, since the
// model would be incomplete.
//
// The model matches what db.Introspect reads from a server holding the
// same schema: implicit names are chosen as PostgreSQL chooses them,
// definitions are canonical (canonical.go), indexes, constraints and
// triggers are sorted by name, copies a partition inherits from its parent
// (attached partition indexes, repeated CHECKs) are left out, and so is
// cutover's own schema "cutover". A dump says nothing about sizes:
// RowEstimate and Bytes are -1, and ServerVersion is 0.
func ParseDump(source, sql string) (*Schema, error) {
	tree, meta, err := parseDump(sql)
	if err != nil {
		return nil, syntaxError(source, sql, err)
	}
	l := &loader{
		s:         New(source),
		relNames:  map[string]bool{},
		conNames:  map[string]bool{},
		functions: map[string]bool{},
	}
	for _, raw := range tree.Stmts {
		if err := l.statement(raw.Stmt); err != nil {
			// Name the statement's first word, not the white space and
			// comments pg_query counts into its location.
			line, col := lineCol(sql, skipSpace(sql, int(raw.StmtLocation), meta))
			return nil, fmt.Errorf("%s:%d:%d: %w", source, line, col, err)
		}
	}
	if err := l.finish(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return l.s, nil
}

// parseDump parses the file once, treating lines that start with a
// backslash outside statements as psql meta-commands: pg_dump writes
// "\restrict KEY" and "\unrestrict KEY" (since PostgreSQL 17.6, 16.10,
// 15.14, ...) and, with --create, "\connect"; psql runs them, the SQL
// parser cannot. They are blanked (replaced by spaces, so every position
// stays right). A backslash line that turns out to be inside a statement (a
// function body, a string) is put back and the file parsed again. It
// returns the offsets of the blanked lines.
func parseDump(sql string) (*pg_query.ParseResult, []int, error) {
	text, meta := blankMetaCommands(sql)
	tree, err := pg_query.Parse(text)
	if err == nil && len(meta) > 0 {
		if inside := metaInsideStatements(sql, tree, meta); len(inside) > 0 {
			b := []byte(text)
			for _, off := range inside {
				end := strings.IndexByte(sql[off:], '\n')
				if end < 0 {
					end = len(sql) - off
				}
				copy(b[off:off+end], sql[off:off+end])
			}
			meta = without(meta, inside)
			tree, err = pg_query.Parse(string(b))
		}
	}
	if err != nil && len(meta) > 0 {
		// Blanking may have cut a string literal in two; the file may
		// have no meta-command at all.
		if whole, err2 := pg_query.Parse(sql); err2 == nil {
			return whole, nil, nil
		}
	}
	return tree, meta, err
}

// blankMetaCommands replaces every line that starts with a backslash with
// spaces and returns the result and the offsets of those lines.
func blankMetaCommands(sql string) (string, []int) {
	if !strings.HasPrefix(sql, `\`) && !strings.Contains(sql, "\n\\") {
		return sql, nil
	}
	b := []byte(sql)
	var starts []int
	for off := 0; off < len(b); {
		end := bytes.IndexByte(b[off:], '\n')
		if end < 0 {
			end = len(b)
		} else {
			end += off
		}
		if b[off] == '\\' {
			starts = append(starts, off)
			for i := off; i < end; i++ {
				b[i] = ' '
			}
		}
		off = end + 1
	}
	return string(b), starts
}

// metaInsideStatements returns the blanked lines that lie inside a
// statement (after its first word) rather than between statements.
func metaInsideStatements(sql string, tree *pg_query.ParseResult, meta []int) []int {
	var inside []int
	stmts := tree.Stmts
	for _, off := range meta {
		// The statement starting last at or before off is the only one
		// that can hold it (statements are in order and do not overlap).
		i := sort.Search(len(stmts), func(i int) bool { return int(stmts[i].StmtLocation) > off }) - 1
		if i < 0 {
			continue
		}
		start := int(stmts[i].StmtLocation)
		end := start + int(stmts[i].StmtLen)
		if stmts[i].StmtLen == 0 { // the last statement, without a semicolon
			end = len(sql)
		}
		if off < end && off > skipSpace(sql, start, meta) {
			inside = append(inside, off)
		}
	}
	return inside
}

func without(all, drop []int) []int {
	var out []int
	for _, x := range all {
		if !isMetaLine(x, drop) {
			out = append(out, x)
		}
	}
	return out
}

// skipSpace returns the offset of the first character at or after off that
// is not white space, a comment, or a blanked meta-command line.
func skipSpace(s string, off int, meta []int) int {
	for off < len(s) {
		switch {
		case s[off] == ' ' || s[off] == '\t' || s[off] == '\n' || s[off] == '\r':
			off++
		case strings.HasPrefix(s[off:], "--") || isMetaLine(off, meta):
			if i := strings.IndexByte(s[off:], '\n'); i >= 0 {
				off += i + 1
			} else {
				off = len(s)
			}
		case strings.HasPrefix(s[off:], "/*"):
			// Block comments nest in PostgreSQL.
			depth := 0
			for off < len(s) {
				if strings.HasPrefix(s[off:], "/*") {
					depth++
					off += 2
				} else if strings.HasPrefix(s[off:], "*/") {
					depth--
					off += 2
					if depth == 0 {
						break
					}
				} else {
					off++
				}
			}
		default:
			return off
		}
	}
	return off
}

func isMetaLine(off int, meta []int) bool {
	i := sort.SearchInts(meta, off)
	return i < len(meta) && meta[i] == off
}

// syntaxError turns pg_query's error into "source:line:col: message".
// Cursorpos is 1-based and counts characters, not bytes.
func syntaxError(source, sql string, err error) error {
	var pe *parser.Error
	if errors.As(err, &pe) && pe.Cursorpos > 0 {
		off := byteOffset(sql, pe.Cursorpos-1)
		line, col := lineCol(sql, off)
		return fmt.Errorf("%s:%d:%d: %s", source, line, col, pe.Message)
	}
	return fmt.Errorf("%s: %w", source, err)
}

// byteOffset converts a 0-based character offset into a byte offset.
func byteOffset(s string, chars int) int {
	off := 0
	for i := 0; i < chars && off < len(s); i++ {
		_, n := utf8.DecodeRuneInString(s[off:])
		off += n
	}
	return off
}

// lineCol returns the 1-based line and character column of byte offset off.
func lineCol(s string, off int) (line, col int) {
	if off > len(s) {
		off = len(s)
	}
	before := s[:off]
	line = strings.Count(before, "\n") + 1
	lineStart := strings.LastIndexByte(before, '\n') + 1
	col = utf8.RuneCountInString(before[lineStart:]) + 1
	return line, col
}

// loader fills a Schema from parse-tree statements.
type loader struct {
	s *Schema
	// relNames and conNames hold "schema.name" of every relation (tables,
	// views, indexes, sequences) and every constraint, to choose implicit
	// names as PostgreSQL does.
	relNames map[string]bool
	conNames map[string]bool
	// functions holds "schema.name" of functions the file creates, to
	// qualify a trigger's unqualified function.
	functions map[string]bool
	// views are analysed once every relation is known.
	views []pendingView
	// fks are completed (referenced columns) once every table is known.
	fks []pendingFK
	// attached are partition indexes attached to a parent index: copies,
	// removed from the model at the end.
	attached []string
}

type pendingView struct {
	view    *View
	query   *pg_query.SelectStmt
	aliases []string
}

type pendingFK struct {
	table *Table
	con   *Constraint
	node  *pg_query.Constraint
}

// qualify returns a RangeVar's schema, defaulting to public.
func qualify(rv *pg_query.RangeVar) (string, string) {
	if rv.Schemaname == "" {
		return "public", rv.Relname
	}
	return rv.Schemaname, rv.Relname
}

func rangeKey(rv *pg_query.RangeVar) string { return Key(qualify(rv)) }

// nameList splits a qualified name list (String nodes) into schema and
// name, defaulting the schema to public.
func nameList(nodes []*pg_query.Node) (string, string) {
	var parts []string
	for _, n := range nodes {
		parts = append(parts, n.GetString_().GetSval())
	}
	switch len(parts) {
	case 0:
		return "public", ""
	case 1:
		return "public", parts[0]
	default:
		return parts[len(parts)-2], parts[len(parts)-1]
	}
}

func strs(nodes []*pg_query.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.GetString_().GetSval())
	}
	return out
}

func strNodes(ss []string) []*pg_query.Node {
	out := make([]*pg_query.Node, len(ss))
	for i, s := range ss {
		out[i] = pg_query.MakeStrNode(s)
	}
	return out
}

func (l *loader) statement(n *pg_query.Node) error {
	switch st := n.Node.(type) {
	case *pg_query.Node_CreateStmt:
		return l.createTable(st.CreateStmt)
	case *pg_query.Node_AlterTableStmt:
		return l.alterTable(st.AlterTableStmt)
	case *pg_query.Node_IndexStmt:
		return l.createIndex(st.IndexStmt)
	case *pg_query.Node_CreateTrigStmt:
		return l.createTrigger(st.CreateTrigStmt)
	case *pg_query.Node_ViewStmt:
		return l.createView(st.ViewStmt)
	case *pg_query.Node_CreateTableAsStmt:
		if st.CreateTableAsStmt.Objtype == pg_query.ObjectType_OBJECT_MATVIEW {
			return l.createMatView(st.CreateTableAsStmt)
		}
	case *pg_query.Node_CreateEnumStmt:
		nsp, name := nameList(st.CreateEnumStmt.TypeName)
		l.s.Enums[Key(nsp, name)] = &Enum{Schema: nsp, Name: name, Values: strs(st.CreateEnumStmt.Vals)}
	case *pg_query.Node_AlterEnumStmt:
		l.alterEnum(st.AlterEnumStmt)
	case *pg_query.Node_CreateDomainStmt:
		return l.createDomain(st.CreateDomainStmt)
	case *pg_query.Node_CreateSeqStmt:
		nsp, name := qualify(st.CreateSeqStmt.Sequence)
		seq := &Sequence{Schema: nsp, Name: name}
		l.s.Sequences[Key(nsp, name)] = seq
		l.relNames[Key(nsp, name)] = true
		l.seqOptions(seq, st.CreateSeqStmt.Options)
	case *pg_query.Node_AlterSeqStmt:
		if seq := l.s.Sequences[rangeKey(st.AlterSeqStmt.Sequence)]; seq != nil {
			l.seqOptions(seq, st.AlterSeqStmt.Options)
		}
	case *pg_query.Node_DropStmt:
		l.drop(st.DropStmt)
	case *pg_query.Node_CreateFunctionStmt:
		nsp, name := nameList(st.CreateFunctionStmt.Funcname)
		l.functions[Key(nsp, name)] = true
	}
	return nil
}

// drop removes dropped objects: pg_dump --clean starts with DROP
// statements (of objects not created yet), and a hand-written file may
// drop what it created.
func (l *loader) drop(st *pg_query.DropStmt) {
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
		key := Key(nameList(names))
		switch st.RemoveType {
		case pg_query.ObjectType_OBJECT_TABLE:
			delete(l.s.Tables, key)
		case pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW:
			delete(l.s.Views, key)
			for i := range l.views {
				if l.views[i].view.Key() == key {
					l.views = append(l.views[:i], l.views[i+1:]...)
					break
				}
			}
		case pg_query.ObjectType_OBJECT_INDEX:
			l.dropIndex(key)
		case pg_query.ObjectType_OBJECT_SEQUENCE:
			delete(l.s.Sequences, key)
		case pg_query.ObjectType_OBJECT_TYPE, pg_query.ObjectType_OBJECT_DOMAIN:
			delete(l.s.Enums, key)
			delete(l.s.Domains, key)
		}
	}
}

// seqOptions applies the OWNED BY option of CREATE/ALTER SEQUENCE.
func (l *loader) seqOptions(seq *Sequence, opts []*pg_query.Node) {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || d.Defname != "owned_by" {
			continue
		}
		parts := strs(d.Arg.GetList().GetItems())
		switch len(parts) {
		case 1: // OWNED BY NONE
			seq.OwnedBy = nil
		case 2:
			seq.OwnedBy = &ColumnRef{Relation: Key("public", parts[0]), Column: parts[1]}
		default:
			n := len(parts)
			seq.OwnedBy = &ColumnRef{Relation: Key(parts[n-3], parts[n-2]), Column: parts[n-1]}
		}
	}
}

func (l *loader) alterEnum(st *pg_query.AlterEnumStmt) {
	e := l.s.Enums[Key(nameList(st.TypeName))]
	if e == nil {
		return
	}
	if st.OldVal != "" { // RENAME VALUE
		for i, v := range e.Values {
			if v == st.OldVal {
				e.Values[i] = st.NewVal
			}
		}
		return
	}
	for _, v := range e.Values {
		if v == st.NewVal {
			return
		}
	}
	at := len(e.Values)
	if st.NewValNeighbor != "" {
		for i, v := range e.Values {
			if v == st.NewValNeighbor {
				at = i
				if st.NewValIsAfter {
					at = i + 1
				}
			}
		}
	}
	e.Values = append(e.Values[:at], append([]string{st.NewVal}, e.Values[at:]...)...)
}

func (l *loader) createDomain(st *pg_query.CreateDomainStmt) error {
	nsp, name := nameList(st.Domainname)
	d := &Domain{Schema: nsp, Name: name, Type: FormatType(st.TypeName)}
	for _, cn := range st.Constraints {
		c := cn.GetConstraint()
		switch c.GetContype() {
		case pg_query.ConstrType_CONSTR_NOTNULL:
			d.NotNull = true
		case pg_query.ConstrType_CONSTR_CHECK:
			def, err := deparseConstraint(c)
			if err != nil {
				return err
			}
			d.Checks = append(d.Checks, def)
		}
	}
	sort.Strings(d.Checks)
	l.s.Domains[Key(nsp, name)] = d
	return nil
}

// serialTypes maps the serial pseudo-types to the column type they create.
var serialTypes = map[string]string{
	"serial": "integer", "serial4": "integer",
	"bigserial": "bigint", "serial8": "bigint",
	"smallserial": "smallint", "serial2": "smallint",
}

func (l *loader) createTable(st *pg_query.CreateStmt) error {
	nsp, name := qualify(st.Relation)
	key := Key(nsp, name)
	if _, dup := l.s.Tables[key]; dup {
		if st.IfNotExists {
			return nil
		}
		return fmt.Errorf("table %s is created twice", key)
	}
	t := &Table{Schema: nsp, Name: name, RowEstimate: -1, Bytes: -1}
	l.s.Tables[key] = t
	l.relNames[key] = true

	// Inherited columns come first: PARTITION OF copies the parent's,
	// INHERITS (p) too.
	for _, in := range st.InhRelations {
		rv := in.GetRangeVar()
		if rv == nil {
			continue
		}
		parent := l.s.Tables[rangeKey(rv)]
		if parent == nil {
			return fmt.Errorf("table %s: parent %s is not created before it", key, rangeKey(rv))
		}
		for _, pc := range parent.Columns {
			if t.Column(pc.Name) == nil {
				c := *pc
				c.Identity = ""
				t.Columns = append(t.Columns, &c)
			}
		}
		if st.Partbound != nil {
			t.PartitionOf = parent.Key()
			parent.Partitions = append(parent.Partitions, key)
		}
	}
	if st.Partspec != nil {
		def, err := deparsePartitionKey(st.Partspec)
		if err != nil {
			return err
		}
		t.Partitioned, t.PartitionKey = true, def
	}

	var tableCons []*pg_query.Constraint
	for _, el := range st.TableElts {
		switch e := el.Node.(type) {
		case *pg_query.Node_ColumnDef:
			if err := l.columnDef(t, e.ColumnDef, true); err != nil {
				return err
			}
		case *pg_query.Node_Constraint:
			tableCons = append(tableCons, e.Constraint)
		case *pg_query.Node_TableLikeClause:
			src := l.s.Tables[rangeKey(e.TableLikeClause.Relation)]
			if src == nil {
				return fmt.Errorf("table %s: LIKE %s: no such table", key, rangeKey(e.TableLikeClause.Relation))
			}
			const likeDefaults = 1 << 3 // CREATE_TABLE_LIKE_DEFAULTS
			for _, sc := range src.Columns {
				c := &Column{Name: sc.Name, Type: sc.Type, NotNull: sc.NotNull}
				if e.TableLikeClause.Options&likeDefaults != 0 {
					c.Default = sc.Default
				}
				t.Columns = append(t.Columns, c)
			}
		}
	}
	for _, c := range tableCons {
		if err := l.addConstraint(t, c, "", true); err != nil {
			return err
		}
	}
	return nil
}

// columnDef adds a column (or, for a partition's "WITH OPTIONS" column,
// updates the inherited one) with its inline constraints.
func (l *loader) columnDef(t *Table, cd *pg_query.ColumnDef, inCreate bool) error {
	col := t.Column(cd.Colname)
	if col == nil {
		if cd.TypeName == nil {
			return fmt.Errorf("table %s: column %s has no type", t.Key(), cd.Colname)
		}
		col = &Column{Name: cd.Colname}
		t.Columns = append(t.Columns, col)
	}
	if cd.TypeName != nil {
		col.Type = FormatType(cd.TypeName)
		if len(cd.TypeName.Names) >= 1 && len(cd.TypeName.ArrayBounds) == 0 {
			nsp, tname := nameList(cd.TypeName.Names)
			if base, ok := serialTypes[tname]; ok && (len(cd.TypeName.Names) == 1 || nsp == "pg_catalog") {
				seqName := l.chooseRelName(t.Schema, t.Name, col.Name, "seq")
				l.s.Sequences[Key(t.Schema, seqName)] = &Sequence{Schema: t.Schema, Name: seqName,
					OwnedBy: &ColumnRef{Relation: t.Key(), Column: col.Name}}
				col.Type, col.NotNull = base, true
				def, err := CanonicalExpr("nextval(" + quoteLiteral(QuoteIdent(t.Schema)+"."+QuoteIdent(seqName)) + "::regclass)")
				if err != nil {
					return err
				}
				col.Default = def
			}
		}
	}
	if cd.IsNotNull {
		col.NotNull = true
	}
	if cd.RawDefault != nil {
		def, err := deparseExpr(cd.RawDefault)
		if err != nil {
			return err
		}
		col.Default = def
	}
	// DEFERRABLE and INITIALLY DEFERRED after a column constraint are
	// separate nodes in the raw tree; fold them into the constraint they
	// follow, as PostgreSQL's transformConstraintAttrs does.
	var last *pg_query.Constraint
	for _, cn := range cd.Constraints {
		c := cn.GetConstraint()
		switch c.GetContype() {
		case pg_query.ConstrType_CONSTR_ATTR_DEFERRABLE:
			if last != nil {
				last.Deferrable = true
			}
		case pg_query.ConstrType_CONSTR_ATTR_NOT_DEFERRABLE:
			if last != nil {
				last.Deferrable = false
			}
		case pg_query.ConstrType_CONSTR_ATTR_DEFERRED:
			if last != nil {
				last.Initdeferred, last.Deferrable = true, true
			}
		case pg_query.ConstrType_CONSTR_ATTR_IMMEDIATE:
			if last != nil {
				last.Initdeferred = false
			}
		default:
			last = c
		}
	}
	for _, cn := range cd.Constraints {
		c := cn.GetConstraint()
		if c == nil {
			continue
		}
		switch c.Contype {
		case pg_query.ConstrType_CONSTR_NOTNULL:
			col.NotNull = true
		case pg_query.ConstrType_CONSTR_NULL:
			col.NotNull = false
		case pg_query.ConstrType_CONSTR_DEFAULT:
			def, err := deparseExpr(c.RawExpr)
			if err != nil {
				return err
			}
			col.Default = def
		case pg_query.ConstrType_CONSTR_IDENTITY:
			l.addIdentity(t, col, c.GeneratedWhen, c.Options)
		case pg_query.ConstrType_CONSTR_GENERATED:
			def, err := deparseExpr(c.RawExpr)
			if err != nil {
				return err
			}
			col.Generated = def
		case pg_query.ConstrType_CONSTR_CHECK, pg_query.ConstrType_CONSTR_PRIMARY,
			pg_query.ConstrType_CONSTR_UNIQUE, pg_query.ConstrType_CONSTR_FOREIGN,
			pg_query.ConstrType_CONSTR_EXCLUSION:
			if err := l.addConstraint(t, c, col.Name, inCreate); err != nil {
				return err
			}
		}
	}
	return nil
}

// addIdentity makes col an identity column with its implicit sequence.
func (l *loader) addIdentity(t *Table, col *Column, when string, opts []*pg_query.Node) {
	col.Identity = "by default"
	if when == "a" {
		col.Identity = "always"
	}
	col.NotNull, col.Default = true, ""
	nsp, name := t.Schema, ""
	for _, o := range opts {
		if d := o.GetDefElem(); d != nil && d.Defname == "sequence_name" {
			nsp, name = nameList(d.Arg.GetList().GetItems())
		}
	}
	if name == "" {
		name = l.chooseRelName(t.Schema, t.Name, col.Name, "seq")
	}
	l.relNames[Key(nsp, name)] = true
	l.s.Sequences[Key(nsp, name)] = &Sequence{Schema: nsp, Name: name,
		OwnedBy: &ColumnRef{Relation: t.Key(), Column: col.Name}}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// chooseRelName picks an implicit relation name as ChooseRelationName does:
// name1_name2_label, then name1_name2_label1, ... until unused.
func (l *loader) chooseRelName(nsp, name1, name2, label string) string {
	for i := 0; ; i++ {
		lab := label
		if i > 0 {
			lab = fmt.Sprintf("%s%d", label, i)
		}
		n := makeObjectName(name1, name2, lab)
		if !l.relNames[Key(nsp, n)] {
			l.relNames[Key(nsp, n)] = true
			return n
		}
	}
}

// chooseConName picks an implicit constraint name as ChooseConstraintName
// does.
func (l *loader) chooseConName(nsp, name1, name2, label string) string {
	for i := 0; ; i++ {
		lab := label
		if i > 0 {
			lab = fmt.Sprintf("%s%d", label, i)
		}
		n := makeObjectName(name1, name2, lab)
		if !l.conNames[Key(nsp, n)] {
			return n
		}
	}
}

func (l *loader) alterTable(st *pg_query.AlterTableStmt) error {
	if st.Objtype == pg_query.ObjectType_OBJECT_INDEX {
		for _, cn := range st.Cmds {
			cmd := cn.GetAlterTableCmd()
			if cmd.GetSubtype() == pg_query.AlterTableType_AT_AttachPartition {
				l.attached = append(l.attached, rangeKey(cmd.Def.GetPartitionCmd().GetName()))
			}
		}
		return nil
	}
	key := rangeKey(st.Relation)
	t := l.s.Tables[key]
	for _, cn := range st.Cmds {
		cmd := cn.GetAlterTableCmd()
		if cmd == nil || cmd.Subtype == pg_query.AlterTableType_AT_ChangeOwner {
			continue
		}
		if t == nil {
			// pg_dump --clean drops constraints of tables that do not
			// exist yet; ALTER TABLE is also how pg_dump sets defaults or
			// owners of views and sequences; only tables are modelled.
			if cmd.Subtype == pg_query.AlterTableType_AT_DropConstraint || cmd.Subtype == pg_query.AlterTableType_AT_DropColumn {
				continue
			}
			if _, isView := l.s.Views[key]; isView {
				continue
			}
			if _, isSeq := l.s.Sequences[key]; isSeq {
				continue
			}
			if st.MissingOk {
				continue
			}
			return fmt.Errorf("ALTER TABLE %s: no such table in the dump", key)
		}
		col := func() (*Column, error) {
			c := t.Column(cmd.Name)
			if c == nil {
				return nil, fmt.Errorf("ALTER TABLE %s: no column %s", key, cmd.Name)
			}
			return c, nil
		}
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddConstraint:
			if err := l.addConstraint(t, cmd.Def.GetConstraint(), "", false); err != nil {
				return err
			}
		case pg_query.AlterTableType_AT_DropConstraint:
			t.Constraints = removeConstraint(t.Constraints, cmd.Name)
			for i, ix := range t.Indexes {
				if ix.Constraint == cmd.Name {
					t.Indexes = append(t.Indexes[:i], t.Indexes[i+1:]...)
					break
				}
			}
		case pg_query.AlterTableType_AT_DropColumn:
			for i, c := range t.Columns {
				if c.Name == cmd.Name {
					t.Columns = append(t.Columns[:i], t.Columns[i+1:]...)
					break
				}
			}
		case pg_query.AlterTableType_AT_ValidateConstraint:
			if c := t.Constraint(cmd.Name); c != nil {
				c.Valid = true
			}
		case pg_query.AlterTableType_AT_ColumnDefault:
			c, err := col()
			if err != nil {
				return err
			}
			c.Default = ""
			if cmd.Def != nil {
				if c.Default, err = deparseExpr(cmd.Def); err != nil {
					return err
				}
			}
		case pg_query.AlterTableType_AT_SetNotNull:
			c, err := col()
			if err != nil {
				return err
			}
			c.NotNull = true
		case pg_query.AlterTableType_AT_DropNotNull:
			c, err := col()
			if err != nil {
				return err
			}
			c.NotNull = false
		case pg_query.AlterTableType_AT_AddIdentity:
			c, err := col()
			if err != nil {
				return err
			}
			if ic := cmd.Def.GetConstraint(); ic != nil {
				l.addIdentity(t, c, ic.GeneratedWhen, ic.Options)
			}
		case pg_query.AlterTableType_AT_AddColumn:
			if cd := cmd.Def.GetColumnDef(); cd != nil {
				if t.Column(cd.Colname) != nil && cmd.MissingOk {
					continue
				}
				if err := l.columnDef(t, cd, false); err != nil {
					return err
				}
			}
		case pg_query.AlterTableType_AT_AttachPartition:
			pc := cmd.Def.GetPartitionCmd()
			child := l.s.Tables[rangeKey(pc.GetName())]
			if child == nil {
				return fmt.Errorf("ALTER TABLE %s ATTACH PARTITION %s: no such table in the dump", key, rangeKey(pc.GetName()))
			}
			child.PartitionOf = key
			t.Partitions = append(t.Partitions, child.Key())
		}
	}
	return nil
}

// addConstraint adds a table constraint. colName is set for a constraint
// written inline on a column; inCreate is set inside CREATE TABLE, where
// NOT VALID does not apply.
func (l *loader) addConstraint(t *Table, c *pg_query.Constraint, colName string, inCreate bool) error {
	if c == nil {
		return nil
	}
	// A column constraint names its column implicitly; make it explicit
	// so the clause reads as the table constraint PostgreSQL stores.
	if colName != "" {
		switch c.Contype {
		case pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_UNIQUE:
			if len(c.Keys) == 0 {
				c.Keys = strNodes([]string{colName})
			}
		case pg_query.ConstrType_CONSTR_FOREIGN:
			if len(c.FkAttrs) == 0 {
				c.FkAttrs = strNodes([]string{colName})
			}
		}
	}
	if c.Indexname != "" {
		// ADD CONSTRAINT ... USING INDEX idx: the index becomes the
		// constraint's, renamed after it, and the constraint is stored as
		// one over the index's columns.
		ix := t.Index(c.Indexname)
		if ix == nil {
			return fmt.Errorf("table %s: USING INDEX %s: no such index", t.Key(), c.Indexname)
		}
		l.dropIndex(Key(t.Schema, ix.Name))
		c.Keys, c.Indexname = strNodes(ix.Columns), ""
		if c.Conname == "" {
			c.Conname = ix.Name
		}
	}
	con := &Constraint{Name: c.Conname, Valid: inCreate || !c.SkipValidation}
	switch c.Contype {
	case pg_query.ConstrType_CONSTR_PRIMARY:
		con.Type, con.Columns = PrimaryKey, strs(c.Keys)
		if con.Name == "" {
			con.Name = l.chooseRelName(t.Schema, t.Name, "", "pkey")
		}
		for _, k := range con.Columns {
			if col := t.Column(k); col != nil {
				col.NotNull = true
			}
		}
	case pg_query.ConstrType_CONSTR_UNIQUE:
		con.Type, con.Columns = Unique, strs(c.Keys)
		if con.Name == "" {
			con.Name = l.chooseRelName(t.Schema, t.Name, strings.Join(con.Columns, "_"), "key")
		}
	case pg_query.ConstrType_CONSTR_EXCLUSION:
		con.Type = Exclusion
		for _, ex := range c.Exclusions {
			if items := ex.GetList().GetItems(); len(items) > 0 {
				con.Columns = append(con.Columns, items[0].GetIndexElem().GetName())
			}
		}
		if con.Name == "" {
			con.Name = l.chooseRelName(t.Schema, t.Name, strings.Join(con.Columns, "_"), "excl")
		}
	case pg_query.ConstrType_CONSTR_CHECK:
		con.Type, con.Columns = Check, columnsIn(c.RawExpr)
		if con.Name == "" {
			// PostgreSQL names a CHECK after its column only when it
			// references exactly one.
			col := ""
			if len(con.Columns) == 1 {
				col = con.Columns[0]
			}
			con.Name = l.chooseConName(t.Schema, t.Name, col, "check")
		}
	case pg_query.ConstrType_CONSTR_FOREIGN:
		con.Type, con.Columns = ForeignKey, strs(c.FkAttrs)
		c.Pktable.Schemaname, c.Pktable.Relname = qualify(c.Pktable)
		con.RefTable = rangeKey(c.Pktable)
		con.RefColumns = strs(c.PkAttrs)
		if con.Name == "" {
			con.Name = l.chooseConName(t.Schema, t.Name, strings.Join(con.Columns, "_"), "fkey")
		}
	default:
		return nil
	}
	l.conNames[Key(t.Schema, con.Name)] = true
	t.Constraints = append(t.Constraints, con)
	if con.Type == ForeignKey && len(con.RefColumns) == 0 {
		// REFERENCES t without columns means t's primary key, which may be
		// declared later in the file: complete it at the end.
		l.fks = append(l.fks, pendingFK{table: t, con: con, node: c})
		return nil
	}
	def, err := deparseConstraint(c)
	if err != nil {
		return err
	}
	con.Definition = def
	switch con.Type {
	case PrimaryKey, Unique, Exclusion:
		return l.constraintIndex(t, con, c)
	}
	return nil
}

// constraintIndex adds the index backing a PRIMARY KEY, UNIQUE or EXCLUDE
// constraint, with the definition pg_get_indexdef would report.
func (l *loader) constraintIndex(t *Table, con *Constraint, c *pg_query.Constraint) error {
	ix := &pg_query.IndexStmt{
		Idxname:              con.Name,
		Relation:             &pg_query.RangeVar{Schemaname: t.Schema, Relname: t.Name, Inh: !t.Partitioned, Relpersistence: "p"},
		AccessMethod:         "btree",
		IndexIncludingParams: c.Including,
		Unique:               con.Type != Exclusion,
		NullsNotDistinct:     c.NullsNotDistinct,
	}
	if con.Type == Exclusion {
		if c.AccessMethod != "" {
			ix.AccessMethod = c.AccessMethod
		}
		for _, ex := range c.Exclusions {
			if items := ex.GetList().GetItems(); len(items) > 0 {
				ix.IndexParams = append(ix.IndexParams, items[0])
			}
		}
		ix.WhereClause = c.WhereClause
	} else {
		for _, k := range con.Columns {
			ix.IndexParams = append(ix.IndexParams, &pg_query.Node{Node: &pg_query.Node_IndexElem{IndexElem: &pg_query.IndexElem{
				Name: k, Ordering: pg_query.SortByDir_SORTBY_DEFAULT, NullsOrdering: pg_query.SortByNulls_SORTBY_NULLS_DEFAULT,
			}}})
		}
	}
	def, err := deparseIndex(ix)
	if err != nil {
		return err
	}
	l.relNames[Key(t.Schema, con.Name)] = true
	t.Indexes = append(t.Indexes, &Index{
		Name:       con.Name,
		Columns:    append([]string(nil), con.Columns...),
		Unique:     con.Type != Exclusion,
		Primary:    con.Type == PrimaryKey,
		Valid:      true,
		Definition: def,
		Constraint: con.Name,
	})
	return nil
}

// columnsIn lists the column names an expression references, in order of
// first appearance (as pg_constraint.conkey lists a CHECK's columns).
func columnsIn(n *pg_query.Node) []string {
	var out []string
	seen := map[string]bool{}
	var visit func(*pg_query.Node)
	visit = func(n *pg_query.Node) {
		if cr := n.GetColumnRef(); cr != nil {
			if f := cr.Fields; len(f) > 0 {
				if name := f[len(f)-1].GetString_(); name != nil && !seen[name.Sval] {
					seen[name.Sval] = true
					out = append(out, name.Sval)
				}
			}
			return
		}
		eachChild(n, visit)
	}
	if n != nil {
		visit(n)
	}
	return out
}

func (l *loader) createIndex(st *pg_query.IndexStmt) error {
	key := rangeKey(st.Relation)
	t, view := l.s.Tables[key], l.s.Views[key]
	var nsp, relName string
	partitioned := false
	switch {
	case t != nil:
		nsp, relName, partitioned = t.Schema, t.Name, t.Partitioned
	case view != nil && view.Materialized:
		nsp, relName = view.Schema, view.Name
	default:
		return fmt.Errorf("CREATE INDEX %s: no table %s in the dump", st.Idxname, key)
	}
	var cols []string
	for _, p := range st.IndexParams {
		e := p.GetIndexElem()
		cols = append(cols, e.GetName())
		// pg_get_indexdef leaves out default orderings.
		if e.GetOrdering() == pg_query.SortByDir_SORTBY_ASC {
			e.Ordering = pg_query.SortByDir_SORTBY_DEFAULT
		}
		if (e.GetOrdering() == pg_query.SortByDir_SORTBY_DESC && e.GetNullsOrdering() == pg_query.SortByNulls_SORTBY_NULLS_FIRST) ||
			(e.GetOrdering() != pg_query.SortByDir_SORTBY_DESC && e.GetNullsOrdering() == pg_query.SortByNulls_SORTBY_NULLS_LAST) {
			e.NullsOrdering = pg_query.SortByNulls_SORTBY_NULLS_DEFAULT
		}
	}
	if st.Idxname == "" {
		// ChooseIndexColumnNames: a column's name, a function call's
		// name, else "expr".
		names := make([]string, len(cols))
		for i, c := range cols {
			if c == "" {
				c = "expr"
				if fc := st.IndexParams[i].GetIndexElem().GetExpr().GetFuncCall(); fc != nil {
					c = fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval()
				}
			}
			names[i] = c
		}
		st.Idxname = l.chooseRelName(nsp, relName, strings.Join(names, "_"), "idx")
	}
	// The definition as pg_get_indexdef prints it: qualified table, ONLY
	// on a partitioned table, an explicit access method, no CONCURRENTLY.
	st.Relation.Schemaname = nsp
	st.Relation.Inh = !partitioned
	if st.AccessMethod == "" {
		st.AccessMethod = "btree"
	}
	st.Concurrent, st.IfNotExists = false, false
	def, err := deparseIndex(st)
	if err != nil {
		return err
	}
	l.relNames[Key(nsp, st.Idxname)] = true
	ix := &Index{Name: st.Idxname, Columns: cols, Unique: st.Unique, Valid: true, Definition: def}
	if t != nil {
		t.Indexes = append(t.Indexes, ix)
	} else {
		view.Indexes = append(view.Indexes, ix)
	}
	return nil
}

// Trigger timing and event bits of CreateTrigStmt (PostgreSQL's
// trigger.h).
const (
	triggerBefore   = 1 << 1
	triggerInsert   = 1 << 2
	triggerDelete   = 1 << 3
	triggerUpdate   = 1 << 4
	triggerTruncate = 1 << 5
	triggerInstead  = 1 << 6
)

func (l *loader) createTrigger(st *pg_query.CreateTrigStmt) error {
	key := rangeKey(st.Relation)
	t := l.s.Tables[key]
	if t == nil {
		if _, isView := l.s.Views[key]; isView {
			return nil // INSTEAD OF triggers on views: not modelled
		}
		return fmt.Errorf("CREATE TRIGGER %s: no table %s in the dump", st.Trigname, key)
	}
	tr := &Trigger{Name: st.Trigname, Timing: "AFTER"}
	switch {
	case st.Timing&triggerBefore != 0:
		tr.Timing = "BEFORE"
	case st.Timing&triggerInstead != 0:
		tr.Timing = "INSTEAD OF"
	}
	for _, ev := range []struct {
		bit  int32
		name string
	}{{triggerInsert, "INSERT"}, {triggerUpdate, "UPDATE"}, {triggerDelete, "DELETE"}, {triggerTruncate, "TRUNCATE"}} {
		if st.Events&ev.bit != 0 {
			tr.Events = append(tr.Events, ev.name)
		}
	}
	fn := strs(st.Funcname)
	if len(fn) == 1 && l.functions[Key("public", fn[0])] {
		fn = []string{"public", fn[0]}
		st.Funcname = strNodes(fn)
	}
	quoted := make([]string, len(fn))
	for i, f := range fn {
		quoted[i] = QuoteIdent(f)
	}
	tr.Function = strings.Join(quoted, ".")
	st.Relation.Schemaname = t.Schema
	def, err := deparseStmt(&pg_query.Node{Node: &pg_query.Node_CreateTrigStmt{CreateTrigStmt: st}})
	if err != nil {
		return err
	}
	tr.Definition = def
	t.Triggers = append(t.Triggers, tr)
	return nil
}

func (l *loader) createView(st *pg_query.ViewStmt) error {
	sel := st.Query.GetSelectStmt()
	if sel == nil {
		return fmt.Errorf("CREATE VIEW %s: not a SELECT", rangeKey(st.View))
	}
	return l.addView(st.View, sel, st.Query, strs(st.Aliases), false)
}

func (l *loader) createMatView(st *pg_query.CreateTableAsStmt) error {
	sel := st.Query.GetSelectStmt()
	if sel == nil {
		return fmt.Errorf("CREATE MATERIALIZED VIEW %s: not a SELECT", rangeKey(st.Into.Rel))
	}
	return l.addView(st.Into.Rel, sel, st.Query, strs(st.Into.ColNames), true)
}

func (l *loader) addView(rv *pg_query.RangeVar, sel *pg_query.SelectStmt, q *pg_query.Node, aliases []string, mat bool) error {
	nsp, name := qualify(rv)
	def, err := deparseStmt(q)
	if err != nil {
		return err
	}
	v := &View{Schema: nsp, Name: name, Materialized: mat, Definition: def}
	pv := pendingView{view: v, query: sel, aliases: aliases}
	if _, replaced := l.s.Views[v.Key()]; replaced { // CREATE OR REPLACE VIEW
		for i := range l.views {
			if l.views[i].view.Key() == v.Key() {
				l.views[i] = pv
			}
		}
	} else {
		l.views = append(l.views, pv)
	}
	l.s.Views[v.Key()] = v
	l.relNames[v.Key()] = true
	return nil
}

// finish completes what needs the whole file: foreign keys to primary keys
// declared later, partition lists, attached partition indexes, and the
// columns views use.
func (l *loader) finish() error {
	if err := l.completeFKs(); err != nil {
		return err
	}
	for _, ixKey := range l.attached {
		l.dropIndex(ixKey)
	}
	inherited := map[*Table][]string{}
	for _, t := range l.s.Tables {
		sort.Strings(t.Partitions)
		inherited[t] = l.inheritedChecks(t)
	}
	for t, names := range inherited {
		for _, name := range names {
			t.Constraints = removeConstraint(t.Constraints, name)
		}
	}
	// cutover keeps its own state in schema cutover; the live model leaves
	// it out, and so does this one.
	for k, t := range l.s.Tables {
		if t.Schema == "cutover" {
			delete(l.s.Tables, k)
		}
	}
	for k, v := range l.s.Views {
		if v.Schema == "cutover" {
			delete(l.s.Views, k)
		}
	}
	for k, seq := range l.s.Sequences {
		if seq.Schema == "cutover" {
			delete(l.s.Sequences, k)
		}
	}
	for k, e := range l.s.Enums {
		if e.Schema == "cutover" {
			delete(l.s.Enums, k)
		}
	}
	for k, d := range l.s.Domains {
		if d.Schema == "cutover" {
			delete(l.s.Domains, k)
		}
	}
	// Catalog order is name order; file order is not.
	for _, t := range l.s.Tables {
		sort.SliceStable(t.Indexes, func(i, j int) bool { return t.Indexes[i].Name < t.Indexes[j].Name })
		sort.SliceStable(t.Constraints, func(i, j int) bool { return t.Constraints[i].Name < t.Constraints[j].Name })
		sort.SliceStable(t.Triggers, func(i, j int) bool { return t.Triggers[i].Name < t.Triggers[j].Name })
	}
	for _, v := range l.s.Views {
		sort.SliceStable(v.Indexes, func(i, j int) bool { return v.Indexes[i].Name < v.Indexes[j].Name })
	}
	l.analyzeViews()
	return nil
}

// completeFKs fills the referenced columns of foreign keys written
// REFERENCES t without a column list: t's primary key. (Also used by
// Schema.Apply.)
func (l *loader) completeFKs() error {
	for _, fk := range l.fks {
		ref := l.s.Tables[fk.con.RefTable]
		var pk *Constraint
		if ref != nil {
			pk = ref.PrimaryKey()
		}
		if pk == nil {
			return fmt.Errorf("foreign key %s on %s: %s has no primary key to reference", fk.con.Name, fk.table.Key(), fk.con.RefTable)
		}
		fk.con.RefColumns = append([]string(nil), pk.Columns...)
		fk.node.PkAttrs = strNodes(pk.Columns)
		def, err := deparseConstraint(fk.node)
		if err != nil {
			return err
		}
		fk.con.Definition = def
	}
	l.fks = nil
	return nil
}

// analyzeViews fills Uses and DependsOn of the views created so far. (Also
// used by Schema.Apply.)
func (l *loader) analyzeViews() {
	a := &viewAnalyzer{s: l.s, pending: map[string]*pendingView{}, outCols: map[string][]string{}}
	for i := range l.views {
		a.pending[l.views[i].view.Key()] = &l.views[i]
	}
	for i := range l.views {
		a.analyze(&l.views[i])
	}
}

// inheritedChecks names the CHECK constraints a partition has from its
// parent: pg_dump repeats them in each partition's CREATE TABLE, but they
// are the parent's (inherited, coninhcount > 0) and the model lists them
// there only. (Found before any is removed, so that a partition of a
// partition still sees its parent's copy.)
func (l *loader) inheritedChecks(t *Table) []string {
	parent := l.s.Tables[t.PartitionOf]
	if parent == nil {
		return nil
	}
	var names []string
	for _, c := range t.Constraints {
		if pc := parent.Constraint(c.Name); c.Type == Check && pc != nil && pc.Type == Check {
			names = append(names, c.Name)
		}
	}
	return names
}

// dropIndex removes an index and the constraint it backs: for DROP INDEX,
// for an index taken over by ADD CONSTRAINT ... USING INDEX, and for a
// partition's index attached to its parent's (ALTER INDEX ... ATTACH
// PARTITION), which PostgreSQL manages with the parent's and the model
// lists on the parent only.
func (l *loader) dropIndex(key string) {
	for _, t := range l.s.Tables {
		for i, ix := range t.Indexes {
			if Key(t.Schema, ix.Name) != key {
				continue
			}
			t.Indexes = append(t.Indexes[:i], t.Indexes[i+1:]...)
			if ix.Constraint != "" {
				t.Constraints = removeConstraint(t.Constraints, ix.Constraint)
			}
			return
		}
	}
}

func removeConstraint(cons []*Constraint, name string) []*Constraint {
	for i, c := range cons {
		if c.Name == name {
			return append(cons[:i], cons[i+1:]...)
		}
	}
	return cons
}

// eachChild calls fn for every Node directly below n, looking through the
// non-Node messages (TypeName, IndexElem lists, ...) in between.
func eachChild(n *pg_query.Node, fn func(*pg_query.Node)) {
	eachChildMsg(n.ProtoReflect(), fn)
}

func eachChildMsg(m protoreflect.Message, fn func(*pg_query.Node)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				visitMsg(list.Get(i).Message(), fn)
			}
			return true
		}
		visitMsg(v.Message(), fn)
		return true
	})
}

func visitMsg(m protoreflect.Message, fn func(*pg_query.Node)) {
	if n, ok := m.Interface().(*pg_query.Node); ok {
		fn(n)
		return
	}
	eachChildMsg(m, fn)
}

// viewAnalyzer works out which relations and columns each view reads, the
// way PostgreSQL's pg_depend records them for a view's rewrite rule: every
// column referenced anywhere in the query (target list, join conditions,
// WHERE, GROUP BY, ORDER BY, subqueries), resolved through FROM aliases and
// joins; unqualified columns are resolved against the relations in scope
// using the model.
type viewAnalyzer struct {
	s       *Schema
	pending map[string]*pendingView
	// outCols holds the output column names of analysed views.
	outCols map[string][]string
	// state is 1 while a view is being analysed, 2 once done.
	state map[string]int
}

// useSet collects one view's reads.
type useSet struct {
	uses map[ColumnRef]bool
	deps map[string]bool
}

func (a *viewAnalyzer) analyze(pv *pendingView) {
	key := pv.view.Key()
	if a.state == nil {
		a.state = map[string]int{}
	}
	if a.state[key] != 0 {
		return
	}
	a.state[key] = 1
	u := &useSet{uses: map[ColumnRef]bool{}, deps: map[string]bool{}}
	cols := a.selectStmt(u, pv.query, nil)
	for i, al := range pv.aliases {
		if i < len(cols) {
			cols[i] = al
		}
	}
	a.outCols[key] = cols
	v := pv.view
	v.Uses = make([]ColumnRef, 0, len(u.uses))
	for r := range u.uses {
		v.Uses = append(v.Uses, r)
	}
	sort.Slice(v.Uses, func(i, j int) bool {
		if v.Uses[i].Relation != v.Uses[j].Relation {
			return v.Uses[i].Relation < v.Uses[j].Relation
		}
		return v.Uses[i].Column < v.Uses[j].Column
	})
	v.DependsOn = make([]string, 0, len(u.deps))
	for d := range u.deps {
		v.DependsOn = append(v.DependsOn, d)
	}
	sort.Strings(v.DependsOn)
	a.state[key] = 2
}

// relColumns returns the column names of a table or view, nil when the
// relation is not in the model (or is a view still being analysed).
func (a *viewAnalyzer) relColumns(key string) []string {
	if t := a.s.Tables[key]; t != nil {
		cols := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cols[i] = c.Name
		}
		return cols
	}
	if pv := a.pending[key]; pv != nil {
		a.analyze(pv)
		return a.outCols[key]
	}
	return nil
}

// rangeItem is one entry of a FROM clause as a query sees it.
type rangeItem struct {
	// name is the alias, or the relation's name when it has none.
	name string
	// schema is set for an unaliased relation, which a schema-qualified
	// reference can name.
	schema string
	// rel is the relation key; "" for subqueries, functions and CTEs,
	// whose columns are not stored columns.
	rel string
	// cols are the visible column names; base the relation's column each
	// one is (they differ when the alias renames columns).
	cols, base []string
	// children are the inputs of an aliased join.
	children []*rangeItem
}

func (it *rangeItem) has(col string) bool {
	if it.children != nil {
		for _, c := range it.children {
			if c.has(col) {
				return true
			}
		}
		return false
	}
	for _, c := range it.cols {
		if c == col {
			return true
		}
	}
	return false
}

// scope is one query level's FROM items and CTEs.
type scope struct {
	items  []*rangeItem
	ctes   map[string][]string
	parent *scope
}

func (sc *scope) cte(name string) ([]string, bool) {
	for s := sc; s != nil; s = s.parent {
		if cols, ok := s.ctes[name]; ok {
			return cols, true
		}
	}
	return nil, false
}

// lookup finds the FROM item a qualifier ([alias] or [schema, table])
// names, innermost query level first.
func (sc *scope) lookup(qual []string) *rangeItem {
	name := qual[len(qual)-1]
	for s := sc; s != nil; s = s.parent {
		for _, it := range s.items {
			if it.name != name {
				continue
			}
			if len(qual) == 1 || (it.schema == qual[len(qual)-2]) {
				return it
			}
		}
	}
	return nil
}

// record notes that the query reads column col of item.
func (u *useSet) record(it *rangeItem, col string) {
	if it.children != nil {
		for _, c := range it.children {
			if c.has(col) {
				u.record(c, col)
			}
		}
		return
	}
	if it.rel == "" {
		return
	}
	if it.cols == nil { // a relation the model does not know
		u.uses[ColumnRef{Relation: it.rel, Column: col}] = true
		return
	}
	for i, c := range it.cols {
		if c == col {
			u.uses[ColumnRef{Relation: it.rel, Column: it.base[i]}] = true
		}
	}
}

func (u *useSet) recordAll(it *rangeItem) {
	if it.children != nil {
		for _, c := range it.children {
			u.recordAll(c)
		}
		return
	}
	for _, c := range it.cols {
		u.record(it, c)
	}
}

// selectStmt analyses a SELECT (with parent as the enclosing query's
// scope, for correlated subqueries) and returns its output column names.
func (a *viewAnalyzer) selectStmt(u *useSet, sel *pg_query.SelectStmt, parent *scope) []string {
	if sel == nil {
		return nil
	}
	sc := &scope{parent: parent, ctes: map[string][]string{}}
	if w := sel.WithClause; w != nil {
		for _, cn := range w.Ctes {
			cte := cn.GetCommonTableExpr()
			if cte == nil {
				continue
			}
			sc.ctes[cte.Ctename] = strs(cte.Aliascolnames)
			cols := a.selectStmt(u, cte.Ctequery.GetSelectStmt(), sc)
			if len(cte.Aliascolnames) == 0 {
				sc.ctes[cte.Ctename] = cols
			}
		}
	}
	if sel.Op != pg_query.SetOperation_SETOP_NONE {
		cols := a.selectStmt(u, sel.Larg, sc)
		a.selectStmt(u, sel.Rarg, sc)
		return cols
	}
	if len(sel.ValuesLists) > 0 {
		var cols []string
		for _, row := range sel.ValuesLists {
			a.expr(u, row, sc)
			if cols == nil {
				for i := range row.GetList().GetItems() {
					cols = append(cols, fmt.Sprintf("column%d", i+1))
				}
			}
		}
		return cols
	}
	for _, f := range sel.FromClause {
		sc.items = append(sc.items, a.fromItem(u, f, sc)...)
	}
	for _, list := range [][]*pg_query.Node{sel.TargetList, sel.GroupClause, sel.WindowClause, sel.SortClause, sel.DistinctClause} {
		for _, n := range list {
			a.expr(u, n, sc)
		}
	}
	for _, n := range []*pg_query.Node{sel.WhereClause, sel.HavingClause, sel.LimitCount, sel.LimitOffset} {
		if n != nil {
			a.expr(u, n, sc)
		}
	}
	var cols []string
	for _, n := range sel.TargetList {
		rt := n.GetResTarget()
		if rt == nil {
			continue
		}
		if rt.Name != "" {
			cols = append(cols, rt.Name)
			continue
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			var items []*rangeItem
			if len(cr.Fields) == 1 {
				items = sc.items
			} else if it := sc.lookup(strs(cr.Fields[:len(cr.Fields)-1])); it != nil {
				items = []*rangeItem{it}
			}
			for _, it := range items {
				cols = append(cols, itemColumns(it)...)
			}
			continue
		}
		cols = append(cols, figureColname(rt.Val))
	}
	return cols
}

func itemColumns(it *rangeItem) []string {
	if it.children == nil {
		return it.cols
	}
	var out []string
	for _, c := range it.children {
		out = append(out, itemColumns(c)...)
	}
	return out
}

// figureColname names an unaliased output column as PostgreSQL's
// FigureColname does, for the common cases.
func figureColname(n *pg_query.Node) string {
	switch {
	case n.GetColumnRef() != nil:
		f := n.GetColumnRef().Fields
		if s := f[len(f)-1].GetString_(); s != nil {
			return s.Sval
		}
	case n.GetFuncCall() != nil:
		f := n.GetFuncCall().Funcname
		return f[len(f)-1].GetString_().GetSval()
	case n.GetTypeCast() != nil:
		if name := figureColname(n.GetTypeCast().Arg); name != "?column?" {
			return name
		}
		tn := n.GetTypeCast().TypeName.GetNames()
		if len(tn) > 0 {
			return tn[len(tn)-1].GetString_().GetSval()
		}
	case n.GetCaseExpr() != nil:
		return "case"
	case n.GetCoalesceExpr() != nil:
		return "coalesce"
	case n.GetSubLink() != nil && n.GetSubLink().SubLinkType == pg_query.SubLinkType_EXISTS_SUBLINK:
		return "exists"
	case n.GetSubLink() != nil && n.GetSubLink().SubLinkType == pg_query.SubLinkType_ARRAY_SUBLINK:
		return "array"
	case n.GetAArrayExpr() != nil:
		return "array"
	}
	return "?column?"
}

// fromItem analyses one FROM entry and returns the items it makes visible.
func (a *viewAnalyzer) fromItem(u *useSet, n *pg_query.Node, sc *scope) []*rangeItem {
	switch f := n.Node.(type) {
	case *pg_query.Node_RangeVar:
		rv := f.RangeVar
		it := &rangeItem{name: rv.Relname}
		if cols, ok := sc.cte(rv.Relname); ok && rv.Schemaname == "" {
			it.cols = cols
		} else {
			nsp, name := qualify(rv)
			it.rel, it.schema = Key(nsp, name), nsp
			u.deps[it.rel] = true
			it.cols = a.relColumns(it.rel)
			it.base = it.cols
		}
		if rv.Alias != nil {
			it.name, it.schema = rv.Alias.Aliasname, ""
			it.cols = renameCols(it.cols, strs(rv.Alias.Colnames))
		}
		return []*rangeItem{it}
	case *pg_query.Node_JoinExpr:
		j := f.JoinExpr
		left := a.fromItem(u, j.Larg, sc)
		right := a.fromItem(u, j.Rarg, sc)
		both := append(append([]*rangeItem(nil), left...), right...)
		using := strs(j.UsingClause)
		if j.IsNatural {
			for _, it := range left {
				for _, c := range itemColumns(it) {
					for _, r := range right {
						if r.has(c) {
							using = append(using, c)
						}
					}
				}
			}
		}
		for _, c := range using {
			for _, side := range [][]*rangeItem{left, right} {
				for _, it := range side {
					if it.has(c) {
						u.record(it, c)
						break
					}
				}
			}
		}
		if j.Quals != nil {
			a.expr(u, j.Quals, &scope{items: both, parent: sc})
		}
		if j.Alias != nil {
			return []*rangeItem{{name: j.Alias.Aliasname, children: both}}
		}
		return both
	case *pg_query.Node_RangeSubselect:
		rs := f.RangeSubselect
		parent := sc.parent
		if rs.Lateral {
			parent = sc
		}
		cols := a.selectStmt(u, rs.Subquery.GetSelectStmt(), parent)
		it := &rangeItem{cols: cols}
		if rs.Alias != nil {
			it.name = rs.Alias.Aliasname
			it.cols = renameCols(cols, strs(rs.Alias.Colnames))
		}
		return []*rangeItem{it}
	case *pg_query.Node_RangeFunction:
		for _, fn := range f.RangeFunction.Functions {
			a.expr(u, fn, sc)
		}
		it := &rangeItem{}
		if al := f.RangeFunction.Alias; al != nil {
			it.name, it.cols = al.Aliasname, strs(al.Colnames)
		}
		return []*rangeItem{it}
	case *pg_query.Node_RangeTableSample:
		items := a.fromItem(u, f.RangeTableSample.Relation, sc)
		a.expr(u, n, &scope{items: items, parent: sc})
		return items
	}
	a.expr(u, n, sc)
	return nil
}

// renameCols applies an alias's column list to the first columns.
func renameCols(cols, alias []string) []string {
	if len(alias) == 0 {
		return cols
	}
	out := append([]string(nil), cols...)
	for i, al := range alias {
		if i < len(out) {
			out[i] = al
		} else {
			out = append(out, al)
		}
	}
	return out
}

// expr walks an expression, recording the columns it reads.
func (a *viewAnalyzer) expr(u *useSet, n *pg_query.Node, sc *scope) {
	switch e := n.Node.(type) {
	case *pg_query.Node_ColumnRef:
		a.columnRef(u, e.ColumnRef, sc)
		return
	case *pg_query.Node_SubLink:
		if e.SubLink.Testexpr != nil {
			a.expr(u, e.SubLink.Testexpr, sc)
		}
		a.selectStmt(u, e.SubLink.Subselect.GetSelectStmt(), sc)
		return
	case *pg_query.Node_SelectStmt:
		a.selectStmt(u, e.SelectStmt, sc)
		return
	case *pg_query.Node_RangeVar, *pg_query.Node_RangeTableSample:
		return
	}
	eachChild(n, func(c *pg_query.Node) { a.expr(u, c, sc) })
}

func (a *viewAnalyzer) columnRef(u *useSet, cr *pg_query.ColumnRef, sc *scope) {
	f := cr.Fields
	if len(f) == 0 {
		return
	}
	if f[len(f)-1].GetAStar() != nil {
		if len(f) == 1 {
			for _, it := range sc.items {
				u.recordAll(it)
			}
		} else if it := sc.lookup(strs(f[:len(f)-1])); it != nil {
			u.recordAll(it)
		}
		return
	}
	names := strs(f)
	col := names[len(names)-1]
	if len(names) == 1 {
		// Unqualified: the innermost query level with a FROM item that
		// has the column.
		for s := sc; s != nil; s = s.parent {
			found := false
			for _, it := range s.items {
				if it.has(col) {
					u.record(it, col)
					found = true
				}
			}
			if found {
				return
			}
		}
		return
	}
	if it := sc.lookup(names[:len(names)-1]); it != nil {
		u.record(it, col)
	}
}
