package planner

import (
	"fmt"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// changeType plans ALTER TABLE t ALTER COLUMN c TYPE x [USING e].
//
// The naive statement rewrites the whole table, and rebuilds every index on
// it, under ACCESS EXCLUSIVE: no read or write of the table until it ends.
// PostgreSQL also refuses it outright while a view reads the column.
//
// A binary-coercible change (varchar(n) widened or to text, numeric
// precision raised at the same scale, timestamp precision raised, cidr to
// inet, ...; see binaryCoercible) rewrites nothing: the plan is the naive
// ALTER as one step, wrapped in one transaction with the drop and
// re-creation of the views that read the column.
//
// Any other change goes through a copy column:
//
//	expand   ADD COLUMN c__cutover_new x (instant); a trigger computing it
//	         from c (with the USING expression) on every INSERT and every
//	         UPDATE that sets c or a column USING reads (syncTriggerSQL):
//	         the backfill, which sets only the new column, does not call it;
//	migrate  batched backfill of the existing rows; the NOT NULL proof
//	         (CHECK NOT VALID + VALIDATE) when c is NOT NULL; copies of
//	         every index on c built CONCURRENTLY on the new column (unique
//	         and primary-key indexes included) and of its CHECK constraints
//	         (NOT VALID + VALIDATE), under temporary names; the application
//	         release (values written must fit the new type);
//	contract one short transaction: drop the trigger, the dependent views
//	         and the foreign keys involving c; hand the sequence, default
//	         or identity over to the new column; SET NOT NULL (no scan);
//	         DROP COLUMN c; RENAME the new column to c; give the copied
//	         indexes and constraints their original names (PRIMARY KEY /
//	         UNIQUE ... USING INDEX); create the views again; re-add the
//	         foreign keys NOT VALID; then VALIDATE them, one step each.
//
// There is no separate pass checking that every existing value converts:
// the backfill evaluates the conversion on every row anyway, so a value
// that does not convert stops the backfill at its batch with PostgreSQL's
// own error naming the value (the batch writes nothing, its checkpoint
// stays where it was); the backfill step's CAST_MAY_FAIL hazard tells the
// operator to fix the rows and apply again, which resumes from the
// checkpoint. Because the trigger fires only on writes of its source
// columns, such a row does not break the application's updates of other
// columns meanwhile; an INSERT, or an UPDATE setting c to a value that does
// not convert, fails from the expand phase on.
//
// The column ends up with its name, type, nullability, default, indexes,
// constraints and views as the naive statement leaves them; only its
// position changes (it becomes the last column).
//
// The type of a column that foreign keys reference (a primary key, say)
// also changes the referencing columns that had the same type: each is a
// column change of its own, planned the same way in the same phases, and
// the contract swaps them all in one transaction, so no foreign key is
// ever missing in between.
type changeType struct {
	si    stmtInfo
	table relName
	col   string

	typeName  *pg_query.TypeName
	newType   colType
	typeSQL   string // new type with its COLLATE clause
	canonType string // new type in the schema model's form
	collate   bool
	using     *pg_query.Node // nil without USING
	// castUsing is a USING that only casts the column to the new type,
	// set aside as no USING; validate puts it back when the cast is not an
	// assignment cast (text to integer: USING col::integer is needed).
	castUsing *pg_query.Node

	// From the schema (nil without one).
	s    *schema.Schema
	safe bool
	// changes holds the column itself first, then the referencing
	// columns that follow it.
	changes []*columnChange
}

// columnChange is the type change of one column.
type columnChange struct {
	table  relName
	tab    *schema.Table  // nil without a schema
	column *schema.Column // nil without a schema
	col    string
	// using computes the new value from the row; nil means the column
	// itself (an assignment cast, as ALTER TYPE without USING does).
	using   *pg_query.Node
	oldType colType
	// follows names the column whose change this one follows (a foreign
	// key's referenced column), "" for the column of the statement.
	follows string

	// Names chosen while planning.
	newCol string
}

func newChangeType(si stmtInfo, t relName, col string, def *pg_query.ColumnDef) (operation, error) {
	if def == nil || def.TypeName == nil {
		return nil, si.unsupported("ALTER COLUMN TYPE without a type")
	}
	typ, err := typeOf(def.TypeName)
	if err != nil {
		return nil, si.unsupported(err.Error())
	}
	op := &changeType{si: si, table: t, col: col, typeName: def.TypeName, newType: typ,
		canonType: schema.FormatType(def.TypeName), collate: def.CollClause != nil, using: def.RawDefault}
	if op.typeSQL, err = columnTypeSQL(def.TypeName, def.CollClause); err != nil {
		return nil, si.unsupported("cannot re-emit the type: " + err.Error())
	}
	if op.using != nil {
		if containsSubquery(op.using) {
			return nil, si.invalid("a USING expression cannot contain a subquery (PostgreSQL refuses it)")
		}
		if op.plainUsing() {
			op.castUsing, op.using = op.using, nil
		}
	}
	op.changes = []*columnChange{{table: t, col: col, using: op.using}}
	return op, nil
}

// plainUsing reports whether USING is just the column, or the column cast
// to the new type: the same as no USING.
func (op *changeType) plainUsing() bool {
	e := op.using
	if tc := e.GetTypeCast(); tc != nil {
		if t, err := typeOf(tc.TypeName); err != nil || !t.equal(op.newType) {
			return false
		}
		e = tc.Arg
	}
	cr := e.GetColumnRef()
	if cr == nil || len(cr.Fields) == 0 {
		return false
	}
	return cr.Fields[len(cr.Fields)-1].GetString_().GetSval() == op.col
}

func containsSubquery(n *pg_query.Node) bool {
	found := false
	walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if _, ok := m.Interface().(*pg_query.SubLink); ok {
			found = true
		}
	})
	return found
}

