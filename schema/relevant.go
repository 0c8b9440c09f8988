package schema

// Loading only the part of a dump a change needs.
//
// Parsing a whole dump costs about as much as pg_query's parse of its text
// (~160 ms for 1,000 tables), and a plan reads only the objects its
// statements touch and their neighbours. ParseDumpFor therefore splits the
// dump into statements with PostgreSQL's own scanner
// (pg_query.SplitWithScanner, a tenth of a parse) and parses only the
// statements that can concern those objects.
//
// Which statements are parsed: a cheap prefilter looks for names in the
// text. A statement is a candidate when its text contains one of the names
// searched for: a name that could be written unquoted (no upper-case ASCII
// letter, no double quote) is searched case-insensitively, as it may be
// written in any case; any other name only appears quoted, and its exact
// bytes (with " doubled) are searched. Statements holding U&" (a Unicode-
// escaped identifier, which no byte search can see through) are always
// candidates. A name longer than namePrefixLen bytes is searched by its
// first namePrefixLen bytes, so that the names PostgreSQL and cutover derive
// from it (makeObjectName truncates the base name, never to fewer bytes)
// are found too. The prefilter only ever discards statements that cannot
// mention the names: what a candidate means is decided by parsing it, never
// by reading its text (no regular expressions, no other text inspection).
//
// Which objects are loaded, from what the parsed statements say (levels as
// the planner needs them):
//
//   - level 0, the targets: the relations and types the change names
//     (planner.Relations), and the table holding an index or constraint the
//     change names (DROP INDEX names only the index);
//   - level 1, their neighbours: tables referencing or referenced by a
//     level-0 table through a foreign key, and the tables whose foreign-key
//     columns follow a followed column (a primary-key type change changes
//     the referencing columns, recursively: only along those columns, not
//     along every foreign key); views and materialized views reading a
//     level-0 or level-1 relation, closed over views reading those views;
//     the enums and domains the columns of level-0 and level-1 tables have
//     (and a domain's base type);
//   - support objects, loaded only so that the objects above are exactly as
//     the full parse makes them: the whole partition tree of every loaded
//     table (at the lowest level of its members: a partitioned table and
//     its partitions are one unit), the parent of an inheritance child, the
//     source of CREATE TABLE ... LIKE, the table a foreign key without
//     column list references (its primary key completes the foreign key),
//     every relation a loaded view reads, the sequences owned by loaded
//     tables' columns, the functions a loaded table's triggers call
//     unqualified, and every relation, index or constraint whose name
//     starts with (the first namePrefixLen bytes of) the name of a loaded
//     relation, index or constraint or of a target: the table holding it
//     is loaded, so that the implicit names PostgreSQL chooses, and the
//     names cutover chooses for new objects, see every name they could
//     collide with.
//
// Every statement whose subject (the table, view, sequence or type it
// creates or changes) is loaded is parsed, since its text names the
// subject; so each loaded object goes through all its statements and ends
// up identical to the object ParseDump makes (the tests compare them).
// Support objects do not pull in their own neighbours. The search repeats
// with the names of what each round loads, until no new name appears.
// Then the statements to apply are applied in file order (a constraint
// after its table) by dump.go's loader, and the model is finished as
// ParseDump finishes it.
//
// What is validated: the whole file is split by the scanner, which finds
// unterminated quoted strings, identifiers, dollar quotes and comments;
// text the split leaves out of every statement must be comments and
// semicolons only (a stray parenthesis or a statement without a keyword is
// caught there). The statements parsed are checked as ParseDump checks
// them. Statements the prefilter discards are not parsed: a syntax error
// there, or a statement referring to a table the file never creates, goes
// unnoticed. A candidate that does not parse may have been split wrongly
// (a function body in BEGIN ATOMIC ... END holds semicolons): it is parsed
// together with the pieces that follow it until they make one statement.
// When the split fails or leaves text out, or a candidate does not parse
// even so, ParseDumpFor falls back to ParseDump of the whole file: its
// result, or its error with the exact position, is returned.
//
// Known limit: for a hand-written file (pg_dump names every object
// explicitly) an implicit name (a serial column's sequence, an unnamed
// constraint or index) of a table whose name is a proper prefix of a
// loaded object's name is not seen, as that table's statements need not
// mention the loaded name.

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// namePrefixLen is the length of the name prefix searched for and matched:
// makeObjectName cuts the base name to no fewer than ~23 bytes, shortName
// to 54.
const namePrefixLen = 16

