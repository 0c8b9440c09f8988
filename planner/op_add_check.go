package planner

import (
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// addCheck plans ALTER TABLE t ADD [CONSTRAINT name] CHECK (expr).
//
// The naive statement scans the whole table to check every row while it
// holds ACCESS EXCLUSIVE: no read or write of the table until the scan
// ends. The plan:
//
//	expand   a read-only pre-check counting the rows that violate the check
//	         (NOT (expr) is true exactly when the check fails; NULL passes,
//	         as in PostgreSQL): a NOT VALID check is enforced on every row
//	         written from then on, so an UPDATE of a violating row would
//	         start failing;
//	         ADD CONSTRAINT name CHECK (expr) NOT VALID: ACCESS EXCLUSIVE for
//	         an instant, no scan;
//	migrate  VALIDATE CONSTRAINT name: scans the table under SHARE UPDATE
//	         EXCLUSIVE, reads and writes go on.
//
// The constraint gets the name PostgreSQL would give it (<table>_<column>_check
// when the expression uses one column, else <table>_check), so the end
// state is the naive statement's. A check written NOT VALID stays so: the
// plan then has neither the pre-check nor the VALIDATE step. When an earlier statement of the input
// backfills the table, the pre-check and the NOT VALID step wait for that
// backfill (migrate phase), so they see the final data.
type addCheck struct {
	si    stmtInfo
	table relName
	con   *pg_query.Constraint
	cols  []string // columns the expression uses

	tab *schema.Table
}

func newAddCheck(si stmtInfo, t relName, con *pg_query.Constraint) (operation, error) {
	if con.RawExpr == nil {
		return nil, si.invalid("CHECK without an expression")
	}
	return &addCheck{si: si, table: t, con: proto.Clone(con).(*pg_query.Constraint), cols: columnRefNames(con.RawExpr)}, nil
}

func (op *addCheck) validate(s *schema.Schema) error {
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	for _, c := range op.cols {
		if _, err := requireColumn(op.si, tab, c); err != nil {
			return err
		}
	}
	if name := op.con.Conname; name != "" && tab.Constraint(name) != nil {
		return op.si.invalid(fmt.Sprintf("table %s already has a constraint named %s", op.table, name))
	}
	op.tab = tab
	return nil
}

// naive: scans the whole table under ACCESS EXCLUSIVE, unless NOT VALID.
func (op *addCheck) naive(ctx *naiveContext) asWritten {
	switch {
	case ctx.isNew(op.table):
		return asWritten{}
	case op.con.SkipValidation:
		return safeLock(plans.LockAccessExclusive, op.table)
	}
	return asWritten{rule: RuleAddCheck, lock: plans.LockAccessExclusive, table: op.table, held: heldScan, impact: plans.ImpactScan,
		do: "add it NOT VALID (instant), then VALIDATE CONSTRAINT in a later transaction: reads and writes go on (`cutover plan`)"}
}

func (op *addCheck) plan(b *builder) error {
	b.touch(op.table)
	name := op.con.Conname
	if name == "" {
		col := ""
		if len(op.cols) == 1 {
			col = op.cols[0]
		}
		name = b.chooseName(constraintName, op.table.Schema, op.table.Name, col, "check")
	} else {
		b.reserveName(constraintName, op.table.Schema, name)
	}
	t := op.table
	if b.isNew(t) {
		return b.newTableConstraint(t, op.con, name, "CHECK")
	}
	// After a backfill of the table, or after the swap of a column an
	// earlier statement renames or changes the type of.
	settled := b.settledFrom(t, op.cols...)
	ds := later(b.dataStage(t), settled)

	notExpr, err := deparseExpr(&pg_query.Node{Node: &pg_query.Node_BoolExpr{BoolExpr: &pg_query.BoolExpr{
		Boolop: pg_query.BoolExprType_NOT_EXPR, Args: []*pg_query.Node{op.con.RawExpr}}}})
	if err != nil {
		return fmt.Errorf("planner: check %s: %w", name, err)
	}
	q := fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", t.quoted(), notExpr)
	if !op.con.SkipValidation {
		b.add(ds, precheck("check-violations-"+name,
			fmt.Sprintf("Count the rows of %s that violate the new check %s", t, name), t, q,
			fmt.Sprintf("no row of %s violates %s; if the gate counts some, fix those rows (cutover plan an UPDATE) and run it again", t, name),
			"reads the whole table"))
	}

	con := proto.Clone(op.con).(*pg_query.Constraint)
	con.Conname = name
	con.SkipValidation = true
	con.InitiallyValid = false
	sql, err := addConstraintSQL(t, con)
	if err != nil {
		return fmt.Errorf("planner: deparse check %s: %w", name, err)
	}
	b.add(ds, plans.Step{
		ID:            "add-check-" + name,
		Summary:       fmt.Sprintf("Add CHECK constraint %s NOT VALID: enforced for new writes, existing rows not scanned", name),
		SQL:           sql,
		Rollback:      dropConstraintSQL(t, name),
		Lock:          plans.LockAccessExclusive,
		Table:         t.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards:       []plans.Hazard{aeHazard("ADD CONSTRAINT ... NOT VALID")},
	})
	if op.con.SkipValidation {
		b.warn("CHECK constraint %s on %s was written NOT VALID, so the plan does not validate it: existing rows are not checked until VALIDATE CONSTRAINT %s runs.", name, t, name)
		return nil
	}
	b.add(later(stageAfterBackfill, settled), plans.Step{
		ID:            "validate-" + name,
		Summary:       fmt.Sprintf("Validate CHECK constraint %s: scans the table while reads and writes go on", name),
		SQL:           validateConstraintSQL(t, name),
		Rollback:      noUndo("validation changes no data"),
		Lock:          plans.LockShareUpdateExclusive,
		Table:         t.String(),
		Transactional: true,
		Rewrite:       plans.ImpactScan,
		Hazards: []plans.Hazard{{Type: plans.HazardTableScan,
			Message: "scans the whole table under SHARE UPDATE EXCLUSIVE: reads and writes go on, other DDL and autovacuum wait"}},
	})
	return nil
}
