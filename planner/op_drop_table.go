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
//
// A partition (known from the schema) is different: renamed aside, its
// rows would still be read and written through its parent, and the final
// DROP would lock the parent. It is first detached, after the release that
// stops relying on its rows:
//
//	contract ALTER TABLE parent DETACH PARTITION p CONCURRENTLY (PostgreSQL
//	         14+; outside a transaction block; SHARE UPDATE EXCLUSIVE on the
//	         parent: reads and writes go on). The step first records the
//	         partition bound in the partition's comment, so that its
//	         rollback can attach it again. Before PostgreSQL 14 it is a
//	         plain DETACH, which takes ACCESS EXCLUSIVE on the parent;
//	         then the rename aside, the cooling-off and the DROP of what is
//	         now a table of its own.
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

// naive: instant and final: running releases that use the table fail, and
// its rows are gone.
func (op *dropTable) naive(ctx *naiveContext) asWritten {
	for i, n := range op.names {
		if ctx.isNew(n) || (ctx.schema != nil && op.tabs[i] == nil) {
			// New and empty, or absent (IF EXISTS).
			continue
		}
		return asWritten{rule: RuleDropTable, lock: plans.LockAccessExclusive, table: n, held: heldInstant,
			breaks: fmt.Sprintf("every running release that still uses %s fails from the moment it commits", n),
			loss:   fmt.Sprintf("every row of %s is gone for good: there is no rollback but a restore", n),
			do:     "release the application that stops using it, rename it aside, wait, then drop it in a later migration (`cutover plan`)"}
	}
	return asWritten{}
}

func (op *dropTable) plan(b *builder) error {
	for i, t := range op.names {
		if b.schema != nil && op.tabs[i] == nil {
			b.warn("Table %s does not exist in the schema, so DROP TABLE IF EXISTS does nothing; the plan has no step for it.", t)
			continue
		}
		b.touch(t)
		aside := t.sibling(b.chooseName(relationName, t.Schema, t.Name, "", "cutover_dropped"))
		tab := op.tabs[i]

		// The names stay in use until the rename and the final DROP
		// (multistatement.go).
		b.free("rel:"+t.key(), fmt.Sprintf("DROP TABLE %s renames it aside in the contract phase", t))
		if tab != nil {
			for _, ix := range tab.Indexes {
				b.free("rel:"+t.sibling(ix.Name).key(), fmt.Sprintf("index %s goes only with the final DROP TABLE %s", ix.Name, t))
			}
		}

		if tab != nil && tab.PartitionOf != "" {
			if err := op.detach(b, t, tab); err != nil {
				return err
			}
		} else {
			b.instruct(stageStopOld, fmt.Sprintf("Stop reading and writing the table `%s`: remove it from queries, ORM models, jobs and reports.", t.Name))
		}

		b.add(stageContract, plans.Step{
			ID:            "rename-aside-" + t.Name,
			Summary:       fmt.Sprintf("Rename %s aside to %s: anything still using it fails, and renaming it back restores it intact", t, aside.Name),
			SQL:           fmt.Sprintf("ALTER TABLE %s RENAME TO %s", t.quoted(), ident(aside.Name)),
			Rollback:      fmt.Sprintf("ALTER TABLE %s RENAME TO %s", aside.quoted(), ident(t.Name)),
			Lock:          plans.LockAccessExclusive,
			Table:         t.String(),
			Transactional: true,
			Rewrite:       plans.ImpactNone,
			Removes:       &plans.Removal{Table: t.String()},
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
			IrreversibleReason: fmt.Sprintf("the table's data is deleted; only a backup restores it. Take one (pg_dump -t %s) if the data may be wanted again", shellQuote(aside.quoted())),
			Lock:               plans.LockAccessExclusive,
			Table:              aside.String(),
			Transactional:      true,
			Rewrite:            plans.ImpactNone,
			Removes:            &plans.Removal{Table: aside.String()},
			Hazards: []plans.Hazard{
				{Type: plans.HazardDataLoss, Message: "deletes the table and every row in it"},
				aeHazard("DROP TABLE"),
			},
		}
		if tab != nil {
			if deps := dependents(op.fks[i], op.views[i]); deps != "" {
				step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardDataLoss, Message: "CASCADE also drops " + deps})
				b.warn("DROP TABLE %s CASCADE also drops %s; they keep working on the renamed table until the final step drops them.", t, deps)
			}
			if tab.Partitioned && len(tab.Partitions) > 0 {
				b.warn("%s is partitioned: dropping it drops its partitions %s too.", t, strings.Join(tab.Partitions, ", "))
			}
		} else {
			b.assume("No foreign key of another table and no view references %s (with one, the final DROP fails without CASCADE, or CASCADE drops it).", t)
			b.assume("%s is not a partition (a partition would first be detached from its parent, so that its rows stop showing through the parent and the final DROP does not lock the parent); plan with a schema to have that done.", t)
		}
		b.add(stageFinal, step)
	}
	return nil
}