// ParseDumpFor reads from a schema dump the part of the model a change
// needs: the relations (keys "schema.name": tables, views, sequences,
// indexes and constraint names) and types (keys) it names, their
// neighbours, and what those need to be complete (see the top of this
// file). Every object in the model it returns is identical to the one
// ParseDump returns for the whole file; objects the change cannot concern
// are left out. Errors are ParseDump's: "source:line:col: message".
func ParseDumpFor(source, dump string, relations, types []string) (*Schema, error) {
	d, err := splitDump(dump)
	if err != nil {
		// The full parse reports the error with its position (or parses
		// what the scanner could not split).
		return ParseDump(source, dump)
	}
	sel := newSelection(d, relations, types)
	if err := sel.run(); err != nil {
		return ParseDump(source, dump)
	}
	l := &loader{s: New(source), relNames: map[string]bool{}, conNames: map[string]bool{}, functions: map[string]bool{}}
	for _, i := range sel.order() {
		st := sel.parsed[i]
		if !sel.applies(st) {
			continue
		}
		if err := l.statement(st.node); err != nil {
			line, col := lineCol(dump, skipSpace(dump, d.start[i], d.meta))
			return nil, fmt.Errorf("%s:%d:%d: %w", source, line, col, err)
		}
	}
	if err := l.finish(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return l.s, nil
}

// errSplit is a split the scanner got wrong or that left text out.
var errSplit = errors.New("the scanner's split of the dump is not exact")

// dumpText is a dump split into statements.
type dumpText struct {
	// text is the dump with psql meta-command lines blanked (see
	// parseDump): what is split and parsed, position for position the
	// dump.
	text string
	meta []int
	// start and end delimit each statement in text (end excludes the
	// semicolon); leading white space and comments belong to it.
	start, end []int
	// lower is text in ASCII lower case, for case-insensitive search.
	lower string
}

// splitDump splits the dump as parseDump parses it: meta-command lines
// blanked, put back where they turn out to be inside a statement.
func splitDump(sql string) (*dumpText, error) {
	text, meta := blankMetaCommands(sql)
	d := &dumpText{text: text, meta: meta}
	err := d.split()
	if err == nil && len(meta) > 0 {
		if inside := metaInsideStatements(sql, d.spans(), meta); len(inside) > 0 {
			b := []byte(text)
			for _, off := range inside {
				end := strings.IndexByte(sql[off:], '\n')
				if end < 0 {
					end = len(sql) - off
				}
				copy(b[off:off+end], sql[off:off+end])
			}
			d.text, d.meta = string(b), without(meta, inside)
			err = d.split()
		}
	}
	if err != nil && len(meta) > 0 {
		// Blanking may have cut a string literal in two.
		whole := &dumpText{text: sql}
		if whole.split() == nil {
			return whole, nil
		}
	}
	return d, err
}

// split fills start and end from pg_query's scanner-based split. The
// statements it returns are substrings of its input (it slices the Go
// string it was given), so their offsets are exact; the text between
// them must hold semicolons and comments only, or the scanner dropped
// something (a statement without a keyword, text after an unbalanced
// parenthesis).
func (d *dumpText) split() error {
	stmts, err := pg_query.SplitWithScanner(d.text, false)
	if err != nil {
		return err
	}
	d.start, d.end = make([]int, 0, len(stmts)), make([]int, 0, len(stmts))
	prev := 0
	for _, s := range stmts {
		if s == "" {
			return errSplit
		}
		// The statements come back in file order, so each is found after
		// the previous one. Should its text also stand in a comment before
		// it, the next gap check sees the real statement as a non-comment
		// and the caller falls back to the full parse.
		i := strings.Index(d.text[prev:], s)
		if i < 0 {
			return errSplit
		}
		off := prev + i
		if !onlySemicolons(d.text[prev:off]) {
			return errSplit
		}
		d.start, d.end = append(d.start, off), append(d.end, off+len(s))
		prev = off + len(s)
	}
	if !onlySemicolons(d.text[prev:]) {
		return errSplit
	}
	return nil
}

// onlySemicolons reports whether the scanner finds nothing but semicolons
// and comments in gap.
func onlySemicolons(gap string) bool {
	if gap == "" || gap == ";" {
		return true
	}
	res, err := pg_query.Scan(gap)
	if err != nil {
		return false
	}
	for _, tok := range res.Tokens {
		switch tok.Token {
		case pg_query.Token_ASCII_59, pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
		default:
			return false
		}
	}
	return true
}

// spans presents the statements as a parse result carrying only their
// positions, for metaInsideStatements.
func (d *dumpText) spans() *pg_query.ParseResult {
	res := &pg_query.ParseResult{Stmts: make([]*pg_query.RawStmt, len(d.start))}
	for i := range d.start {
		res.Stmts[i] = &pg_query.RawStmt{StmtLocation: int32(d.start[i]), StmtLen: int32(d.end[i] - d.start[i])}
	}
	return res
}

// statementAt returns the statement holding offset off, -1 for none.
func (d *dumpText) statementAt(off int) int {
	i := sort.SearchInts(d.end, off+1)
	if i < len(d.start) && d.start[i] <= off {
		return i
	}
	return -1
}

// find calls fn with every statement whose text contains needle (in the
// ASCII-lower-cased text when fold is set).
func (d *dumpText) find(needle string, fold bool, fn func(stmt int)) {
	hay := d.text
	if fold {
		if d.lower == "" {
			d.lower = asciiLower(d.text)
		}
		hay = d.lower
	}
	for off := 0; off < len(hay); {
		i := strings.Index(hay[off:], needle)
		if i < 0 {
			return
		}
		at := off + i
		if s := d.statementAt(at); s >= 0 {
			fn(s)
			off = d.end[s]
		} else {
			off = at + 1
		}
	}
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// parse parses the statements (indexes into d) in one call; each must be
// one statement.
func (d *dumpText) parse(idx []int) ([]*pg_query.RawStmt, error) {
	var b strings.Builder
	for n, i := range idx {
		if n > 0 {
			b.WriteByte(';')
		}
		b.WriteString(d.text[d.start[i]:d.end[i]])
	}
	tree, err := pg_query.Parse(b.String())
	if err != nil {
		return nil, err
	}
	if len(tree.Stmts) != len(idx) {
		return nil, errSplit
	}
	return tree.Stmts, nil
}

// parseJoined parses the pieces first..last (semicolons between them) as
// one statement.
func (d *dumpText) parseJoined(first, last int) ([]*pg_query.RawStmt, error) {
	tree, err := pg_query.Parse(d.text[d.start[first]:d.end[last]])
	if err != nil {
		return nil, err
	}
	if len(tree.Stmts) != 1 {
		return nil, errSplit
	}
	return tree.Stmts, nil
}

// needle is a search string and how it is searched.
type needle struct {
	text string
	fold bool
}

// needleFor returns what the prefilter searches for a name.
func needleFor(name string) needle {
	p := clipUTF8(name, namePrefixLen)
	for i := 0; i < len(p); i++ {
		if c := p[i]; ('A' <= c && c <= 'Z') || c == '"' {
			return needle{text: strings.ReplaceAll(p, `"`, `""`)}
		}
	}
	return needle{text: p, fold: true}
}

// Subject kinds: what a statement creates or changes.
const (
	subjectNone     = iota // nothing the model holds (or always applied)
	subjectRelation        // a table, view, materialized view or sequence
	subjectType            // an enum or domain
)

// stmtFacts is what one parsed statement says, for choosing what to load.
type stmtFacts struct {
	node *pg_query.Node
	// subject is the key of what the statement creates or changes; kind
	// says which map it is in. always marks statements applied whatever
	// they are about (DROP, ALTER INDEX, CREATE FUNCTION, statements the
	// loader skips): applying them to a model without their objects
	// changes nothing.
	subject string
	kind    int
	always  bool
	// names are the explicit names (keys) of the relations, indexes and
	// constraints the statement creates. (The implicit names PostgreSQL
	// chooses start with the table's name, which a CREATE TABLE lists.)
	names []string
	// parents are the tables a CREATE TABLE inherits from; partition is
	// set for PARTITION OF. attach is the partition ATTACHed.
	parents   []string
	partition bool
	attach    string
	likes     []string
	fks       []fkFact
	// reads are the relations a view's query names.
	reads []string
	// types are the user types of the columns it defines (for a domain,
	// its base type).
	types []string
	// ownedBy is the table owning the sequence (OWNED BY).
	ownedBy string
	// function is the key of the trigger function when written
	// unqualified (the loader qualifies it when the file creates it).
	function string
}

// fkFact is one foreign key: the table holding it and the one referenced.
type fkFact struct {
	table, ref string
	cols       []string
	refCols    []string
}

// factsOf reads what a statement says.
func factsOf(n *pg_query.Node) *stmtFacts {
	f := &stmtFacts{node: n}
	switch st := n.Node.(type) {
	case *pg_query.Node_CreateStmt:
		cs := st.CreateStmt
		f.relation(rangeKey(cs.Relation))
		f.names = append(f.names, f.subject)
		nsp, _ := qualify(cs.Relation)
		for _, in := range cs.InhRelations {
			if rv := in.GetRangeVar(); rv != nil {
				f.parents = append(f.parents, rangeKey(rv))
			}
		}
		f.partition = cs.Partbound != nil
		if cs.OfTypename != nil {
			f.typeOf(cs.OfTypename)
		}
		for _, el := range cs.TableElts {
			switch e := el.Node.(type) {
			case *pg_query.Node_ColumnDef:
				f.column(nsp, e.ColumnDef)
			case *pg_query.Node_Constraint:
				f.constraint(nsp, e.Constraint, "")
			case *pg_query.Node_TableLikeClause:
				f.likes = append(f.likes, rangeKey(e.TableLikeClause.Relation))
			}
		}
	case *pg_query.Node_AlterTableStmt:
		at := st.AlterTableStmt
		if at.Objtype == pg_query.ObjectType_OBJECT_INDEX {
			// ALTER INDEX ... ATTACH PARTITION: the loader notes the
			// index, and forgets it at the end if no table has it.
			f.always = true
			return f
		}
		f.relation(rangeKey(at.Relation))
		nsp, _ := qualify(at.Relation)
		for _, cn := range at.Cmds {
			cmd := cn.GetAlterTableCmd()
			if cmd == nil {
				continue
			}
			switch cmd.Subtype {
			case pg_query.AlterTableType_AT_AddConstraint:
				f.constraint(nsp, cmd.Def.GetConstraint(), "")
			case pg_query.AlterTableType_AT_AddColumn:
				if cd := cmd.Def.GetColumnDef(); cd != nil {
					f.column(nsp, cd)
				}
			case pg_query.AlterTableType_AT_AlterColumnType:
				if cd := cmd.Def.GetColumnDef(); cd != nil && cd.TypeName != nil {
					f.typeOf(cd.TypeName)
				}
			case pg_query.AlterTableType_AT_AttachPartition:
				f.attach = rangeKey(cmd.Def.GetPartitionCmd().GetName())
			case pg_query.AlterTableType_AT_AddIdentity:
				f.constraint(nsp, cmd.Def.GetConstraint(), cmd.Name)
			}
		}
	case *pg_query.Node_IndexStmt:
		ix := st.IndexStmt
		f.relation(rangeKey(ix.Relation))
		if ix.Idxname != "" {
			nsp, _ := qualify(ix.Relation)
			f.names = append(f.names, Key(nsp, ix.Idxname))
		}
	case *pg_query.Node_CreateTrigStmt:
		tr := st.CreateTrigStmt
		f.relation(rangeKey(tr.Relation))
		if fn := strs(tr.Funcname); len(fn) == 1 {
			f.function = Key("public", fn[0])
		}
	case *pg_query.Node_ViewStmt:
		f.view(st.ViewStmt.View, st.ViewStmt.Query)
	case *pg_query.Node_CreateTableAsStmt:
		if st.CreateTableAsStmt.Objtype != pg_query.ObjectType_OBJECT_MATVIEW {
			f.always = true // CREATE TABLE AS: not modelled
			return f
		}
		f.view(st.CreateTableAsStmt.Into.Rel, st.CreateTableAsStmt.Query)
	case *pg_query.Node_CreateEnumStmt:
		f.subject, f.kind = Key(nameList(st.CreateEnumStmt.TypeName)), subjectType
	case *pg_query.Node_AlterEnumStmt:
		f.subject, f.kind = Key(nameList(st.AlterEnumStmt.TypeName)), subjectType
	case *pg_query.Node_CreateDomainStmt:
		f.subject, f.kind = Key(nameList(st.CreateDomainStmt.Domainname)), subjectType
		f.typeOf(st.CreateDomainStmt.TypeName)
	case *pg_query.Node_CreateSeqStmt:
		f.relation(rangeKey(st.CreateSeqStmt.Sequence))
		f.names = append(f.names, f.subject)
		f.ownedBy = ownerTable(st.CreateSeqStmt.Options)
	case *pg_query.Node_AlterSeqStmt:
		f.relation(rangeKey(st.AlterSeqStmt.Sequence))
		f.ownedBy = ownerTable(st.AlterSeqStmt.Options)
	default:
		// DROP (deletes only what exists), CREATE FUNCTION (names a
		// function for triggers), and statements the loader skips.
		f.always = true
	}
	return f
}

func (f *stmtFacts) relation(key string) { f.subject, f.kind = key, subjectRelation }

func (f *stmtFacts) view(rv *pg_query.RangeVar, q *pg_query.Node) {
	f.relation(rangeKey(rv))
	f.names = append(f.names, f.subject)
	seen := map[string]bool{}
	walkMessages(q.ProtoReflect(), func(m protoreflect.Message) {
		// Over-approximated: a CTE's name read in the query counts too.
		if r, ok := m.Interface().(*pg_query.RangeVar); ok && !seen[rangeKey(r)] {
			seen[rangeKey(r)] = true
			f.reads = append(f.reads, rangeKey(r))
		}
	})
}

// column notes a column definition's type and inline constraints.
func (f *stmtFacts) column(nsp string, cd *pg_query.ColumnDef) {
	if cd.TypeName != nil {
		f.typeOf(cd.TypeName)
	}
	for _, cn := range cd.Constraints {
		f.constraint(nsp, cn.GetConstraint(), cd.Colname)
	}
}

// constraint notes a constraint's name and, for a foreign key, the tables
// and columns it links; col is set for a column constraint.
func (f *stmtFacts) constraint(nsp string, c *pg_query.Constraint, col string) {
	if c == nil {
		return
	}
	if c.Conname != "" {
		f.names = append(f.names, Key(nsp, c.Conname))
	}
	if c.Contype == pg_query.ConstrType_CONSTR_IDENTITY {
		// The identity's sequence, when named.
		for _, o := range c.Options {
			if d := o.GetDefElem(); d != nil && d.Defname == "sequence_name" {
				f.names = append(f.names, Key(nameList(d.Arg.GetList().GetItems())))
			}
		}
	}
	if c.Contype != pg_query.ConstrType_CONSTR_FOREIGN || c.Pktable == nil {
		return
	}
	fk := fkFact{table: f.subject, ref: rangeKey(c.Pktable), cols: strs(c.FkAttrs), refCols: strs(c.PkAttrs)}
	if len(fk.cols) == 0 && col != "" {
		fk.cols = []string{col}
	}
	f.fks = append(f.fks, fk)
}

// typeOf notes a user type (not a built-in one, as FormatType tells them).
func (f *stmtFacts) typeOf(tn *pg_query.TypeName) {
	if tn == nil || len(tn.Names) == 0 || tn.PctType {
		return
	}
	nsp, name := nameList(tn.Names)
	if len(tn.Names) == 1 || nsp == "pg_catalog" {
		if _, ok := builtinType(name, nil); ok || catalogTypes[name] || nsp == "pg_catalog" {
			return
		}
	}
	f.types = append(f.types, Key(nsp, name))
}

// ownerTable returns the table of an OWNED BY option, "" for none.
func ownerTable(opts []*pg_query.Node) string {
	for _, o := range opts {
		if d := o.GetDefElem(); d != nil && d.Defname == "owned_by" {
			parts := strs(d.Arg.GetList().GetItems())
			switch len(parts) {
			case 0, 1: // OWNED BY NONE
				return ""
			case 2:
				return Key("public", parts[0])
			default:
				return Key(parts[len(parts)-3], parts[len(parts)-2])
			}
		}
	}
	return ""
}

// walkMessages calls fn for m and every message below it.
func walkMessages(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkMessages(l.Get(i).Message(), fn)
			}
		case fd.Message() != nil && !fd.IsMap():
			walkMessages(v.Message(), fn)
		}
		return true
	})
}

