package planner

import (
	"fmt"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// dropNotNull plans ALTER TABLE t ALTER COLUMN c DROP NOT NULL.
//
// Dropping NOT NULL changes only the catalog: existing rows are not
// checked. The danger is the brief ACCESS EXCLUSIVE lock (one step with a
// short lock_timeout) and the rollback: SET NOT NULL scans the whole table
// under ACCESS EXCLUSIVE once NULLs may have been written, so the step says
// so; to restore the constraint without downtime, plan SET NOT NULL, which
// cutover turns into the CHECK ... NOT VALID / VALIDATE sequence.
type dropNotNull struct {
	si    stmtInfo
	table relName
	col   string

	column *schema.Column
}

func newDropNotNull(si stmtInfo, t relName, col string) (operation, error) {
	return &dropNotNull{si: si, table: t, col: col}, nil
}

func (op *dropNotNull) validate(s *schema.Schema) error {
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	col, err := requireColumn(op.si, tab, op.col)
	if err != nil {
		return err
	}
	if pk := tab.PrimaryKey(); pk != nil && containsString(pk.Columns, op.col) {
		return op.si.invalid(fmt.Sprintf("column %s is in the primary key %s of %s: PostgreSQL refuses to make it nullable; drop the primary key first", op.col, pk.Name, op.table))
	}
	if col.Identity != "" {
		return op.si.invalid(fmt.Sprintf("column %s of %s is an identity column, which is always NOT NULL; DROP IDENTITY first", op.col, op.table))
	}
	if tab.PartitionOf != "" {
		if parent := s.Tables[tab.PartitionOf]; parent != nil {
			if pc := parent.Column(op.col); pc != nil && pc.NotNull {
				return op.si.invalid(fmt.Sprintf("column %s is NOT NULL in %s, the partitioned table %s belongs to: drop NOT NULL on %s instead", op.col, parent.Key(), op.table, parent.Key()))
			}
		}
	}
	op.column = col
	return nil
}

// naive: catalog only, under a brief ACCESS EXCLUSIVE.
func (op *dropNotNull) naive(ctx *naiveContext) asWritten {
	if ctx.isNew(op.table) {
		return asWritten{}
	}
	return safeLock(plans.LockAccessExclusive, op.table)
}

func (op *dropNotNull) plan(b *builder) error {
	if op.column != nil && !op.column.NotNull {
		b.warn("Column %s of %s is already nullable: DROP NOT NULL changes nothing.", op.col, op.table)
	}
	b.touch(op.table)
	t, c := op.table.quoted(), ident(op.col)
	// After the swap of a column an earlier statement renames or changes
	// the type of (multistatement.go).
	b.add(b.settledFrom(op.table, op.col), plans.Step{
		ID:            "drop-not-null-" + op.col,
		Summary:       fmt.Sprintf("Allow NULL in %s (catalog only, existing rows are not read)", op.col),
		SQL:           fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", t, c),
		Rollback:      fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", t, c),
		Lock:          plans.LockAccessExclusive,
		Table:         op.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards: []plans.Hazard{
			aeHazard("DROP NOT NULL"),
			{Type: plans.HazardTableScan,
				Message: "the rollback (SET NOT NULL) scans the whole table under ACCESS EXCLUSIVE and fails if NULLs were written meanwhile; to restore the constraint online, plan ALTER COLUMN ... SET NOT NULL with cutover instead"},
		},
	})
	return nil
}
