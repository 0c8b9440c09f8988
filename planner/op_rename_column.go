package planner

import (
	"fmt"
	"strings"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// renameColumn plans ALTER TABLE t RENAME COLUMN old TO new.
//
// The naive rename is instant but breaks every running application instance
// that still uses the old name. The plan:
//
//	expand   add a copy column under the new name, kept equal to the old one
//	         in both directions by a trigger (old and new releases can run
//	         side by side); the triggers' WHEN clauses call the function
//	         only when a write leaves the two columns unequal, so the
//	         backfill (SET new = old) does not call it; a second trigger,
//	         on UPDATE OF the new column, makes a new release's write of
//	         the new column win, NULL included (syncTriggerSQL);
//	migrate  backfill the copy in batches; build copies of the old column's
//	         indexes on it (so queries on the new name are fast); release the
//	         application that reads and writes the new name;
//	contract in one short transaction: drop the trigger and the copy, and
//	         rename the original column. The original keeps its data, its
//	         position, its indexes, constraints and views, exactly as the
//	         naive rename would have left them.
type renameColumn struct {
	si       stmtInfo
	table    relName
	from, to string

	// From the schema (nil without one).
	col *schema.Column
	tab *schema.Table
}

func newRenameColumn(si stmtInfo, table relName, from, to string) (operation, error) {
	if from == to {
		return nil, si.invalid("the column already has the name " + to)
	}
	return &renameColumn{si: si, table: table, from: from, to: to}, nil
}

func (op *renameColumn) validate(s *schema.Schema) error {
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	col, err := requireColumn(op.si, tab, op.from)
	if err != nil {
		return err
	}
	if tab.Column(op.to) != nil {
		return op.si.invalid(fmt.Sprintf("table %s already has a column named %s", op.table, op.to))
	}
	if col.Generated != "" {
		return op.si.unsupported("renaming a generated column through a copy is not supported; rename it in the application instead")
	}
	op.tab, op.col = tab, col
	return nil
}

// triggerName and functionName name the sync trigger of this rename.
func (op *renameColumn) triggerName() string {
	return shortName("cutover_sync", op.from, op.to)
}

func (op *renameColumn) functionName() relName {
	return op.table.sibling(shortName("cutover_sync", op.table.Name, op.from, op.to))
}

// naive: the rename itself is instant, but every running release that
// still says the old name fails from the moment it commits.
func (op *renameColumn) naive(ctx *naiveContext) asWritten {
	if ctx.isNew(op.table) {
		return asWritten{}
	}
	return asWritten{rule: RuleRenameColumn, lock: plans.LockAccessExclusive, table: op.table, held: heldInstant,
		breaks: fmt.Sprintf("every running release that still uses %s.%s fails from the moment it commits, until the release using %s is out everywhere", op.table, op.from, op.to),
		do:     fmt.Sprintf("rename it in the application only, or let `cutover plan` add %s as a synced copy, backfill it and swap after the release", op.to)}
}

func (op *renameColumn) plan(b *builder) error {
	if err := b.requireSettled(op.si, op.table, "rename", op.from); err != nil {
		return err
	}
	t, from, to := op.table.quoted(), ident(op.from), ident(op.to)
	if b.isNew(op.table) {
		b.newTableStep(op.table, plans.Step{
			ID:       "rename-column-" + op.to,
			Summary:  fmt.Sprintf("Rename %s to %s", op.from, op.to),
			SQL:      fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", t, from, to),
			Rollback: fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", t, to, from),
			Lock:     plans.LockAccessExclusive,
			Hazards:  []plans.Hazard{aeHazard("RENAME COLUMN (on the new table)")},
		})
		return nil
	}
	if op.col == nil {
		return op.si.invalid("renaming a column needs the column's type: plan with --schema FILE or --db URL")
	}
	b.touch(op.table)
	// The copy takes the new name from the expand phase on; the old name
	// is there until the swap; later statements on the new name act on
	// the column after the swap.
	b.claim(columnKey(op.table, op.to), op.table.String()+"."+op.to)
	b.free(columnKey(op.table, op.from), "RENAME COLUMN keeps "+op.from+" until the swap")
	b.swap(op.table, op.to, "renamed from "+op.from)
	fn := op.functionName().quoted()
	pairs := []syncPair{{from: op.from, to: op.to, twoWay: true}}
	drops := dropSyncTriggersSQL(op.triggerName(), op.table, pairs)
	fnSQL := syncFunctionSQL(fn, pairs)
	if strings.Count(fnSQL, "$cutover$") != 2 {
		return op.si.unsupported("a column name contains the text $cutover$, which cutover uses to quote function bodies")
	}

	b.add(stageExpand, plans.Step{
		ID:            "add-column-" + op.to,
		Summary:       fmt.Sprintf("Add %s as a copy of %s (nullable, no default: instant)", op.to, op.from),
		SQL:           fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", t, to, op.col.Type),
		Rollback:      fmt.Sprintf("ALTER TABLE %s DROP COLUMN IF EXISTS %s", t, to),
		Lock:          plans.LockAccessExclusive,
		Table:         op.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards:       []plans.Hazard{aeHazard("ADD COLUMN")},
	})
	b.add(stageExpand, plans.Step{
		ID:            "sync-trigger-" + op.to,
		Summary:       fmt.Sprintf("Keep %s and %s equal on every write, in both directions", op.from, op.to),
		SQL:           fnSQL + ";\n" + syncTriggerSQL(op.triggerName(), op.table, fn, pairs),
		Rollback:      strings.Join(append(drops, fmt.Sprintf("DROP FUNCTION IF EXISTS %s()", fn)), ";\n"),
		Lock:          plans.LockShareRowExclusive,
		Table:         op.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards: []plans.Hazard{{Type: plans.HazardBlocksWrites,
			Message: "CREATE TRIGGER takes SHARE ROW EXCLUSIVE for an instant; writes queue behind it, so it runs with a short lock_timeout"}},
	})
	b.backfill(op.table, fmt.Sprintf("%s = %s", to, from), fmt.Sprintf("%s IS DISTINCT FROM %s", to, from),
		fmt.Sprintf("%s from %s", op.to, op.from))

	for _, ix := range op.tab.Indexes {
		uses, err := usesColumn(ix.Definition, op.from)
		if err != nil {
			return fmt.Errorf("planner: index %s: %w", ix.Name, err)
		}
		if !uses {
			continue
		}
		name := shortName(ix.Name, "cutover", op.to)
		sql, err := copyIndexOnColumn(ix.Definition, name, op.from, op.to)
		if err != nil {
			return fmt.Errorf("planner: copy index %s: %w", ix.Name, err)
		}
		b.add(stageAfterBackfill, plans.Step{
			ID:            "index-" + op.to,
			Summary:       fmt.Sprintf("Build a copy of index %s on %s, for queries using the new name", ix.Name, op.to),
			SQL:           sql,
			Rollback:      fmt.Sprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", op.table.sibling(name).quoted()),
			Lock:          plans.LockShareUpdateExclusive,
			Table:         op.table.String(),
			Transactional: false,
			Rewrite:       plans.ImpactScan,
			Hazards: []plans.Hazard{{Type: plans.HazardIndexBuild,
				Message: "builds an index concurrently: reads and writes go on, but it scans the table twice and uses I/O"}},
		})
	}

	b.instruct(stageRelease, fmt.Sprintf(
		"Switch reads and writes of %s from `%s` to `%s`. Instances of the previous release may keep writing `%s` while this rolls out: the sync trigger copies each write to the other column. (Without the trigger, this release would have to write both columns.)",
		op.table, op.from, op.to, op.from))
	b.instruct(stageRelease, "Prepared statements that select `*` may fail once with \"cached plan must not change result type\" when the contract step swaps the columns; make sure the driver re-prepares or list columns explicitly.")

	b.add(stageContract, plans.Step{
		ID:      "swap-" + op.to,
		Summary: fmt.Sprintf("Drop the sync triggers and the copy, and rename %s to %s, in one short transaction", op.from, op.to),
		SQL: strings.Join(append(drops,
			fmt.Sprintf("DROP FUNCTION IF EXISTS %s()", fn),
			fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", t, to),
			fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", t, from, to),
		), ";\n"),
		// Undoing the swap restores the original name; the copy and the
		// trigger are then absent, which is what the expand rollbacks
		// (IF EXISTS) expect.
		Rollback:      fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", t, to, from),
		Lock:          plans.LockAccessExclusive,
		Table:         op.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Removes:       &plans.Removal{Table: op.table.String(), Column: op.from},
		Gate: &plans.Gate{
			Description: fmt.Sprintf("the column is now named %s and %s is gone", op.to, op.from),
			SQL: fmt.Sprintf("SELECT count(*) = 1 FROM pg_catalog.pg_attribute WHERE attrelid = %s::regclass AND attname IN (%s, %s) AND NOT attisdropped",
				literal(t), literal(op.from), literal(op.to)),
		},
		Hazards: []plans.Hazard{aeHazard("the swap")},
	})
	b.warn("Renaming %s.%s only in the application (an alias in the ORM) avoids the schema change entirely; this plan is for when the database name itself must change.", op.table, op.from)
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
