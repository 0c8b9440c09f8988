package planner

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// dropTable plans DROP TABLE [IF EXISTS] t [, ...] [CASCADE].
//
// The naive DROP TABLE is instant and final: every instance of a release
// that still uses the table fails, and the data is gone with no way back
// but a restore. The plan:
//
//	migrate  the application release that stops using the table;
//	contract rename the table aside (t -> t_cutover_dropped): anything that
//	         still uses it fails loudly, but renaming it back undoes that
//	         at once, with every row intact;
//	         a cooling-off period: wait, and watch for errors;
//	         DROP TABLE on the renamed table: irreversible.
//
// Foreign keys of other tables that reference the table, and views that
// read it, would be dropped with it by CASCADE and make a plain DROP fail:
// with a schema the plan refuses without CASCADE and names them, and with
// CASCADE names them in a warning; they keep working on the renamed table
// until the final step drops them.
type dropTable struct {
	si       stmtInfo
	names    []relName
	ifExists bool
	cascade  bool

	// From the schema, per name (nil entries when unknown or absent).
	tabs  []*schema.Table
	fks   [][]schema.FKRef
	views [][]*schema.View
}

func newDropTable(si stmtInfo, d *pg_query.DropStmt) (operation, error) {
	op := &dropTable{si: si, ifExists: d.MissingOk, cascade: d.Behavior == pg_query.DropBehavior_DROP_CASCADE}
	for _, o := range d.Objects {
		r, err := objectRel(si, o.GetList().GetItems())
		if err != nil {
			return nil, err
		}
		op.names = append(op.names, r)
	}
	n := len(op.names)
	op.tabs, op.fks, op.views = make([]*schema.Table, n), make([][]schema.FKRef, n), make([][]*schema.View, n)
	return op, nil
}

func (op *dropTable) dropped(key string) bool {
	for _, n := range op.names {
		if n.key() == key {
			return true
		}
	}
	return false
}

func (op *dropTable) validate(s *schema.Schema) error {
	for i, n := range op.names {
		tab := s.Table(n.Schema, n.Name)
		if tab == nil {
			if op.ifExists {
				continue
			}
			return op.si.invalid("table " + n.String() + " does not exist in the schema")
		}
		var fks []schema.FKRef
		for _, fk := range s.ReferencingForeignKeys(tab.Key()) {
			if !op.dropped(fk.Table.Key()) && fk.Table.PartitionOf != tab.Key() {
				fks = append(fks, fk)
			}
		}
		views := s.ViewsUsingRelation(tab.Key())
		if !op.cascade && (len(fks) > 0 || len(views) > 0) {
			return op.si.invalid(fmt.Sprintf("%s is used by %s; drop or change those first, or write DROP TABLE ... CASCADE to drop them with it",
				n, dependents(fks, views)))
		}
		op.tabs[i], op.fks[i], op.views[i] = tab, fks, views
	}
	return nil
}

// dependents describes foreign keys and views for a message.
func dependents(fks []schema.FKRef, views []*schema.View) string {
	var parts []string
	for _, fk := range fks {
		parts = append(parts, fmt.Sprintf("foreign key %s of %s", fk.Constraint.Name, fk.Table.Key()))
	}
	for _, v := range views {
		kind := "view"
		if v.Materialized {
			kind = "materialized view"
		}
		parts = append(parts, kind+" "+v.Key())
	}
	return strings.Join(parts, ", ")
}

func (op *dropTable) plan(b *builder) error {
	for i, t := range op.names {
		if b.schema != nil && op.tabs[i] == nil {
			b.warn("Table %s does not exist in the schema, so DROP TABLE IF EXISTS does nothing; the plan has no step for it.", t)
			continue
		}
		b.touch(t)
		aside := t.sibling(b.chooseName(relationName, t.Schema, t.Name, "", "cutover_dropped"))

		b.instruct(stageStopOld, fmt.Sprintf("Stop reading and writing the table `%s`: remove it from queries, ORM models, jobs and reports.", t.Name))

		b.add(stageContract, plans.Step{
			ID:            "rename-aside-" + t.Name,
			Summary:       fmt.Sprintf("Rename %s aside to %s: anything still using it fails, and renaming it back restores it intact", t, aside.Name),
			SQL:           fmt.Sprintf("ALTER TABLE %s RENAME TO %s", t.quoted(), ident(aside.Name)),
			Rollback:      fmt.Sprintf("ALTER TABLE %s RENAME TO %s", aside.quoted(), ident(t.Name)),
			Lock:          plans.LockAccessExclusive,
			Table:         t.String(),
			Transactional: true,
			Rewrite:       plans.ImpactNone,
			Hazards: []plans.Hazard{
				aeHazard("RENAME"),
				{Type: plans.HazardDeployBreakage, Message: fmt.Sprintf("anything still using %s fails from this step on; that is what the cooling-off period is for: roll the rename back to restore it", t.Name)},
			},
		})

		b.instruct(stageCoolOff, fmt.Sprintf(
			"Wait a cooling-off period (for example 7 days, covering weekly jobs) and watch the application and database logs for errors naming `%s` (relation \"%s\" does not exist). If anything still needs it, run the rollback of the rename: the table and its data are intact.",
			t.Name, t.Name))

		drop := "DROP TABLE " + aside.quoted()
		if op.cascade {
			drop += " CASCADE"
		}
		step := plans.Step{
			ID:                 "drop-table-" + t.Name,
			Summary:            fmt.Sprintf("Drop the table %s (set aside as %s) for good", t, aside.Name),
			SQL:                drop,
			Irreversible:       true,
			IrreversibleReason: fmt.Sprintf("the table's data is deleted; only a backup restores it. Take one (pg_dump -t %s) if the data may be wanted again", aside.quoted()),
			Lock:               plans.LockAccessExclusive,
			Table:              aside.String(),
			Transactional:      true,
			Rewrite:            plans.ImpactNone,
			Hazards: []plans.Hazard{
				{Type: plans.HazardDataLoss, Message: "deletes the table and every row in it"},
				aeHazard("DROP TABLE"),
			},
		}
		if tab := op.tabs[i]; tab != nil {
			if deps := dependents(op.fks[i], op.views[i]); deps != "" {
				step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardDataLoss, Message: "CASCADE also drops " + deps})
				b.warn("DROP TABLE %s CASCADE also drops %s; they keep working on the renamed table until the final step drops them.", t, deps)
			}
			if tab.Partitioned && len(tab.Partitions) > 0 {
				b.warn("%s is partitioned: dropping it drops its partitions %s too.", t, strings.Join(tab.Partitions, ", "))
			}
		} else {
			b.assume("No foreign key of another table and no view references %s (with one, the final DROP fails without CASCADE, or CASCADE drops it).", t)
		}
		b.add(stageFinal, step)
	}
	return nil
}
