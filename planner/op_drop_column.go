package planner

import (
	"fmt"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// dropColumn plans ALTER TABLE t DROP COLUMN c [CASCADE].
//
// The naive drop is instant (the column is only marked dropped), but every
// running application instance that still names the column, or selects *
// into a model that expects it, starts failing at once. The plan:
//
//	expand   (only when c is NOT NULL without a default) DROP NOT NULL, so
//	         the release that stops writing c can still insert rows;
//	migrate  application release: stop reading and writing c;
//	contract DROP COLUMN, irreversible: the data is gone.
//
// PostgreSQL drops the indexes and constraints involving the column with
// it (a multi-column index too), which the plan names in a warning. Views
// reading the column, foreign keys of other tables referencing it,
// generated columns computed from it and triggers on it make PostgreSQL
// refuse the drop unless CASCADE is given: without CASCADE the plan is
// refused in the same way, naming them; with CASCADE the plan drops them
// explicitly in the contract step and says so.
type dropColumn struct {
	si       stmtInfo
	table    relName
	col      string
	cascade  bool
	ifExists bool

	// From the schema (nil without one).
	tab    *schema.Table
	column *schema.Column
	// missing is set when IF EXISTS names a column that does not exist.
	missing bool
	// What depends on the column (see dropDependents).
	views     []*schema.View
	fks       []schema.FKRef
	generated []string
	triggers  []string
}

func newDropColumn(si stmtInfo, t relName, col string, cascade, ifExists bool) (operation, error) {
	return &dropColumn{si: si, table: t, col: col, cascade: cascade, ifExists: ifExists}, nil
}

func (op *dropColumn) validate(s *schema.Schema) error {
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	col := tab.Column(op.col)
	if col == nil {
		if op.ifExists {
			op.missing = true
			return nil
		}
		return op.si.invalid(fmt.Sprintf("column %s does not exist in table %s", op.col, op.table))
	}
	if tab.PartitionOf != "" {
		if parent := s.Tables[tab.PartitionOf]; parent != nil && parent.Column(op.col) != nil {
			return op.si.invalid(fmt.Sprintf("column %s of partition %s is inherited from %s: PostgreSQL refuses to drop it here; drop it from %s", op.col, op.table, parent.Key(), parent.Key()))
		}
	}
	if tab.Partitioned {
		uses, err := partitionKeyUses(tab.PartitionKey, op.col)
		if err != nil {
			return fmt.Errorf("planner: partition key of %s: %w", op.table, err)
		}
		if uses {
			return op.si.invalid(fmt.Sprintf("column %s is in the partition key of %s (%s): PostgreSQL refuses to drop it", op.col, op.table, tab.PartitionKey))
		}
	}
	op.tab, op.column = tab, col
	if err := op.dropDependents(s); err != nil {
		return err
	}
	if op.cascade {
		return nil
	}
	var blockers []string
	if len(op.views) > 0 {
		blockers = append(blockers, "view(s) "+viewKeys(op.views))
	}
	for _, fk := range op.fks {
		blockers = append(blockers, fmt.Sprintf("foreign key %s of %s", fk.Constraint.Name, fk.Table.Key()))
	}
	if len(op.generated) > 0 {
		blockers = append(blockers, "generated column(s) "+strings.Join(op.generated, ", "))
	}
	if len(op.triggers) > 0 {
		blockers = append(blockers, "trigger(s) "+strings.Join(op.triggers, ", "))
	}
	if len(blockers) > 0 {
		return op.si.invalid(fmt.Sprintf("%s depend(s) on column %s of %s, so PostgreSQL would refuse the drop: change or drop them first, or add CASCADE to drop them with the column",
			strings.Join(blockers, "; "), op.col, op.table))
	}
	return nil
}

// dropDependents finds what PostgreSQL drops with the column only under
// CASCADE: views reading it, foreign keys of other tables referencing it,
// generated columns computed from it, triggers whose column list or WHEN
// clause names it.
func (op *dropColumn) dropDependents(s *schema.Schema) error {
	op.views = s.ViewsUsingColumn(op.table.key(), op.col)
	for _, fk := range s.ReferencingForeignKeys(op.table.key()) {
		if containsString(fk.Constraint.RefColumns, op.col) {
			op.fks = append(op.fks, fk)
		}
	}
	for _, c := range op.tab.Columns {
		if c.Generated == "" || c.Name == op.col {
			continue
		}
		uses, err := usesColumn("SELECT "+c.Generated, op.col)
		if err != nil {
			return fmt.Errorf("planner: generated column %s: %w", c.Name, err)
		}
		if uses {
			op.generated = append(op.generated, c.Name)
		}
	}
	for _, tr := range op.tab.Triggers {
		uses, err := triggerUsesColumn(tr.Definition, op.col)
		if err != nil {
			return fmt.Errorf("planner: trigger %s: %w", tr.Name, err)
		}
		if uses {
			op.triggers = append(op.triggers, tr.Name)
		}
	}
	return nil
}

// triggerUsesColumn reports whether a CREATE TRIGGER statement depends on
// the column: in its UPDATE OF list or its WHEN clause.
func triggerUsesColumn(def, col string) (bool, error) {
	tree, err := parseOne(def)
	if err != nil {
		return false, err
	}
	ct := tree.Stmts[0].Stmt.GetCreateTrigStmt()
	if ct == nil {
		return false, fmt.Errorf("not a CREATE TRIGGER statement")
	}
	if containsString(nameList(ct.Columns), col) {
		return true, nil
	}
	return containsString(columnRefNames(ct.WhenClause), col), nil
}

// partitionKeyUses reports whether a partition key ("RANGE (payment_date)")
// names the column, as a key column or inside a key expression.
func partitionKeyUses(key, col string) (bool, error) {
	tree, err := parseOne("CREATE TABLE x () PARTITION BY " + key)
	if err != nil {
		return false, err
	}
	found := false
	walk(tree.Stmts[0].ProtoReflect(), func(m protoreflect.Message) {
		switch n := m.Interface().(type) {
		case *pg_query.PartitionElem:
			if n.Name == col {
				found = true
			}
		case *pg_query.ColumnRef:
			if len(n.Fields) > 0 && n.Fields[len(n.Fields)-1].GetString_().GetSval() == col {
				found = true
			}
		}
	})
	return found, nil
}

// naive: instant, but running releases that use the column fail, and its
// data is gone.
func (op *dropColumn) naive(ctx *naiveContext) asWritten {
	switch {
	case ctx.isNew(op.table):
		return asWritten{}
	case op.missing:
		return safeLock(plans.LockAccessExclusive, op.table)
	}
	return asWritten{rule: RuleDropColumn, lock: plans.LockAccessExclusive, table: op.table, held: heldInstant,
		breaks: fmt.Sprintf("every running release that still reads or writes %s (or selects * into a model that has it) fails from the moment it commits", op.col),
		loss:   fmt.Sprintf("the values of %s.%s are gone for good: there is no rollback but a restore", op.table, op.col),
		do:     fmt.Sprintf("release the application that no longer uses %s first, then drop it in a later migration (`cutover plan` orders both)", op.col)}
}

func (op *dropColumn) plan(b *builder) error {
	if op.missing {
		b.warn("Column %s does not exist in %s: DROP COLUMN IF EXISTS changes nothing.", op.col, op.table)
		return nil
	}
	if err := b.requireSettled(op.si, op.table, "drop", op.col); err != nil {
		return err
	}
	b.touch(op.table)
	// The column is there until the contract phase (multistatement.go).
	b.free(columnKey(op.table, op.col), "DROP COLUMN "+op.col+" runs in the contract phase")
	t, c := op.table.quoted(), ident(op.col)

	if op.column == nil {
		b.assume("%s.%s is nullable or has a default, so the release that stops writing it can still insert rows (if it is NOT NULL without a default, add ALTER TABLE ... ALTER COLUMN %s DROP NOT NULL before the release).", op.table, op.col, op.col)
		b.assume("No view, foreign key, generated column or trigger depends on %s.%s; if one does, the contract step fails and changes nothing.", op.table, op.col)
	} else if op.column.NotNull && op.column.Default == "" && op.column.Identity == "" && op.column.Generated == "" {
		if pk := op.tab.PrimaryKey(); pk != nil && containsString(pk.Columns, op.col) {
			b.warn("%s.%s is in the primary key %s and cannot be made nullable: the release that stops writing it cannot insert rows. Replace the primary key first.", op.table, op.col, pk.Name)
		} else {
			b.add(stageExpand, plans.Step{
				ID:            "drop-not-null-" + op.col,
				Summary:       fmt.Sprintf("Allow NULL in %s, so the release that stops writing it can still insert rows", op.col),
				SQL:           fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", t, c),
				Rollback:      fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", t, c),
				Lock:          plans.LockAccessExclusive,
				Table:         op.table.String(),
				Transactional: true,
				Rewrite:       plans.ImpactNone,
				Hazards: []plans.Hazard{aeHazard("DROP NOT NULL"), {Type: plans.HazardTableScan,
					Message: "the rollback (SET NOT NULL) scans the table under ACCESS EXCLUSIVE"}},
			})
		}
	}

	b.instruct(stageStopOld, fmt.Sprintf("Stop reading and writing %s.%s: remove it from every query, INSERT, UPDATE and ORM model (ORMs that list every mapped column in their INSERTs and SELECTs fail once it is dropped). Deploy everywhere, and confirm no instance of the old release is left before the contract phase.", op.table, op.col))
	if len(op.views) > 0 {
		b.instruct(stageStopOld, fmt.Sprintf("Stop using the view(s) %s: the contract step drops them with the column (CASCADE).", viewKeys(op.views)))
	}

	var stmts []string
	for _, v := range op.views {
		stmts = append(stmts, dropViewSQL(v))
	}
	drop := fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", t, c)
	if op.cascade {
		drop += " CASCADE"
	}
	stmts = append(stmts, drop)
	lost := []string{fmt.Sprintf("the data of %s.%s", op.table, op.col)}
	if len(op.views) > 0 {
		lost = append(lost, "the view(s) "+viewKeys(op.views))
	}
	b.add(stageContract, plans.Step{
		ID:                 "drop-column-" + op.col,
		Summary:            fmt.Sprintf("Drop column %s of %s", op.col, op.table),
		SQL:                strings.Join(stmts, ";\n"),
		Irreversible:       true,
		IrreversibleReason: "DROP COLUMN discards " + strings.Join(lost, " and ") + "; keep a copy (e.g. CREATE TABLE ... AS SELECT the key and the column) before this step if it may be wanted",
		Lock:               plans.LockAccessExclusive,
		Table:              op.table.String(),
		Transactional:      true,
		Rewrite:            plans.ImpactNone,
		Removes:            &plans.Removal{Table: op.table.String(), Column: op.col},
		Gate: &plans.Gate{
			Description: fmt.Sprintf("column %s is gone from %s", op.col, op.table),
			SQL: fmt.Sprintf("SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = %s::regclass AND attname = %s AND NOT attisdropped",
				literal(t), literal(op.col)),
		},
		Hazards: []plans.Hazard{
			aeHazard("DROP COLUMN"),
			{Type: plans.HazardDataLoss, Message: "the column's data is discarded; the space is reclaimed only as rows are rewritten"},
		},
	})
	op.warnDropped(b)
	return nil
}

// warnDropped names what PostgreSQL drops with the column.
func (op *dropColumn) warnDropped(b *builder) {
	if op.tab == nil {
		return
	}
	var indexes, cons []string
	for _, tab := range withPartitions(b.schema, op.tab) {
		qual := ""
		if tab != op.tab {
			qual = " (on partition " + tab.Key() + ")"
		}
		for _, ix := range tab.Indexes {
			if uses, err := usesColumn(ix.Definition, op.col); err == nil && uses && ix.Constraint == "" {
				indexes = append(indexes, ix.Name+qual)
			}
		}
		for _, con := range tab.Constraints {
			if containsString(con.Columns, op.col) || constraintUses(con, op.col) {
				cons = append(cons, fmt.Sprintf("%s %s%s", con.Type, con.Name, qual))
			}
		}
	}
	if len(indexes) > 0 {
		b.warn("Dropping %s.%s also drops the index(es) %s (a multi-column index goes entirely, even if queries on the other columns use it).", op.table, op.col, strings.Join(indexes, ", "))
	}
	if len(cons) > 0 {
		b.warn("Dropping %s.%s also drops the constraint(s) %s.", op.table, op.col, strings.Join(cons, ", "))
	}
	if pk := op.tab.PrimaryKey(); pk != nil && containsString(pk.Columns, op.col) {
		b.warn("%s.%s is in the primary key: the table is left without one, so later backfills cannot be batched by key.", op.table, op.col)
	}
	for _, fk := range op.fks {
		b.warn("CASCADE drops foreign key %s of %s, which references %s.%s; its rows are no longer checked.", fk.Constraint.Name, fk.Table.Key(), op.table, op.col)
	}
	if len(op.views) > 0 {
		b.warn("CASCADE drops the view(s) %s, which read %s.%s; the plan drops them explicitly in the contract step.", viewKeys(op.views), op.table, op.col)
	}
	if len(op.generated) > 0 {
		b.warn("CASCADE drops the generated column(s) %s of %s, computed from %s.", strings.Join(op.generated, ", "), op.table, op.col)
	}
	if len(op.triggers) > 0 {
		b.warn("CASCADE drops the trigger(s) %s of %s, which depend on %s.", strings.Join(op.triggers, ", "), op.table, op.col)
	}
	var seqs []string
	for k, sq := range b.schema.Sequences {
		if sq.OwnedBy != nil && sq.OwnedBy.Relation == op.table.key() && sq.OwnedBy.Column == op.col {
			seqs = append(seqs, k)
		}
	}
	sort.Strings(seqs)
	if len(seqs) > 0 {
		b.warn("Sequence(s) %s are owned by %s.%s and are dropped with it.", strings.Join(seqs, ", "), op.table, op.col)
	}
}

// constraintUses reports whether a constraint's definition (a CHECK
// expression, say) refers to the column.
func constraintUses(con *schema.Constraint, col string) bool {
	uses, err := usesColumn("ALTER TABLE x ADD CONSTRAINT n "+con.Definition, col)
	return err == nil && uses
}