// Levels of loaded relations (lower is closer to the change).
const (
	levelTarget    = 0
	levelNeighbour = 1
	levelSupport   = 2
)

// selection finds the statements to parse and the objects to load.
type selection struct {
	d *dumpText
	// targetRels and targetTypes are the keys the change names.
	targetRels, targetTypes map[string]bool
	// parsed holds the parsed statements by index; absorbed marks the
	// pieces of a statement the scanner split wrongly, parsed with its
	// first piece.
	parsed   map[int]*stmtFacts
	absorbed map[int]bool
	// searched holds the needles already searched.
	searched map[needle]bool
	// The closure over what is parsed: loaded relations with their level,
	// loaded types, functions triggers need, followed columns ("*" for
	// all) per table.
	level    map[string]int
	types    map[string]bool
	funcs    map[string]bool
	followed map[string]map[string]bool
}

func newSelection(d *dumpText, relations, types []string) *selection {
	s := &selection{d: d, targetRels: map[string]bool{}, targetTypes: map[string]bool{},
		parsed: map[int]*stmtFacts{}, absorbed: map[int]bool{}, searched: map[needle]bool{}}
	for _, k := range relations {
		s.targetRels[k] = true
	}
	for _, k := range types {
		s.targetTypes[k] = true
	}
	return s
}