// detach plans what comes before the rename aside of a partition: the
// release that stops relying on its rows, and DETACH PARTITION.
func (op *dropTable) detach(b *builder, t relName, tab *schema.Table) error {
	pnsp, pname, _ := strings.Cut(tab.PartitionOf, ".")
	parent := relName{pnsp, pname}
	b.touch(parent)
	b.instruct(stageStopOld, fmt.Sprintf("Stop relying on the rows of `%s`, read or written directly or through `%s`: once the partition is detached, `%s` no longer shows them, and an INSERT into `%s` for that partition's range fails (unless a default partition takes it). Remove it from queries, ORM models, jobs and reports.",
		t.Name, parent.Name, parent.Name, parent.Name))

	concurrent := b.schema.ServerVersion == 0 || b.schema.ServerVersion >= 140000
	if b.schema.ServerVersion == 0 {
		b.assume("The server runs PostgreSQL 14 or later, where a partition can be detached CONCURRENTLY (without blocking reads and writes of its parent).")
	}
	// The bound is not in the schema model: the step saves it in the
	// partition's comment (with the comment it had, and the names of its
	// CHECK constraints), and the rollback attaches the partition with it.
	// DETACH ... CONCURRENTLY adds a CHECK constraint copying the
	// partition constraint; it makes the ATTACH of the rollback skip its
	// scan, which then drops it.
	prefix := detachedPrefix(parent)
	save := fmt.Sprintf(`DO $cutover$
BEGIN
  EXECUTE (SELECT format('COMMENT ON TABLE %%s IS %%L', c.oid::regclass, %s || pg_catalog.jsonb_build_object(
      'bound', pg_catalog.pg_get_expr(c.relpartbound, c.oid),
      'checks', ARRAY(SELECT k.conname::text FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c'),
      'comment', pg_catalog.obj_description(c.oid, 'pg_class'))::text)
    FROM pg_catalog.pg_class c WHERE c.oid = %s::regclass);
END
$cutover$`, literal(prefix), literal(t.quoted()))
	detach := fmt.Sprintf("ALTER TABLE %s DETACH PARTITION %s", parent.quoted(), t.quoted())
	reattach := fmt.Sprintf(`DO $cutover$
DECLARE
  saved jsonb;
  k record;
BEGIN
  SELECT substr(d, %d)::jsonb INTO saved FROM pg_catalog.obj_description(%s::regclass, 'pg_class') AS d WHERE left(d, %d) = %s;
  IF saved IS NULL THEN
    RAISE EXCEPTION 'the partition bound saved by the detach step is not in the comment of %%', %s;
  END IF;
  EXECUTE format('ALTER TABLE %%s ATTACH PARTITION %%s %%s', %s, %s, saved->>'bound');
  FOR k IN SELECT conname::text AS name FROM pg_catalog.pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'
      AND NOT conname::text = ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text(saved->'checks'))) LOOP
    EXECUTE format('ALTER TABLE %%s DROP CONSTRAINT %%I', %s, k.name);
  END LOOP;
  EXECUTE format('COMMENT ON TABLE %%s IS %%L', %s, saved->>'comment');
END
$cutover$`, len(prefix)+1, literal(t.quoted()), len(prefix), literal(prefix),
		literal(t.quoted()), literal(parent.quoted()), literal(t.quoted()), literal(t.quoted()), literal(t.quoted()), literal(t.quoted()))
	step := plans.Step{
		ID:       "detach-partition-" + t.Name,
		Summary:  fmt.Sprintf("Detach %s from %s, so its rows stop showing through %s and the final DROP does not lock %s (its bound is saved in its comment for the rollback)", t, parent, parent.Name, parent.Name),
		Rollback: reattach,
		Table:    parent.String(),
		Rewrite:  plans.ImpactNone,
		Hazards: []plans.Hazard{{Type: plans.HazardDeployBreakage,
			Message: fmt.Sprintf("from this step on %s no longer shows the rows of %s, and an INSERT into %s for that range fails unless a default partition takes it", parent, t.Name, parent.Name)}},
	}
	if concurrent {
		step.SQL = save + ";\n" + detach + " CONCURRENTLY"
		step.Lock = plans.LockShareUpdateExclusive
		step.Transactional = false
		step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardAccessExclusive,
			Message: fmt.Sprintf("DETACH ... CONCURRENTLY waits for every transaction using %s, then takes ACCESS EXCLUSIVE on the partition %s only (reads and writes of %s go on). PostgreSQL refuses it when %s has a default partition: then detach without CONCURRENTLY in a quiet moment. If it is interrupted, finish it with ALTER TABLE %s DETACH PARTITION %s FINALIZE",
				parent, t, parent, parent, parent.quoted(), t.quoted())})
	} else {
		step.SQL = save + ";\n" + detach
		step.Lock = plans.LockAccessExclusive
		step.Transactional = true
		step.Hazards = append(step.Hazards, aeHazard("DETACH PARTITION before PostgreSQL 14 (on the parent "+parent.String()+")"))
		b.warn("PostgreSQL %d.%d cannot detach a partition CONCURRENTLY: detaching %s takes ACCESS EXCLUSIVE on %s for an instant; it runs with a short lock_timeout.", b.schema.ServerVersion/10000, b.schema.ServerVersion%10000/100, t, parent)
	}
	b.add(stageContract, step)
	if tab.Partitioned {
		b.warn("%s is itself partitioned: its partitions are detached and dropped with it.", t)
	}
	return nil
}

// detachedPrefix starts the comment in which the detach step saves a
// partition's bound.
func detachedPrefix(parent relName) string {
	return "cutover: detached from " + parent.quoted() + " "
}

// shellQuote quotes a word for a POSIX shell: single quotes, in which
// nothing is special but the single quote itself.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