func (op *changeType) validate(s *schema.Schema) error {
	op.s = s
	op.changes = op.changes[:1] // validate may run more than once
	main := op.changes[0]
	if err := op.validateColumn(s, main); err != nil {
		return err
	}
	if !typeKnown(s, op.newType) {
		return op.si.invalid(fmt.Sprintf("type %s does not exist in the schema (not a built-in type, nor an enum, domain or type any column already has)", op.newType.label()))
	}
	if main.oldType.equal(op.newType) && !op.collate && op.using == nil {
		return op.si.invalid(fmt.Sprintf("column %s of %s already has type %s", op.col, op.table, main.column.Type))
	}
	if op.using == nil && op.castUsing != nil && needsUsing(s, main.oldType, op.newType) {
		op.using, main.using = op.castUsing, op.castUsing
	}
	if op.using == nil && needsUsing(s, main.oldType, op.newType) {
		return op.si.invalid(fmt.Sprintf("column %s of type %s cannot be cast automatically to type %s (PostgreSQL refuses it too): add USING %s::%s, or an expression computing the new value",
			op.col, main.column.Type, op.canonType, ident(op.col), op.typeSQL))
	}
	for _, c := range columnRefNames(op.using) {
		if main.tab.Column(c) == nil {
			return op.si.invalid(fmt.Sprintf("the USING expression refers to column %s, which does not exist in table %s", c, op.table))
		}
	}
	op.safe = binaryCoercible(main.oldType, op.newType) && op.using == nil && !op.collate
	// Columns referencing this one through foreign keys with the same type
	// follow it, recursively.
	seen := map[string]bool{main.table.key() + "." + main.col: true}
	for i := 0; i < len(op.changes); i++ {
		cc := op.changes[i]
		for _, f := range followers(s, cc) {
			k := f.table.key() + "." + f.col
			if seen[k] {
				continue
			}
			seen[k] = true
			if err := op.validateColumn(s, f); err != nil {
				return err
			}
			op.changes = append(op.changes, f)
		}
	}
	if op.safe {
		return nil
	}
	for _, cc := range op.changes {
		if err := op.validateCopy(s, cc); err != nil {
			return err
		}
	}
	return nil
}

// validateColumn checks one column change against the schema and fills it.
func (op *changeType) validateColumn(s *schema.Schema, cc *columnChange) error {
	tab, err := requireTable(op.si, s, cc.table)
	if err != nil {
		return err
	}
	col, err := requireColumn(op.si, tab, cc.col)
	if err != nil {
		return err
	}
	cc.tab, cc.column = tab, col
	if cc.oldType, err = typeOfString(col.Type); err != nil {
		return fmt.Errorf("planner: column %s.%s: %w", cc.table, cc.col, err)
	}
	if col.Generated != "" {
		return op.si.unsupported(fmt.Sprintf("%s.%s is a generated column: change its expression and type by dropping and re-adding it", cc.table, cc.col))
	}
	for _, other := range tab.Columns {
		if other.Generated == "" {
			continue
		}
		if uses, err := usesColumn("SELECT "+other.Generated, cc.col); err == nil && uses {
			return op.si.invalid(fmt.Sprintf("generated column %s of %s is computed from %s: PostgreSQL refuses to change the type of a column a generated column uses; drop the generated column first", other.Name, cc.table, cc.col))
		}
	}
	if tab.PartitionOf != "" {
		if parent := s.Tables[tab.PartitionOf]; parent != nil && parent.Column(cc.col) != nil {
			return op.si.invalid(fmt.Sprintf("column %s of partition %s is inherited from %s: change its type on %s", cc.col, cc.table, parent.Key(), parent.Key()))
		}
	}
	if tab.Partitioned {
		if uses, err := partitionKeyUses(tab.PartitionKey, cc.col); err != nil {
			return fmt.Errorf("planner: partition key of %s: %w", cc.table, err)
		} else if uses {
			return op.si.invalid(fmt.Sprintf("column %s is in the partition key of %s: PostgreSQL refuses to change its type", cc.col, cc.table))
		}
	}
	return nil
}

// validateCopy checks what the copy-column sequence cannot carry over.
func (op *changeType) validateCopy(s *schema.Schema, cc *columnChange) error {
	cc.newCol = shortName(cc.col, "_cutover_new")
	if cc.tab.Column(cc.newCol) != nil {
		return op.si.invalid(fmt.Sprintf("table %s already has a column %s, left by an interrupted plan? Drop it (or finish that plan) first", cc.table, cc.newCol))
	}
	for _, t := range withPartitions(s, cc.tab) {
		for _, con := range t.Constraints {
			if con.Type == schema.Exclusion && (containsString(con.Columns, cc.col) || constraintUses(con, cc.col)) {
				return op.si.unsupported(fmt.Sprintf("exclusion constraint %s of %s uses %s: it cannot be rebuilt without blocking writes; change the type in a maintenance window", con.Name, t.Key(), cc.col))
			}
			if t.Partitioned && (con.Type == schema.PrimaryKey || con.Type == schema.Unique) && containsString(con.Columns, cc.col) {
				return op.si.unsupported(fmt.Sprintf("%s %s of the partitioned table %s uses %s: cutover cannot yet rebuild a partitioned key on a new column online", con.Type, con.Name, t.Key(), cc.col))
			}
		}
	}
	return nil
}