// run searches, parses and closes until no new name turns up.
func (s *selection) run() error {
	cand := map[int]bool{}
	s.d.find(`u&"`, true, func(i int) { cand[i] = true })
	for {
		s.close()
		for _, n := range s.needles() {
			if s.searched[n] || s.subsumed(n) {
				continue
			}
			s.searched[n] = true
			s.d.find(n.text, n.fold, func(i int) {
				if s.parsed[i] == nil && !s.absorbed[i] {
					cand[i] = true
				}
			})
		}
		if len(cand) == 0 {
			return nil
		}
		idx := make([]int, 0, len(cand))
		for i := range cand {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		if err := s.parse(idx); err != nil {
			return err
		}
		cand = map[int]bool{}
	}
}

// subsumed reports whether a needle searched already finds every
// statement n would: one contained in n (case-insensitively if it was
// searched so).
func (s *selection) subsumed(n needle) bool {
	for m := range s.searched {
		if m.fold && strings.Contains(asciiLower(n.text), m.text) || !m.fold && !n.fold && strings.Contains(n.text, m.text) {
			return true
		}
	}
	return false
}

// parse parses the candidate statements, in one call when they all parse.
// When one does not, the scanner may have split it wrongly: a function
// body in BEGIN ATOMIC ... END holds semicolons. Such a statement is
// parsed together with the pieces that follow it, up to maxMerge of them,
// until they make one statement; the pieces it takes in are not parsed
// on their own.
func (s *selection) parse(idx []int) error {
	if raws, err := s.d.parse(idx); err == nil {
		for n, i := range idx {
			s.parsed[i] = factsOf(raws[n].Stmt)
		}
		return nil
	}
	for _, i := range idx {
		if s.absorbed[i] {
			continue
		}
		raws, err := s.d.parse([]int{i})
		last := i
		for err != nil && last+1 < len(s.d.start) && last-i < maxMerge {
			last++
			raws, err = s.d.parseJoined(i, last)
		}
		if err != nil {
			return err
		}
		s.parsed[i] = factsOf(raws[0].Stmt)
		for k := i + 1; k <= last; k++ {
			s.absorbed[k] = true
			delete(s.parsed, k)
		}
	}
	return nil
}

// maxMerge bounds the pieces a wrongly split statement is looked for in.
const maxMerge = 64

// order returns the parsed statements in file order.
func (s *selection) order() []int {
	idx := make([]int, 0, len(s.parsed))
	for i := range s.parsed {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx
}

// applies reports whether the statement is applied to the model.
func (s *selection) applies(f *stmtFacts) bool {
	switch {
	case f.always:
		return true
	case f.kind == subjectRelation:
		_, ok := s.level[f.subject]
		return ok
	case f.kind == subjectType:
		return s.types[f.subject]
	}
	return false
}

// needles returns what to search for: the names of every loaded object and
// target, of the indexes and constraints of loaded tables, of loaded types
// and of the functions loaded triggers call.
func (s *selection) needles() []needle {
	var names []string
	for k := range s.targetRels {
		names = append(names, keyNames(k)...)
	}
	for k := range s.targetTypes {
		names = append(names, keyNames(k)...)
	}
	for k := range s.level {
		names = append(names, keyNames(k)...)
	}
	for k := range s.types {
		names = append(names, keyNames(k)...)
	}
	for k := range s.funcs {
		names = append(names, keyNames(k)...)
	}
	for _, i := range s.order() {
		if f := s.parsed[i]; s.applies(f) {
			for _, k := range f.names {
				names = append(names, keyNames(k)...)
			}
		}
	}
	sort.Strings(names)
	var out []needle
	for i, n := range names {
		if n != "" && (i == 0 || n != names[i-1]) {
			out = append(out, needleFor(n))
		}
	}
	return out
}

// keyNames returns the name part of a key; a key whose schema or name
// holds a dot is ambiguous, and both readings are returned.
func keyNames(k string) []string {
	first, last := strings.Index(k, "."), strings.LastIndex(k, ".")
	if first < 0 {
		return []string{k}
	}
	if first == last {
		return []string{k[first+1:]}
	}
	return []string{k[first+1:], k[last+1:]}
}

// close computes what to load from the statements parsed so far.
func (s *selection) close() {
	s.level, s.types, s.funcs = map[string]int{}, map[string]bool{}, map[string]bool{}
	s.followed = map[string]map[string]bool{}
	changed := false
	set := func(k string, lv int) {
		if k == "" {
			return
		}
		if old, ok := s.level[k]; !ok || lv < old {
			s.level[k] = lv
			changed = true
		}
		if lv == levelTarget {
			s.follow(k, "*", &changed)
		}
	}
	loaded := func(k string) bool { _, ok := s.level[k]; return ok }
	lvl := func(k string) int {
		if lv, ok := s.level[k]; ok {
			return lv
		}
		return levelSupport + 1
	}
	for k := range s.targetRels {
		set(k, levelTarget)
	}
	for k := range s.targetTypes {
		s.types[k] = true
	}
	facts := s.order()
	for changed = true; changed; {
		changed = false
		prefixes := s.prefixes()
		for _, i := range facts {
			f := s.parsed[i]
			// A target naming an index or constraint: its table.
			if f.kind == subjectRelation {
				for _, n := range f.names {
					if s.targetRels[n] && n != f.subject {
						set(f.subject, levelTarget)
					}
				}
			}
			// A partition tree is one unit.
			if f.partition {
				for _, p := range f.parents {
					s.link(f.subject, p, set, lvl, &changed)
				}
			} else if loaded(f.subject) {
				for _, p := range f.parents {
					set(p, levelSupport)
				}
			}
			if f.attach != "" {
				s.link(f.subject, f.attach, set, lvl, &changed)
			}
			if loaded(f.subject) {
				for _, src := range f.likes {
					set(src, levelSupport)
				}
			}
			for _, fk := range f.fks {
				// Referencing a followed column (every column of a
				// level-0 table is) makes a neighbour.
				if s.followFK(fk, &changed) {
					set(fk.table, levelNeighbour)
				}
				if lvl(fk.table) == levelTarget {
					set(fk.ref, levelNeighbour)
				}
				if len(fk.refCols) == 0 && loaded(fk.table) {
					set(fk.ref, levelSupport)
				}
			}
			if f.reads != nil {
				for _, r := range f.reads {
					if lvl(r) <= levelNeighbour {
						set(f.subject, levelNeighbour)
					}
				}
				if loaded(f.subject) {
					for _, r := range f.reads {
						set(r, levelSupport)
					}
				}
			}
			if f.ownedBy != "" && loaded(f.ownedBy) {
				set(f.subject, levelSupport)
			}
			if f.function != "" && loaded(f.subject) {
				s.funcs[f.function] = true
			}
			// Column types: of level-0 and level-1 tables, of loaded
			// domains; a table with a column of a target type shows the
			// type exists.
			if (f.kind == subjectRelation && lvl(f.subject) <= levelNeighbour) || (f.kind == subjectType && s.types[f.subject]) {
				for _, t := range f.types {
					if !s.types[t] {
						s.types[t] = true
						changed = true
					}
				}
			}
			if f.kind == subjectRelation {
				for _, t := range f.types {
					if s.targetTypes[t] {
						set(f.subject, levelSupport)
					}
				}
				if s.holds(f, prefixes) {
					set(f.subject, levelSupport)
				}
			}
		}
		// A type the change names may be a table's row type.
		for k := range s.targetTypes {
			if s.definesRelation(k) {
				set(k, levelSupport)
			}
		}
	}
}

// link makes two tables of a partition tree share the lower level and the
// followed columns.
func (s *selection) link(a, b string, set func(string, int), lvl func(string) int, changed *bool) {
	if lv := min(lvl(a), lvl(b)); lv <= levelSupport {
		set(a, lv)
		set(b, lv)
	}
	for col := range s.followed[a] {
		s.follow(b, col, changed)
	}
	for col := range s.followed[b] {
		s.follow(a, col, changed)
	}
}

// follow marks a column (or "*": all) of a table as one whose type change
// the planner carries to the columns referencing it.
func (s *selection) follow(table, col string, changed *bool) {
	m := s.followed[table]
	if m == nil {
		m = map[string]bool{}
		s.followed[table] = m
	}
	if !m[col] {
		m[col] = true
		*changed = true
	}
}

// followFK follows a foreign key from a followed referenced column to the
// referencing column; it reports whether the key references one.
func (s *selection) followFK(fk fkFact, changed *bool) bool {
	ref := s.followed[fk.ref]
	if len(ref) == 0 {
		return false
	}
	hit := false
	for i, c := range fk.cols {
		if ref["*"] || len(fk.refCols) == 0 || (i < len(fk.refCols) && ref[fk.refCols[i]]) {
			s.follow(fk.table, c, changed)
			hit = true
		}
	}
	return hit
}

// prefixes returns the name prefixes an object's name must not start with
// to be left out: those of the names needles() searches.
func (s *selection) prefixes() map[string]bool {
	out := map[string]bool{}
	for _, n := range s.needleNames() {
		out[clipUTF8(n, namePrefixLen)] = true
	}
	return out
}

// needleNames returns the relation names loaded or named: prefixes() of
// these decide which other names count as possibly colliding.
func (s *selection) needleNames() []string {
	var names []string
	for k := range s.targetRels {
		names = append(names, keyNames(k)...)
	}
	for k := range s.level {
		names = append(names, keyNames(k)...)
	}
	for _, f := range s.parsed {
		if f.kind == subjectRelation {
			if _, ok := s.level[f.subject]; ok {
				for _, k := range f.names {
					names = append(names, keyNames(k)...)
				}
			}
		}
	}
	return names
}

// holds reports whether the statement creates a name that starts with one
// of the prefixes.
func (s *selection) holds(f *stmtFacts, prefixes map[string]bool) bool {
	for _, k := range f.names {
		for _, n := range keyNames(k) {
			for j := 1; j <= len(n) && j <= namePrefixLen; j++ {
				if prefixes[n[:j]] {
					return true
				}
			}
		}
	}
	return false
}

// definesRelation reports whether a parsed statement creates relation k.
func (s *selection) definesRelation(k string) bool {
	for _, f := range s.parsed {
		if f.kind == subjectRelation && f.subject == k && len(f.names) > 0 && f.names[0] == k {
			return true
		}
	}
	return false
}
