package planner

import (
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// setDefault plans ALTER TABLE t ALTER COLUMN c SET DEFAULT expr and
// ALTER TABLE t ALTER COLUMN c DROP DEFAULT.
//
// Both change only the catalog: the default applies to rows inserted from
// then on, existing rows keep their values, whatever the expression (even a
// volatile one). The only danger is the ACCESS EXCLUSIVE lock, brief but
// queued behind any long transaction on the table, with every later query
// queued behind it; the plan is one step run with a short lock_timeout and
// retries. Its rollback restores the previous default, which only a schema
// tells.
//
// DROP DEFAULT of a NOT NULL column is different: from then on every
// INSERT that leaves the column out fails, and running releases may rely
// on the default. The plan is then an application release that always
// writes the column, and the DROP DEFAULT in the contract phase.
type setDefault struct {
	si    stmtInfo
	table relName
	col   string
	// expr is the new default, deparsed; "" for DROP DEFAULT.
	expr string

	// From the schema (nil without one).
	column *schema.Column
}

func newSetDefault(si stmtInfo, t relName, col string, expr *pg_query.Node) (operation, error) {
	op := &setDefault{si: si, table: t, col: col}
	if expr != nil {
		e, err := deparseExpr(expr)
		if err != nil {
			return nil, si.unsupported("cannot re-emit the default expression: " + err.Error())
		}
		op.expr = e
	}
	return op, nil
}

func (op *setDefault) validate(s *schema.Schema) error {
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	col, err := requireColumn(op.si, tab, op.col)
	if err != nil {
		return err
	}
	if col.Identity != "" {
		return op.si.invalid(fmt.Sprintf("column %s of %s is an identity column: PostgreSQL refuses a default on it; use ALTER COLUMN ... DROP IDENTITY first, or SET GENERATED", op.col, op.table))
	}
	if col.Generated != "" {
		return op.si.invalid(fmt.Sprintf("column %s of %s is a generated column: it cannot have a default", op.col, op.table))
	}
	op.column = col
	return nil
}

// naive: catalog only, under a brief ACCESS EXCLUSIVE; but dropping the
// default of a NOT NULL column breaks the INSERTs that rely on it.
func (op *setDefault) naive(ctx *naiveContext) asWritten {
	switch {
	case ctx.isNew(op.table):
		return asWritten{}
	case op.expr == "" && op.column != nil && op.column.NotNull && op.column.Default != "":
		return asWritten{rule: RuleDropDefaultNotNull, lock: plans.LockAccessExclusive, table: op.table, held: heldInstant,
			breaks: fmt.Sprintf("every INSERT of a running release that leaves %s out fails from the moment it commits (%s is NOT NULL)", op.col, op.col),
			do:     fmt.Sprintf("release the application that always writes %s first, then drop the default in a later migration (`cutover plan`)", op.col)}
	}
	return safeLock(plans.LockAccessExclusive, op.table)
}

func (op *setDefault) plan(b *builder) error {
	b.touch(op.table)
	t, c := op.table.quoted(), ident(op.col)
	// After the swap of a column an earlier statement renames or changes
	// the type of.
	st := b.settledFrom(op.table, op.col)
	step := plans.Step{
		Lock:          plans.LockAccessExclusive,
		Table:         op.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
	}
	if op.expr == "" {
		step.ID = "drop-default-" + op.col
		step.Summary = fmt.Sprintf("Drop the default of %s (rows inserted from now on get NULL unless they give a value)", op.col)
		step.SQL = fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", t, c)
		step.Hazards = []plans.Hazard{aeHazard("DROP DEFAULT")}
		if op.column != nil && op.column.NotNull && op.column.Default != "" && !b.isNew(op.table) {
			st = stageContract
			step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardDeployBreakage,
				Message: fmt.Sprintf("%s is NOT NULL: from this step on every INSERT that does not give it a value fails; the release before makes the application always write it", op.col)})
			b.instruct(stageStopOld, fmt.Sprintf("Write `%s` explicitly in every INSERT into %s (and in COPY column lists): the contract phase drops its default %s, and %s is NOT NULL, so an INSERT that leaves it out would fail. Check jobs, scripts and fixtures too.",
				op.col, op.table, op.column.Default, op.col))
		}
		if op.column == nil {
			b.assume("Column %s of %s is nullable, or every INSERT gives it a value: if it is NOT NULL, dropping its default makes the INSERTs that leave it out fail (plan with a schema to have an application release planned first).", op.col, op.table)
		}
	} else {
		step.ID = "set-default-" + op.col
		step.Summary = fmt.Sprintf("Set the default of %s to %s (rows inserted from now on; existing rows keep their values)", op.col, op.expr)
		step.SQL = fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", t, c, op.expr)
		step.Hazards = []plans.Hazard{aeHazard("SET DEFAULT")}
	}
	switch {
	case op.column != nil && op.column.Default != "":
		step.Rollback = fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s", t, c, op.column.Default)
	case op.column != nil:
		step.Rollback = fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", t, c)
	default:
		step.Irreversible = true
		step.IrreversibleReason = "planned without a schema, so the previous default is unknown; plan with --schema or --db to get the rollback"
	}
	if op.column != nil && op.expr == "" && op.column.Default == "" {
		b.warn("Column %s of %s has no default: DROP DEFAULT changes nothing.", op.col, op.table)
	}
	b.add(st, step)
	return nil
}
