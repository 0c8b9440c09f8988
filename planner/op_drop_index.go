package planner

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// dropIndex plans DROP INDEX [IF EXISTS] name [, ...].
//
// The naive DROP INDEX takes ACCESS EXCLUSIVE on the index's table: brief,
// but every query on the table queues behind it while it waits for running
// transactions. The plan, in the contract phase (dropping an index is a
// removal), one step per index:
//
//	contract DROP INDEX CONCURRENTLY [IF EXISTS] name, alone, outside a
//	         transaction block: SHARE UPDATE EXCLUSIVE, reads and writes go
//	         on while it waits for the transactions using the index.
//
// The rollback rebuilds the index with CREATE INDEX CONCURRENTLY from its
// definition in the schema; without a schema the definition is unknown and
// the step is marked irreversible.
//
// An index that backs a constraint (PRIMARY KEY, UNIQUE, EXCLUDE) cannot be
// dropped this way: drop the constraint instead. A partitioned table's
// index cannot be dropped concurrently: the plan drops it as written
// (ACCESS EXCLUSIVE on the table and its partitions, for an instant) and
// says so. CASCADE is not supported with CONCURRENTLY and is refused.
type dropIndex struct {
	si       stmtInfo
	names    []relName
	ifExists bool
	// concurrent is set when the input already says CONCURRENTLY.
	concurrent bool

	// From the schema, per name (nil entries when unknown).
	tabs    []*schema.Table
	indexes []*schema.Index
}

func newDropIndex(si stmtInfo, d *pg_query.DropStmt) (operation, error) {
	if d.Behavior == pg_query.DropBehavior_DROP_CASCADE {
		return nil, si.unsupported("DROP INDEX ... CASCADE cannot run CONCURRENTLY; drop what depends on the index first, then the index")
	}
	op := &dropIndex{si: si, ifExists: d.MissingOk, concurrent: d.Concurrent}
	for _, o := range d.Objects {
		r, err := objectRel(si, o.GetList().GetItems())
		if err != nil {
			return nil, err
		}
		op.names = append(op.names, r)
	}
	op.tabs = make([]*schema.Table, len(op.names))
	op.indexes = make([]*schema.Index, len(op.names))
	return op, nil
}

func (op *dropIndex) validate(s *schema.Schema) error {
	for i, n := range op.names {
		tab, ix := findIndex(s, n.Schema, n.Name)
		if ix == nil {
			if op.ifExists {
				continue
			}
			return op.si.invalid(fmt.Sprintf("index %s does not exist in the schema (a partition's index attached to a partitioned table's index is not listed, and cannot be dropped alone: drop the parent's index)", n))
		}
		if ix.Constraint != "" {
			return op.si.invalid(fmt.Sprintf("index %s backs constraint %s of table %s; drop the constraint instead (ALTER TABLE %s DROP CONSTRAINT %s)",
				n, ix.Constraint, tab.Key(), tableRel(tab).quoted(), ident(ix.Constraint)))
		}
		if fk := fkNeedingIndex(s, tab, ix); fk != nil {
			return op.si.invalid(fmt.Sprintf("foreign key %s of %s references the columns of unique index %s, the only unique index on them; drop or change the foreign key first", fk.Constraint.Name, fk.Table.Key(), n))
		}
		op.tabs[i], op.indexes[i] = tab, ix
	}
	return nil
}

// fkNeedingIndex returns a foreign key that references exactly the columns
// of unique index ix when no other unique key of the table covers them:
// PostgreSQL would refuse to drop the index the foreign key depends on.
func fkNeedingIndex(s *schema.Schema, tab *schema.Table, ix *schema.Index) *schema.FKRef {
	if !ix.Unique {
		return nil
	}
	for _, fk := range s.ReferencingForeignKeys(tab.Key()) {
		if !sameSet(fk.Constraint.RefColumns, ix.Columns) {
			continue
		}
		other := false
		for _, o := range tab.Indexes {
			if o.Name != ix.Name && o.Unique && o.Valid && sameSet(o.Columns, ix.Columns) {
				other = true
			}
		}
		if !other {
			return &fk
		}
	}
	return nil
}

