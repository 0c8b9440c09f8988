package planner

import (
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

func (op *setNotNull) plan(b *builder) error {
	if op.column != nil && op.column.NotNull {
		b.warn("Column %s of %s is already NOT NULL: SET NOT NULL changes nothing.", op.col, op.table)
		return nil
	}
	b.touch(op.table)
	check := b.chooseName(constraintName, op.table.Schema, notNullCheckName(op.table, op.col), "", "")
	if op.tab != nil && op.tab.Partitioned {
		b.warn("%s is partitioned: the CHECK constraint is added to and validated on every partition, and SET NOT NULL applies to all of them.", op.table)
	}
	add, validate := notNullCheckSteps(op.table, op.col, check)
	b.add(stageExpand, notNullPrecheck(op.table, op.col))
	b.add(stageExpand, add)
	b.add(stageAfterBackfill, validate)
	b.add(stageAfterBackfill, setNotNullStep(b, op.table, op.col, check))
	b.warn("From the expand phase on, a write that leaves %s.%s NULL fails (the NOT VALID check is enforced for new rows and updated ones): make sure the application always writes a value before running the plan.", op.table, op.col)
	return nil
}
