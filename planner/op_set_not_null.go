package planner

import (
	"fmt"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// setNotNull plans ALTER TABLE t ALTER COLUMN c SET NOT NULL.
//
// The naive statement scans the whole table under ACCESS EXCLUSIVE to prove
// there is no NULL: on a large table, minutes during which no query on the
// table runs. The plan (see notnull.go):
//
//	expand   a read-only pre-check (gate: no NULL left), then
//	         ADD CONSTRAINT t_c_not_null CHECK (c IS NOT NULL) NOT VALID,
//	         instant, enforced for every write from then on;
//	migrate  VALIDATE CONSTRAINT (scan under SHARE UPDATE EXCLUSIVE: reads
//	         and writes go on), then SET NOT NULL, which PostgreSQL 12+
//	         proves from the validated check without a scan, and DROP the
//	         check, redundant from then on.
//
// The end state is the naive statement's: the column is NOT NULL and no
// extra constraint is left.
type setNotNull struct {
	si    stmtInfo
	table relName
	col   string

	column *schema.Column
	tab    *schema.Table
}

func newSetNotNull(si stmtInfo, t relName, col string) (operation, error) {
	return &setNotNull{si: si, table: t, col: col}, nil
}

func (op *setNotNull) validate(s *schema.Schema) error {
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	col, err := requireColumn(op.si, tab, op.col)
	if err != nil {
		return err
	}
	op.tab, op.column = tab, col
	return nil
}

// naive: scans the whole table under ACCESS EXCLUSIVE, unless a validated
// CHECK (c IS NOT NULL) proves the column NOT NULL (PostgreSQL 12+).
func (op *setNotNull) naive(ctx *naiveContext) asWritten {
	switch {
	case ctx.isNew(op.table):
		return asWritten{}
	case op.column != nil && op.column.NotNull, ctx.notNullProven(op.table, op.col):
		return safeLock(plans.LockAccessExclusive, op.table)
	}
	return asWritten{rule: RuleSetNotNull, lock: plans.LockAccessExclusive, table: op.table, held: heldScan, impact: plans.ImpactScan,
		do: fmt.Sprintf("ADD CHECK (%s IS NOT NULL) NOT VALID, VALIDATE it in a later transaction, then SET NOT NULL (no scan) and drop the check (`cutover plan`)", ident(op.col))}
}

func (op *setNotNull) plan(b *builder) error {
	if op.column != nil && op.column.NotNull {
		b.warn("Column %s of %s is already NOT NULL: SET NOT NULL changes nothing.", op.col, op.table)
		return nil
	}
	t, c := op.table.quoted(), ident(op.col)
	if b.isNew(op.table) {
		// Nothing to scan: the table was created earlier in the input.
		b.newTableStep(op.table, plans.Step{
			ID:       "set-not-null-" + op.col,
			Summary:  fmt.Sprintf("SET NOT NULL on %s", op.col),
			SQL:      fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", t, c),
			Rollback: fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", t, c),
			Lock:     plans.LockAccessExclusive,
			Hazards:  []plans.Hazard{aeHazard("SET NOT NULL (on the new table)")},
		})
		return nil
	}
	b.touch(op.table)
	check := b.chooseName(constraintName, op.table.Schema, notNullCheckName(op.table, op.col), "", "")
	if op.tab != nil && op.tab.Partitioned {
		b.warn("%s is partitioned: the CHECK constraint is added to and validated on every partition, and SET NOT NULL applies to all of them.", op.table)
	}
	// The checks see the final data: after a backfill of the table
	// registered by an earlier statement, after the contract's swap when
	// an earlier statement renames the column or changes its type.
	settled := b.settledFrom(op.table, op.col)
	first := later(b.dataStage(op.table), settled)
	add, validate := notNullCheckSteps(op.table, op.col, check)
	b.add(first, notNullPrecheck(op.table, op.col))
	b.add(first, add)
	b.add(later(stageAfterBackfill, settled), validate)
	b.add(later(stageAfterBackfill, settled), setNotNullStep(b, op.table, op.col, check))
	if b.base != nil && op.column != nil && op.column.Default == "" {
		if bt := b.base.Table(op.table.Schema, op.table.Name); bt != nil && bt.Column(op.col) == nil {
			b.warn("Column %s of %s is added without a default earlier in this input, so every existing row holds NULL in it: the plan's NULL check stops the plan until they have a value (the naive statements would fail on a non-empty table too). Give the new column a DEFAULT, or fill it before the SET NOT NULL.", op.col, op.table)
		}
	}
	phase := "the expand phase"
	if first != stageExpand {
		phase = "its NOT VALID check is added"
	}
	b.warn("From %s on, a write that leaves %s.%s NULL fails (the NOT VALID check is enforced for new rows and updated ones): make sure the application always writes a value before running the plan.", phase, op.table, op.col)
	return nil
}