// naive: ACCESS EXCLUSIVE on the index's table, unless CONCURRENTLY; a
// partitioned table's index can only be dropped that way.
func (op *dropIndex) naive(ctx *naiveContext) asWritten {
	var all []asWritten
	for i, n := range op.names {
		tab := op.tabs[i]
		if ctx.schema != nil && tab == nil {
			continue // absent (IF EXISTS)
		}
		a := asWritten{lock: plans.LockAccessExclusive, where: "the table of index " + n.String()}
		if tab != nil {
			a.table, a.where = tableRel(tab), ""
			if ctx.isNew(a.table) {
				continue
			}
		}
		switch {
		case op.concurrent:
			a.lock = plans.LockShareUpdateExclusive
		case tab == nil || !tab.Partitioned:
			a.rule, a.held = RuleDropIndex, heldInstant
			a.do = "DROP INDEX CONCURRENTLY, alone, outside a transaction block"
		}
		all = append(all, a)
	}
	return firstUnsafe(all...)
}

func (op *dropIndex) plan(b *builder) error {
	for i, n := range op.names {
		tab, ix := op.tabs[i], op.indexes[i]
		if b.schema != nil && ix == nil {
			b.warn("Index %s does not exist in the schema, so DROP INDEX IF EXISTS does nothing; the plan has no step for it.", n)
			continue
		}
		step := plans.Step{
			ID:            "drop-index-" + n.Name,
			Summary:       fmt.Sprintf("Drop index %s concurrently (reads and writes go on)", n),
			Lock:          plans.LockShareUpdateExclusive,
			Transactional: false,
			Rewrite:       plans.ImpactNone,
		}
		b.free("rel:"+n.key(), fmt.Sprintf("index %s is dropped in the contract phase", n))
		b.warn("Queries that use index %s get slower once it is dropped: check that nothing relies on it (pg_stat_user_indexes.idx_scan on the primary and every replica) before the contract phase.", n)
		ifExists := ""
		if op.ifExists {
			ifExists = "IF EXISTS "
		}
		step.SQL = "DROP INDEX CONCURRENTLY " + ifExists + n.quoted()
		if tab == nil {
			step.Irreversible = true
			step.IrreversibleReason = "without a schema cutover does not know the index's definition; plan with --schema or --db to get a rollback that rebuilds it"
			b.assume("Index %s is not a partitioned table's index and backs no constraint (DROP INDEX CONCURRENTLY fails on those).", n)
			b.add(stageContract, step)
			continue
		}
		t := tableRel(tab)
		b.touch(t)
		step.Table = t.String()
		def, err := rebuildIndexSQL(ix.Definition, !tab.Partitioned)
		if err != nil {
			return fmt.Errorf("planner: index %s: %w", n, err)
		}
		step.Rollback = def
		if tab.Partitioned {
			step.Summary = fmt.Sprintf("Drop index %s of the partitioned table %s (and its partitions' indexes): it cannot be dropped concurrently", n, t)
			step.SQL = "DROP INDEX " + ifExists + n.quoted()
			step.Lock = plans.LockAccessExclusive
			step.Transactional = true
			step.Hazards = append(step.Hazards, aeHazard("DROP INDEX on a partitioned table (on the table and every partition)"))
			b.warn("Index %s belongs to the partitioned table %s: PostgreSQL cannot drop it concurrently, so the plan drops it under ACCESS EXCLUSIVE (an instant, with lock_timeout). Its rollback rebuilds it without CONCURRENTLY, which blocks writes for the build.", n, t)
		}
		if ix.Unique {
			b.warn("Dropping unique index %s stops enforcing uniqueness of (%s) on %s.", n, strings.Join(ix.Columns, ", "), t)
		}
		if !ix.Valid {
			b.warn("Index %s is INVALID (a failed concurrent build): dropping it only removes dead weight; its rollback would rebuild it as a valid index.", n)
		}
		b.add(stageContract, step)
	}
	return nil
}

// rebuildIndexSQL turns a schema index definition into the statement that
// rebuilds it: CREATE INDEX CONCURRENTLY when concurrent, else as defined.
func rebuildIndexSQL(def string, concurrent bool) (string, error) {
	tree, err := parseOne(def)
	if err != nil {
		return "", err
	}
	ix := tree.Stmts[0].Stmt.GetIndexStmt()
	if ix == nil {
		return "", fmt.Errorf("not a CREATE INDEX statement: %q", short(def))
	}
	ix.Concurrent = concurrent
	ix.IfNotExists = false
	// A partitioned index is dumped ON ONLY the parent; rebuilt, it must
	// cover the partitions again.
	ix.Relation.Inh = true
	return pg_query.Deparse(tree)
}