// followers returns the column changes that follow cc: the referencing
// columns of the foreign keys that reference cc's column and have its
// (old) type. A referencing column of a partition is changed on the root
// of its partition tree, where it is declared.
func followers(s *schema.Schema, cc *columnChange) []*columnChange {
	var out []*columnChange
	for _, fk := range s.ReferencingForeignKeys(cc.table.key()) {
		i := indexOf(fk.Constraint.RefColumns, cc.col)
		if i < 0 || i >= len(fk.Constraint.Columns) {
			continue
		}
		col := fk.Constraint.Columns[i]
		tab := fk.Table
		for tab.PartitionOf != "" {
			parent := s.Tables[tab.PartitionOf]
			if parent == nil || parent.Column(col) == nil {
				break
			}
			tab = parent
		}
		c := tab.Column(col)
		if c == nil || c.Type != cc.column.Type {
			continue
		}
		out = append(out, &columnChange{table: tableRel(tab), col: col, follows: cc.table.String() + "." + cc.col})
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// naive: a binary-coercible change only touches the catalog; any other
// rewrites the table and its indexes under ACCESS EXCLUSIVE.
func (op *changeType) naive(ctx *naiveContext) asWritten {
	switch {
	case ctx.isNew(op.table):
		return asWritten{}
	case op.safe:
		return safeLock(plans.LockAccessExclusive, op.table)
	}
	a := asWritten{rule: RuleChangeType, lock: plans.LockAccessExclusive, table: op.table, held: heldRewrite, impact: plans.ImpactRewrite,
		do: fmt.Sprintf("add a %s column, sync it with a trigger, backfill it in batches, then swap in one short transaction (`cutover plan`)", op.typeSQL)}
	if op.s == nil {
		a.why = "without a schema cutover cannot tell whether this type change is binary-coercible (only those rewrite nothing); check with --schema or --db to know"
	}
	return a
}

func (op *changeType) plan(b *builder) error {
	for _, cc := range op.changes {
		if err := b.requireSettled(op.si, cc.table, "change the type of", cc.col); err != nil {
			return err
		}
	}
	if b.isNew(op.table) && len(op.changes) == 1 {
		return op.planNew(b)
	}
	for _, cc := range op.changes {
		b.touch(cc.table)
	}
	if op.s == nil {
		op.changes[0].newCol = shortName(op.col, "_cutover_new")
		b.assume("%s.%s is nullable and has no default, and no index, constraint, foreign key, trigger or view uses it: without a schema the plan cannot carry them over to the new column (the contract step's DROP COLUMN would drop indexes and constraints, and fails on views). Plan with --schema or --db to have them rebuilt.", op.table, op.col)
		b.assume("The type change of %s.%s is not binary-coercible, so it goes through a new column (a schema would tell when a single ALTER is enough).", op.table, op.col)
	}
	if op.safe {
		return op.planSafe(b)
	}
	old := op.changes[0].oldType
	if op.s != nil && (old.builtin("timestamp") && op.newType.builtin("timestamptz") || old.builtin("timestamptz") && op.newType.builtin("timestamp")) {
		b.warn("Converting between timestamp and timestamp with time zone rewrites nothing only when the session TimeZone is UTC, which a plan cannot promise, so it goes through a new column. The conversion reads values in the TimeZone of the session that writes them: make sure the application and the session running the backfill use the same TimeZone, or write USING %s AT TIME ZONE 'UTC' to make it explicit.", ident(op.col))
	}
	if err := op.planFull(b); err != nil {
		return err
	}
	// Until the swap, the column of that name is the old one: later
	// statements on it act after the swap (multistatement.go).
	for _, cc := range op.changes {
		b.swap(cc.table, cc.col, "changed to type "+op.canonType+" through a copy column")
	}
	return nil
}

// planNew changes the type of a column of a table created earlier in the
// input as written, in one step: there is no row to rewrite.
func (op *changeType) planNew(b *builder) error {
	cc := op.changes[0]
	t, c := op.table.quoted(), ident(op.col)
	alter := fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s", t, c, op.typeSQL)
	if op.using != nil {
		u, err := deparseExpr(op.using)
		if err != nil {
			return fmt.Errorf("planner: USING expression: %w", err)
		}
		alter += " USING " + u
	}
	views := viewsUsingColumns(op.s, []schema.ColumnRef{{Relation: op.table.key(), Column: op.col}})
	sql, err := aroundViews(views, []string{alter})
	if err != nil {
		return fmt.Errorf("planner: %w", err)
	}
	step := plans.Step{
		ID:      "alter-type-" + op.col,
		Summary: fmt.Sprintf("Change %s to %s", op.col, op.typeSQL),
		SQL:     strings.Join(sql, ";\n"),
		Lock:    plans.LockAccessExclusive,
		Hazards: []plans.Hazard{aeHazard("ALTER COLUMN TYPE (on the new table)")},
	}
	if cc.column != nil {
		back, err := aroundViews(views, []string{fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s USING %s::%s", t, c, cc.column.Type, c, cc.column.Type)})
		if err != nil {
			return fmt.Errorf("planner: %w", err)
		}
		step.Rollback = strings.Join(back, ";\n")
	} else {
		irreversible(&step, "planned without a schema, so the column's previous type is unknown; the rollback of the CREATE TABLE drops the table anyway")
	}
	b.newTableStep(op.table, step)
	return nil
}

// planSafe: one step, the ALTER wrapped in the views' drop and re-creation.
func (op *changeType) planSafe(b *builder) error {
	var alters, reverse []string
	var refs []schema.ColumnRef
	var others []string
	for _, cc := range op.changes {
		alters = append(alters, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s", cc.table.quoted(), ident(cc.col), op.typeSQL))
		reverse = append(reverse, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s", cc.table.quoted(), ident(cc.col), cc.column.Type))
		refs = append(refs, schema.ColumnRef{Relation: cc.table.key(), Column: cc.col})
		if cc.follows != "" {
			others = append(others, cc.table.String()+"."+cc.col)
		}
	}
	views := viewsUsingColumns(op.s, refs)
	sql, err := aroundViews(views, alters)
	if err != nil {
		return fmt.Errorf("planner: %w", err)
	}
	rollback, err := aroundViews(views, reverse)
	if err != nil {
		return fmt.Errorf("planner: %w", err)
	}
	summary := fmt.Sprintf("Change %s to %s: binary-coercible, so only the catalog changes (no rewrite)", op.col, op.typeSQL)
	if len(views) > 0 {
		summary += fmt.Sprintf("; the view(s) %s are dropped and created again around it in the same transaction", viewKeys(views))
	}
	hazards := []plans.Hazard{aeHazard("ALTER COLUMN TYPE")}
	hazards = append(hazards, viewHazards(views)...)
	// The way back is not the way there: narrowing again rewrites.
	if old := op.changes[0].oldType; !binaryCoercible(op.newType, old) {
		back := op.changes[0].column.Type
		hazards = append(hazards, plans.Hazard{Type: plans.HazardTableRewrite,
			Message: fmt.Sprintf("rollback: changing %s back to %s is not binary-coercible: it rewrites the whole table and rebuilds its indexes under ACCESS EXCLUSIVE (no read or write meanwhile); prefer planning the reverse change with cutover", op.col, back)})
		if !conversionCannotFail(op.newType, old) {
			hazards = append(hazards, plans.Hazard{Type: plans.HazardCastFailure,
				Message: fmt.Sprintf("rollback: it fails if a value written since this step does not fit %s", back)})
		}
	}
	if len(others) > 0 {
		summary += fmt.Sprintf("; the referencing column(s) %s change with it", strings.Join(others, ", "))
		hazards = append(hazards, plans.Hazard{Type: plans.HazardAccessExclusive,
			Message: "also takes ACCESS EXCLUSIVE on the tables of " + strings.Join(others, ", ")})
	}
	b.add(stageExpand, plans.Step{
		ID:            "alter-type-" + op.col,
		Summary:       summary,
		SQL:           strings.Join(sql, ";\n"),
		Rollback:      strings.Join(rollback, ";\n"),
		Lock:          plans.LockAccessExclusive,
		Table:         op.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards:       hazards,
	})
	warnRecreatedViews(b, views)
	return nil
}

// Names of the objects of one column change.

func (cc *columnChange) triggerName() string { return shortName("cutover_type", cc.col) }

func (cc *columnChange) syncFunction() relName {
	return cc.table.sibling(shortName("cutover_type", cc.table.Name, cc.col))
}

// source is the SQL computing the new value from the row (unqualified
// column references, for the backfill's UPDATE).
func (cc *columnChange) source() (string, error) {
	if cc.using == nil {
		return ident(cc.col), nil
	}
	return deparseExpr(cc.using)
}

// sourceOver is the same expression over a row variable (NEW in the
// trigger).
func (cc *columnChange) sourceOver(row string) (string, error) {
	e := cc.using
	if e == nil {
		e = &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{
			Fields: []*pg_query.Node{{Node: &pg_query.Node_String_{String_: &pg_query.String{Sval: cc.col}}}}}}}
	}
	e = proto.Clone(e).(*pg_query.Node)
	walk(e.ProtoReflect(), func(m protoreflect.Message) {
		if cr, ok := m.Interface().(*pg_query.ColumnRef); ok && len(cr.Fields) > 0 {
			last := cr.Fields[len(cr.Fields)-1]
			cr.Fields = []*pg_query.Node{{Node: &pg_query.Node_String_{String_: &pg_query.String{Sval: row}}}, last}
		}
	})
	return deparseExpr(e)
}

// mayFail reports whether some existing value may fail to convert.
func (op *changeType) mayFail(cc *columnChange) bool {
	if cc.column == nil || cc.using != nil {
		return true
	}
	return !conversionCannotFail(cc.oldType, op.newType)
}

// planFull plans the copy-column sequence for every column change.
func (op *changeType) planFull(b *builder) error {
	sw := &swap{op: op}
	for _, cc := range op.changes {
		if err := op.expandColumn(b, cc); err != nil {
			return err
		}
	}
	for _, cc := range op.changes {
		if err := op.migrateColumn(b, cc, sw); err != nil {
			return err
		}
	}
	return sw.plan(b)
}

// expandColumn adds the new column and its sync trigger, and registers
// the backfill.
func (op *changeType) expandColumn(b *builder, cc *columnChange) error {
	t, n := cc.table.quoted(), ident(cc.newCol)
	b.add(stageExpand, plans.Step{
		ID:            "add-column-" + cc.newCol,
		Summary:       fmt.Sprintf("Add %s %s next to %s (nullable, no default: instant)", cc.newCol, op.typeSQL, cc.col),
		SQL:           fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", t, n, op.typeSQL),
		Rollback:      fmt.Sprintf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", t, n),
		Lock:          plans.LockAccessExclusive,
		Table:         cc.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards:       []plans.Hazard{aeHazard("ADD COLUMN")},
	})
	fwd, err := cc.sourceOver("new")
	if err != nil {
		return fmt.Errorf("planner: USING expression: %w", err)
	}
	pair := syncPair{from: cc.col, to: cc.newCol, forward: fwd, sources: cc.sources(), wholeRow: usesWholeRow(cc.using)}
	fnSQL := syncFunctionSQL(cc.syncFunction().quoted(), []syncPair{pair})
	if strings.Count(fnSQL, "$cutover$") != 2 {
		return op.si.unsupported("the USING expression contains the text $cutover$, which cutover uses to quote function bodies")
	}
	trg := ident(cc.triggerName())
	hazards := []plans.Hazard{
		{Type: plans.HazardBlocksWrites, Message: "CREATE TRIGGER takes SHARE ROW EXCLUSIVE for an instant; writes queue behind it, so it runs with a short lock_timeout"},
		{Type: plans.HazardCastFailure, Message: fmt.Sprintf("from now on, an INSERT, or an UPDATE that sets %s, fails when %s does not convert to %s; updates of other columns are not affected", strings.Join(pair.sources, " or "), cc.col, op.typeSQL)},
	}
	summary := fmt.Sprintf("Compute %s from %s on every INSERT and on every UPDATE that sets %s", cc.newCol, cc.col, strings.Join(pair.sources, " or "))
	if pair.wholeRow {
		hazards[1].Message = fmt.Sprintf("from now on, a write fails when the row's %s does not convert to %s", cc.col, op.typeSQL)
		summary = fmt.Sprintf("Compute %s from %s on every INSERT and UPDATE that leaves it stale", cc.newCol, cc.col)
	}
	b.add(stageExpand, plans.Step{
		ID:            "sync-trigger-" + cc.newCol,
		Summary:       summary,
		SQL:           fnSQL + ";\n" + syncTriggerSQL(cc.triggerName(), cc.table, cc.syncFunction().quoted(), []syncPair{pair}),
		Rollback:      fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s;\nDROP FUNCTION IF EXISTS %s()", trg, t, cc.syncFunction().quoted()),
		Lock:          plans.LockShareRowExclusive,
		Table:         cc.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards:       hazards,
	})
	if cc.tab != nil {
		var later []string
		for _, tr := range cc.tab.Triggers {
			if tr.Timing == "BEFORE" && tr.Name > cc.triggerName() && (tr.FiresOn("INSERT") || tr.FiresOn("UPDATE")) {
				later = append(later, tr.Name)
			}
		}
		if len(later) > 0 {
			b.warn("BEFORE trigger(s) %s of %s fire after cutover's trigger %s (triggers fire in name order): if one changes %s, the new column misses that change. Check them before running the plan.", strings.Join(later, ", "), cc.table, cc.triggerName(), cc.col)
		}
		var earlier []string
		for _, tr := range cc.tab.Triggers {
			if !pair.wholeRow && tr.Timing == "BEFORE" && tr.Name < cc.triggerName() && tr.FiresOn("UPDATE") {
				earlier = append(earlier, tr.Name)
			}
		}
		if len(earlier) > 0 {
			b.warn("BEFORE UPDATE trigger(s) %s of %s may fire on an UPDATE that does not set %s, where cutover's trigger %s does not fire: if one changes %s, the new column misses that change. Check them before running the plan.", strings.Join(earlier, ", "), cc.table, strings.Join(pair.sources, ", "), cc.triggerName(), cc.col)
		}
	}
	src, err := cc.source()
	if err != nil {
		return fmt.Errorf("planner: USING expression: %w", err)
	}
	b.backfill(cc.table, fmt.Sprintf("%s = %s", ident(cc.newCol), src),
		fmt.Sprintf("%s IS NULL AND (%s) IS NOT NULL", ident(cc.newCol), src),
		fmt.Sprintf("%s from %s", cc.newCol, cc.col))
	if op.mayFail(cc) {
		b.backfillHazard(cc.table, plans.Hazard{Type: plans.HazardCastFailure,
			Message: fmt.Sprintf("a row whose %s does not convert to %s stops the backfill at its batch with PostgreSQL's own error, which names the value (a data exception, SQLSTATE class 22, or a domain's check); the batch writes nothing and the rows before it stay done. Fix those rows (UPDATE them to values that convert), then apply again: the backfill resumes from its checkpoint. To change the USING expression instead, roll back the expand phase and plan again.", cc.col, op.typeSQL)})
	}
	return nil
}

// sources returns the columns the new value is computed from: the column
// itself and those the USING expression reads.
func (cc *columnChange) sources() []string {
	out := []string{cc.col}
	for _, c := range columnRefNames(cc.using) {
		if !containsString(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// usesWholeRow reports whether the expression reads the whole row (t.*).
func usesWholeRow(n *pg_query.Node) bool {
	found := false
	if n == nil {
		return false
	}
	walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if cr, ok := m.Interface().(*pg_query.ColumnRef); ok && len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			found = true
		}
	})
	return found
}

// migrateColumn adds, after the backfill, the NOT NULL proof and the
// copies of the indexes and CHECK constraints; it records in sw what the
// contract must rename.
func (op *changeType) migrateColumn(b *builder, cc *columnChange, sw *swap) error {
	if cc.column == nil {
		return nil
	}
	if cc.column.NotNull {
		cc.notNullCheck(b, sw)
	}
	for _, tab := range withPartitions(op.s, cc.tab) {
		rel := tableRel(tab)
		for _, ix := range tab.Indexes {
			uses, err := usesColumn(ix.Definition, cc.col)
			if err != nil {
				return fmt.Errorf("planner: index %s: %w", ix.Name, err)
			}
			if !uses {
				continue
			}
			tmp := b.chooseName(relationName, rel.Schema, shortName(ix.Name, "cutover_new"), "", "")
			var con *schema.Constraint
			if ix.Constraint != "" {
				con = tab.Constraint(ix.Constraint)
			}
			sw.indexes = append(sw.indexes, indexCopy{table: rel, orig: ix.Name, tmp: tmp, con: con})
			if tab.Partitioned {
				tree, err := parseOne(ix.Definition)
				if err != nil {
					return fmt.Errorf("planner: index %s: %w", ix.Name, err)
				}
				st := tree.Stmts[0].Stmt.GetIndexStmt()
				renameColumnRefs(st.ProtoReflect(), cc.col, cc.newCol)
				st.Idxname, st.Primary, st.Isconstraint = tmp, false, false
				if err := b.buildIndex(stageAfterBackfill, rel, tab, st, "copy of "+ix.Name+" on "+cc.newCol); err != nil {
					return err
				}
				b.warn("Index %s of the partitioned table %s is rebuilt on the new column partition by partition; the partitions' indexes get new names.", ix.Name, rel)
				continue
			}
			sql, err := copyIndexOnColumn(ix.Definition, tmp, cc.col, cc.newCol)
			if err != nil {
				return fmt.Errorf("planner: copy index %s: %w", ix.Name, err)
			}
			b.add(stageAfterBackfill, plans.Step{
				ID:            "index-" + tmp,
				Summary:       fmt.Sprintf("Build a copy of index %s on %s concurrently, as %s (renamed back at the swap)", ix.Name, cc.newCol, tmp),
				SQL:           sql,
				Rollback:      "DROP INDEX CONCURRENTLY IF EXISTS " + rel.sibling(tmp).quoted(),
				Lock:          plans.LockShareUpdateExclusive,
				Table:         rel.String(),
				Transactional: false,
				Rewrite:       plans.ImpactScan,
				Gate:          indexValidGate(rel.sibling(tmp)),
				Hazards: []plans.Hazard{{Type: plans.HazardIndexBuild,
					Message: "builds an index concurrently: reads and writes go on, but it scans the table twice and uses I/O"}},
			})
		}
		for _, con := range tab.Constraints {
			if con.Type != schema.Check || !(containsString(con.Columns, cc.col) || constraintUses(con, cc.col)) {
				continue
			}
			if err := cc.copyCheck(b, sw, rel, con); err != nil {
				return err
			}
		}
	}
	return nil
}

// notNullCheck proves the new column NOT NULL before the swap.
func (cc *columnChange) notNullCheck(b *builder, sw *swap) {
	check := b.chooseName(constraintName, cc.table.Schema, notNullCheckName(cc.table, cc.newCol), "", "")
	add, validate := notNullCheckSteps(cc.table, cc.newCol, check)
	b.add(stageAfterBackfill, add)
	b.add(stageAfterBackfill, validate)
	sw.notNull = append(sw.notNull, notNullSwap{cc: cc, check: check})
}

// copyCheck adds a copy of a CHECK constraint on the new column.
func (cc *columnChange) copyCheck(b *builder, sw *swap, rel relName, con *schema.Constraint) error {
	tmp := b.chooseName(constraintName, rel.Schema, shortName(con.Name, "cutover_new"), "", "")
	tree, err := parseOne("ALTER TABLE x ADD CONSTRAINT n " + con.Definition)
	if err != nil {
		return fmt.Errorf("planner: constraint %s: %w", con.Name, err)
	}
	c := tree.Stmts[0].Stmt.GetAlterTableStmt().Cmds[0].GetAlterTableCmd().Def.GetConstraint()
	renameColumnRefs(c.ProtoReflect(), cc.col, cc.newCol)
	c.Conname, c.SkipValidation, c.InitiallyValid = tmp, true, false
	sql, err := addConstraintSQL(rel, c)
	if err != nil {
		return fmt.Errorf("planner: constraint %s: %w", con.Name, err)
	}
	b.add(stageAfterBackfill, plans.Step{
		ID:            "check-" + tmp,
		Summary:       fmt.Sprintf("Add a copy of CHECK constraint %s on %s, NOT VALID (renamed back at the swap)", con.Name, cc.newCol),
		SQL:           sql,
		Rollback:      dropConstraintSQL(rel, tmp),
		Lock:          plans.LockAccessExclusive,
		Table:         rel.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards:       []plans.Hazard{aeHazard("ADD CONSTRAINT ... NOT VALID")},
	})
	if con.Valid {
		b.add(stageAfterBackfill, plans.Step{
			ID:            "validate-" + tmp,
			Summary:       fmt.Sprintf("Validate the copy of %s: scans the table while reads and writes go on", con.Name),
			SQL:           validateConstraintSQL(rel, tmp),
			Rollback:      noUndo("validation changes no data"),
			Lock:          plans.LockShareUpdateExclusive,
			Table:         rel.String(),
			Transactional: true,
			Rewrite:       plans.ImpactScan,
			Hazards: []plans.Hazard{{Type: plans.HazardTableScan,
				Message: "scans the table under SHARE UPDATE EXCLUSIVE: reads and writes go on"}},
		})
	}
	sw.checks = append(sw.checks, checkCopy{table: rel, orig: con.Name, tmp: tmp})
	return nil
}

// swap collects what the contract transaction does.
type swap struct {
	op      *changeType
	indexes []indexCopy
	checks  []checkCopy
	notNull []notNullSwap
}

type indexCopy struct {
	table     relName
	orig, tmp string
	con       *schema.Constraint // PRIMARY KEY / UNIQUE the index backs
}

type checkCopy struct {
	table     relName
	orig, tmp string
}

type notNullSwap struct {
	cc    *columnChange
	check string
}

// fkRef is a foreign key dropped and re-added by the swap.
type fkRef struct {
	table relName
	tab   *schema.Table
	con   *schema.Constraint
}

// foreignKeys lists the foreign keys involving the changed columns, from
// either side, sorted by table and name.
func (sw *swap) foreignKeys() []fkRef {
	s := sw.op.s
	seen := map[string]bool{}
	var out []fkRef
	add := func(t *schema.Table, c *schema.Constraint) {
		k := t.Key() + "\x00" + c.Name
		if !seen[k] {
			seen[k] = true
			out = append(out, fkRef{table: tableRel(t), tab: t, con: c})
		}
	}
	for _, cc := range sw.op.changes {
		for _, t := range withPartitions(s, cc.tab) {
			for _, c := range t.Constraints {
				if c.Type == schema.ForeignKey && containsString(c.Columns, cc.col) {
					add(t, c)
				}
			}
		}
		for _, fk := range s.ReferencingForeignKeys(cc.table.key()) {
			if containsString(fk.Constraint.RefColumns, cc.col) {
				add(fk.Table, fk.Constraint)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].table != out[j].table {
			return out[i].table.key() < out[j].table.key()
		}
		return out[i].con.Name < out[j].con.Name
	})
	return out
}

// plan adds the application release, the swap and the validations.
func (sw *swap) plan(b *builder) error {
	op := sw.op
	var cols []string
	for _, cc := range op.changes {
		cols = append(cols, fmt.Sprintf("%s.%s", cc.table, cc.col))
	}
	b.instruct(stageRelease, fmt.Sprintf("Make sure every value the application writes to %s fits %s (the sync trigger converts each write, and a write that does not convert fails). Code reading the column must accept %s values once the contract phase has run; deploy that before the contract phase.",
		strings.Join(cols, ", "), op.typeSQL, op.typeSQL))
	b.instruct(stageRelease, "Prepared statements and cached query plans that select `*` may fail once with \"cached plan must not change result type\" when the contract step swaps the columns; make sure the driver re-prepares, or list columns explicitly.")
	b.warn("After the swap, %s is the last column of its table (a new column replaces it): SELECT * and COPY without a column list see a different column order.", strings.Join(cols, ", "))

	var stmts []string
	var views []*schema.View
	var fks []fkRef
	var triggers []*schema.Trigger
	if op.s != nil {
		var refs []schema.ColumnRef
		for _, cc := range op.changes {
			refs = append(refs, schema.ColumnRef{Relation: cc.table.key(), Column: cc.col})
		}
		views = viewsUsingColumns(op.s, refs)
		fks = sw.foreignKeys()
		for _, cc := range op.changes {
			for _, tr := range cc.tab.Triggers {
				if uses, err := triggerUsesColumn(tr.Definition, cc.col); err != nil {
					return fmt.Errorf("planner: trigger %s: %w", tr.Name, err)
				} else if uses {
					triggers = append(triggers, tr)
					stmts = append(stmts, fmt.Sprintf("DROP TRIGGER %s ON %s", ident(tr.Name), cc.table.quoted()))
				}
			}
		}
	}
	for _, cc := range op.changes {
		t := cc.table.quoted()
		stmts = append(stmts,
			fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s", ident(cc.triggerName()), t),
			fmt.Sprintf("DROP FUNCTION IF EXISTS %s()", cc.syncFunction().quoted()))
	}
	for _, v := range views {
		stmts = append(stmts, dropViewSQL(v))
	}
	for _, fk := range fks {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", fk.table.quoted(), ident(fk.con.Name)))
	}
	for _, cc := range op.changes {
		s, err := sw.swapColumn(b, cc)
		if err != nil {
			return err
		}
		stmts = append(stmts, s...)
	}
	for i := len(views) - 1; i >= 0; i-- {
		create, err := createViewSQL(op.s, views[i])
		if err != nil {
			return fmt.Errorf("planner: %w", err)
		}
		stmts = append(stmts, create...)
	}
	for _, tr := range triggers {
		stmts = append(stmts, tr.Definition)
	}
	var validate []fkRef
	var scanned []string
	for _, fk := range fks {
		sql, notValid, err := readdForeignKey(fk)
		if err != nil {
			return err
		}
		stmts = append(stmts, sql)
		if notValid && fk.con.Valid {
			validate = append(validate, fk)
		} else if !notValid {
			scanned = append(scanned, fk.con.Name)
		}
	}

	main := op.changes[0]
	hazards := []plans.Hazard{aeHazard("the swap")}
	hazards = append(hazards, viewHazards(views)...)
	var tables []string
	for _, cc := range op.changes[1:] {
		if !containsString(tables, cc.table.String()) && cc.table != main.table {
			tables = append(tables, cc.table.String())
		}
	}
	for _, fk := range fks {
		if !containsString(tables, fk.table.String()) && fk.table != main.table {
			tables = append(tables, fk.table.String())
		}
	}
	if len(tables) > 0 {
		hazards = append(hazards, plans.Hazard{Type: plans.HazardAccessExclusive,
			Message: "also takes ACCESS EXCLUSIVE on " + strings.Join(tables, ", ") + " (the other columns and foreign keys swapped in the same transaction)"})
	}
	if len(scanned) > 0 {
		hazards = append(hazards, plans.Hazard{Type: plans.HazardTableScan,
			Message: "foreign key(s) " + strings.Join(scanned, ", ") + " are declared on partitioned tables, which cannot take NOT VALID foreign keys: re-adding them checks every row while the transaction holds its locks"})
	}
	summary := fmt.Sprintf("Swap in one short transaction: drop the sync trigger, drop %s and rename the new column to its name", strings.Join(cols, ", "))
	if len(sw.indexes)+len(sw.checks) > 0 {
		summary += "; give the copied indexes and constraints their original names"
	}
	if len(views) > 0 {
		summary += "; drop and create again the view(s) " + viewKeys(views)
	}
	if len(fks) > 0 {
		summary += "; re-add the foreign keys NOT VALID"
	}
	b.add(stageContract, plans.Step{
		ID:                 "swap-" + main.col,
		Summary:            summary,
		SQL:                strings.Join(stmts, ";\n"),
		Irreversible:       true,
		IrreversibleReason: fmt.Sprintf("the old column(s) %s and their values are dropped; to go back, plan the reverse type change", strings.Join(cols, ", ")),
		Lock:               plans.LockAccessExclusive,
		Table:              main.table.String(),
		Transactional:      true,
		Rewrite:            plans.ImpactNone,
		Gate: &plans.Gate{
			Description: fmt.Sprintf("%s is gone and %s has the new type", main.newCol, main.col),
			SQL: fmt.Sprintf("SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = %s::regclass AND attname = %s AND NOT attisdropped",
				literal(main.table.quoted()), literal(main.newCol)),
		},
		Hazards: hazards,
	})
	for _, fk := range validate {
		b.add(stageContract, plans.Step{
			ID:            "validate-" + fk.con.Name,
			Summary:       fmt.Sprintf("Validate foreign key %s of %s (re-added NOT VALID by the swap)", fk.con.Name, fk.table),
			SQL:           validateConstraintSQL(fk.table, fk.con.Name),
			Rollback:      noUndo("validation changes no data"),
			Lock:          plans.LockShareUpdateExclusive,
			Table:         fk.table.String(),
			Transactional: true,
			Rewrite:       plans.ImpactScan,
			Hazards: []plans.Hazard{{Type: plans.HazardTableScan,
				Message: "scans the table under SHARE UPDATE EXCLUSIVE (and ROW SHARE on the referenced table): reads and writes go on"}},
		})
	}
	warnRecreatedViews(b, views)
	return nil
}

// swapColumn returns the statements that put the new column in the old
// one's place.
func (sw *swap) swapColumn(b *builder, cc *columnChange) ([]string, error) {
	t, c, n := cc.table.quoted(), ident(cc.col), ident(cc.newCol)
	var out []string
	var identityTmp, identitySeq relName
	if cc.column != nil {
		for _, k := range sortedSequenceKeys(sw.op.s) {
			sq := sw.op.s.Sequences[k]
			if sq.OwnedBy == nil || sq.OwnedBy.Relation != cc.table.key() || sq.OwnedBy.Column != cc.col {
				continue
			}
			if cc.column.Identity != "" {
				identitySeq = relName{sq.Schema, sq.Name}
				continue
			}
			out = append(out, fmt.Sprintf("ALTER SEQUENCE %s OWNED BY %s.%s", relName{sq.Schema, sq.Name}.quoted(), t, n))
		}
		if cc.column.Default != "" {
			out = append(out, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", t, n, cc.column.Default))
		}
	}
	for _, nn := range sw.notNull {
		if nn.cc == cc {
			out = append(out, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", t, n),
				fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", t, ident(nn.check)))
		}
	}
	if cc.column != nil && cc.column.Identity != "" {
		if identitySeq.Name == "" {
			identitySeq = cc.table.sibling(makeObjectName(cc.table.Name, cc.col, "seq"))
		}
		identityTmp = cc.table.sibling(b.chooseName(relationName, cc.table.Schema, shortName(identitySeq.Name, "cutover_new"), "", ""))
		when := "BY DEFAULT"
		if cc.column.Identity == "always" {
			when = "ALWAYS"
		}
		out = append(out,
			fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s ADD GENERATED %s AS IDENTITY (SEQUENCE NAME %s)", t, n, when, identityTmp.quoted()),
			fmt.Sprintf("SELECT pg_catalog.setval(%s::regclass, pg_catalog.nextval(%s::regclass), false)", literal(identityTmp.quoted()), literal(identitySeq.quoted())))
		b.warn("The identity of %s.%s moves to the new column with a new sequence that continues where the old one stopped; options of the old sequence (INCREMENT, CACHE, MINVALUE/MAXVALUE) are not carried over.", cc.table, cc.col)
	}
	out = append(out,
		fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", t, c),
		fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", t, n, c))
	if identityTmp.Name != "" {
		out = append(out, fmt.Sprintf("ALTER SEQUENCE %s RENAME TO %s", identityTmp.quoted(), ident(identitySeq.Name)))
	}
	for _, ix := range sw.indexes {
		if ix.table.key() != cc.table.key() && !sw.inPartitions(cc, ix.table) {
			continue
		}
		if ix.con != nil && (ix.con.Type == schema.PrimaryKey || ix.con.Type == schema.Unique) {
			sql, err := usingIndexSQL(ix)
			if err != nil {
				return nil, err
			}
			out = append(out, sql)
			continue
		}
		out = append(out, fmt.Sprintf("ALTER INDEX %s RENAME TO %s", ix.table.sibling(ix.tmp).quoted(), ident(ix.orig)))
	}
	for _, ck := range sw.checks {
		if ck.table.key() != cc.table.key() && !sw.inPartitions(cc, ck.table) {
			continue
		}
		out = append(out, fmt.Sprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s", ck.table.quoted(), ident(ck.tmp), ident(ck.orig)))
	}
	return out, nil
}

// inPartitions reports whether rel is a partition (at any depth) of cc's
// table.
func (sw *swap) inPartitions(cc *columnChange, rel relName) bool {
	if cc.tab == nil {
		return false
	}
	for _, t := range withPartitions(sw.op.s, cc.tab)[1:] {
		if t.Key() == rel.key() {
			return true
		}
	}
	return false
}

// usingIndexSQL turns the copied unique index back into the PRIMARY KEY or
// UNIQUE constraint it backed, under the constraint's name (PostgreSQL
// renames the index to it), keeping DEFERRABLE / INITIALLY DEFERRED.
func usingIndexSQL(ix indexCopy) (string, error) {
	tree, err := parseOne("ALTER TABLE x ADD CONSTRAINT n " + ix.con.Definition)
	if err != nil {
		return "", fmt.Errorf("planner: constraint %s: %w", ix.con.Name, err)
	}
	orig := tree.Stmts[0].Stmt.GetAlterTableStmt().Cmds[0].GetAlterTableCmd().Def.GetConstraint()
	con := &pg_query.Constraint{Contype: orig.Contype, Conname: ix.con.Name, Indexname: ix.tmp,
		Deferrable: orig.Deferrable, Initdeferred: orig.Initdeferred}
	return addConstraintSQL(ix.table, con)
}

// readdForeignKey returns the ADD CONSTRAINT re-creating a foreign key,
// NOT VALID unless its table is partitioned (PostgreSQL refuses NOT VALID
// foreign keys there).
func readdForeignKey(fk fkRef) (sql string, notValid bool, err error) {
	tree, err := parseOne("ALTER TABLE x ADD CONSTRAINT n " + fk.con.Definition)
	if err != nil {
		return "", false, fmt.Errorf("planner: foreign key %s: %w", fk.con.Name, err)
	}
	con := tree.Stmts[0].Stmt.GetAlterTableStmt().Cmds[0].GetAlterTableCmd().Def.GetConstraint()
	con.Conname = fk.con.Name
	notValid = !fk.tab.Partitioned
	if notValid {
		con.SkipValidation, con.InitiallyValid = true, false
	}
	sql, err = addConstraintSQL(fk.table, con)
	if err != nil {
		return "", false, fmt.Errorf("planner: foreign key %s: %w", fk.con.Name, err)
	}
	return sql, notValid, nil
}

func sortedSequenceKeys(s *schema.Schema) []string {
	if s == nil {
		return nil
	}
	keys := make([]string, 0, len(s.Sequences))
	for k := range s.Sequences {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
