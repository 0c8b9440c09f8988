package planner

import (
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// createIndex plans CREATE INDEX.
//
// The naive CREATE INDEX holds a SHARE lock on the table for the whole
// build: reads go on, but every INSERT, UPDATE and DELETE waits until the
// index is built, minutes on a big table. The plan:
//
//	expand   CREATE INDEX CONCURRENTLY, alone, outside a transaction block
//	         (SHARE UPDATE EXCLUSIVE: reads and writes go on; it scans the
//	         table twice). Its gate checks pg_index.indisvalid, because a
//	         failed or cancelled build leaves an INVALID index behind that
//	         IF NOT EXISTS would then silently accept. The rollback drops it
//	         concurrently.
//
// An unnamed index gets the name PostgreSQL would give it (<table>_<columns>_idx,
// numbered on a clash), so the rollback and the gate can name it.
//
// A partitioned table cannot build an index concurrently (PostgreSQL 15
// refuses). With a schema the plan follows the documented procedure:
// CREATE INDEX ... ON ONLY the parent (an invalid, empty shell, catalog
// only), CREATE INDEX CONCURRENTLY on each partition (reusing an equivalent
// valid index a partition already has, as the naive statement would), then
// ALTER INDEX ... ATTACH PARTITION for each; the parent index becomes valid
// once every partition is attached. Without a schema cutover cannot know
// the partitions and assumes the table is not partitioned.
//
// CREATE INDEX ... ON ONLY (the first step of that procedure, written by
// hand) is catalog-only on a partitioned table and passes through.
type createIndex struct {
	si    stmtInfo
	stmt  *pg_query.IndexStmt
	table relName

	// From the schema (nil without one).
	tab *schema.Table
	// exists is set when IF NOT EXISTS names an index that already exists.
	exists bool
}

func newCreateIndex(si stmtInfo, st *pg_query.IndexStmt) (operation, error) {
	if st.Relation == nil || st.Relation.Relname == "" {
		return nil, si.unsupported("CREATE INDEX without a table")
	}
	if len(st.IndexParams) == 0 {
		return nil, si.invalid("an index needs at least one column or expression")
	}
	return &createIndex{si: si, stmt: proto.Clone(st).(*pg_query.IndexStmt), table: rel(st.Relation)}, nil
}

func (op *createIndex) validate(s *schema.Schema) error {
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	if err := requireIndexColumns(op.si, tab, op.stmt); err != nil {
		return err
	}
	if name := op.stmt.Idxname; name != "" && relationExists(s, op.table.Schema, name) {
		if !op.stmt.IfNotExists {
			return op.si.invalid(fmt.Sprintf("a relation named %s already exists in schema %s; choose another index name", name, op.table.Schema))
		}
		op.exists = true
	}
	if tab.Partitioned && op.stmt.Relation.Inh {
		if err := requireLeafPartitions(op.si, s, tab); err != nil {
			return err
		}
	}
	op.tab = tab
	return nil
}

// requireIndexColumns checks that the columns an index names or uses in its
// expressions and predicate exist.
func requireIndexColumns(si stmtInfo, tab *schema.Table, st *pg_query.IndexStmt) error {
	var cols []string
	for _, n := range append(append([]*pg_query.Node{}, st.IndexParams...), st.IndexIncludingParams...) {
		ie := n.GetIndexElem()
		if ie == nil {
			continue
		}
		if ie.Name != "" {
			cols = append(cols, ie.Name)
		}
		cols = append(cols, columnRefNames(ie.Expr)...)
	}
	cols = append(cols, columnRefNames(st.WhereClause)...)
	for _, c := range cols {
		if _, err := requireColumn(si, tab, c); err != nil {
			return err
		}
	}
	return nil
}

// requireLeafPartitions refuses a partitioned table whose partitions are
// themselves partitioned: the partition-by-partition procedure would have
// to recurse, which cutover does not plan.
func requireLeafPartitions(si stmtInfo, s *schema.Schema, tab *schema.Table) error {
	for _, pk := range tab.Partitions {
		if p := s.Tables[pk]; p == nil || p.Partitioned {
			return si.unsupported(fmt.Sprintf("%s has sub-partitioned partition %s: cutover plans index builds on one level of partitions only", tab.Key(), pk))
		}
	}
	return nil
}

// naive: SHARE for the whole build (writes wait), unless CONCURRENTLY, or
// ON ONLY a partitioned table (catalog only).
func (op *createIndex) naive(ctx *naiveContext) asWritten {
	switch {
	case ctx.isNew(op.table) || op.exists:
		return asWritten{}
	case op.stmt.Concurrent:
		return safeLock(plans.LockShareUpdateExclusive, op.table)
	case !op.stmt.Relation.Inh && (op.tab == nil || op.tab.Partitioned):
		return safeLock(plans.LockShare, op.table)
	}
	a := asWritten{rule: RuleCreateIndex, lock: plans.LockShare, table: op.table, impact: plans.ImpactScan,
		held: "for the whole build: reads go on, but every INSERT, UPDATE and DELETE waits until the index is built",
		do:   "CREATE INDEX CONCURRENTLY, alone, outside a transaction block"}
	if op.tab != nil && op.tab.Partitioned {
		a.do = "a partitioned table cannot build an index CONCURRENTLY: create it ON ONLY the parent, CONCURRENTLY on each partition, then ATTACH each (`cutover plan`)"
	}
	return a
}

func (op *createIndex) plan(b *builder) error {
	if op.exists {
		b.warn("Index %s already exists, so CREATE INDEX IF NOT EXISTS does nothing; the plan has no step for it. Check that the existing index is valid and has the definition you want.", op.table.sibling(op.stmt.Idxname))
		return nil
	}
	b.touch(op.table)
	ix := proto.Clone(op.stmt).(*pg_query.IndexStmt)
	ix.Relation.Schemaname = op.table.Schema
	if ix.Idxname == "" {
		ix.Idxname = b.chooseName(relationName, op.table.Schema, op.table.Name,
			nameAddition(indexColumnNames(append(append([]*pg_query.Node{}, ix.IndexParams...), ix.IndexIncludingParams...))), "idx")
	} else {
		b.reserveName(relationName, op.table.Schema, ix.Idxname)
	}
	if b.isNew(op.table) {
		return op.planNew(b, ix)
	}
	// After a backfill of the table, or after the swap of a column an
	// earlier statement renames or changes the type of.
	st := later(b.dataStage(op.table), b.settledFrom(op.table, indexColumns(ix)...))
	if !ix.Relation.Inh && (op.tab == nil || op.tab.Partitioned) {
		if op.tab == nil {
			b.assume("%s is a partitioned table (CREATE INDEX ... ON ONLY was written): the index is created on the parent only, as an invalid shell, without a build.", op.table)
		}
		return b.indexOnOnly(st, op.table, ix)
	}
	if op.tab == nil {
		b.assume("%s is not a partitioned table (CREATE INDEX CONCURRENTLY fails on one); plan with a schema to have partitions handled.", op.table)
	}
	return b.buildIndex(st, op.table, op.tab, ix, "")
}

// planNew builds the index on a table created earlier in the input as
// written, in one step: there is nothing to build from, so a plain CREATE
// INDEX (which also covers a partitioned table's partitions) is instant.
func (op *createIndex) planNew(b *builder, ix *pg_query.IndexStmt) error {
	ix = proto.Clone(ix).(*pg_query.IndexStmt)
	ix.Concurrent = false
	ix.Relation.Schemaname = op.table.Schema
	sql, err := deparseStmt(&pg_query.Node{Node: &pg_query.Node_IndexStmt{IndexStmt: ix}})
	if err != nil {
		return fmt.Errorf("planner: deparse index %s: %w", ix.Idxname, err)
	}
	b.newTableStep(op.table, plans.Step{
		ID:       "create-index-" + ix.Idxname,
		Summary:  fmt.Sprintf("Create index %s on %s", ix.Idxname, op.table),
		SQL:      sql,
		Rollback: "DROP INDEX IF EXISTS " + op.table.sibling(ix.Idxname).quoted(),
		Lock:     plans.LockShare,
		Hazards: []plans.Hazard{{Type: plans.HazardBlocksWrites,
			Message: "takes SHARE on the new table while it builds an index over no rows"}},
	})
	return nil
}

// indexColumns lists the columns an index names or uses in its
// expressions, INCLUDE list and predicate.
func indexColumns(ix *pg_query.IndexStmt) []string {
	var cols []string
	for _, n := range append(append([]*pg_query.Node{}, ix.IndexParams...), ix.IndexIncludingParams...) {
		if ie := n.GetIndexElem(); ie != nil {
			if ie.Name != "" {
				cols = append(cols, ie.Name)
			}
			cols = append(cols, columnRefNames(ie.Expr)...)
		}
	}
	return append(cols, columnRefNames(ix.WhereClause)...)
}

// buildIndex adds the steps that build index ix (named) on table t without
// blocking writes: CREATE INDEX CONCURRENTLY, or, on a partitioned table
// (tab known and partitioned), the partition-by-partition procedure. why,
// when not empty, is added to the summaries (e.g. "for the foreign key").
func (b *builder) buildIndex(st stage, t relName, tab *schema.Table, ix *pg_query.IndexStmt, why string) error {
	if tab != nil && tab.Partitioned {
		return b.buildPartitionedIndex(st, t, tab, ix, why)
	}
	step, err := concurrentIndexStep(t, ix, why)
	if err != nil {
		return err
	}
	b.add(st, step)
	return nil
}

// concurrentIndexStep is the CREATE INDEX CONCURRENTLY step for ix on t.
func concurrentIndexStep(t relName, ix *pg_query.IndexStmt, why string) (plans.Step, error) {
	ix = proto.Clone(ix).(*pg_query.IndexStmt)
	ix.Concurrent = true
	ix.Relation = rangeVar(t)
	sql, err := deparseStmt(&pg_query.Node{Node: &pg_query.Node_IndexStmt{IndexStmt: ix}})
	if err != nil {
		return plans.Step{}, fmt.Errorf("planner: deparse index %s: %w", ix.Idxname, err)
	}
	name := t.sibling(ix.Idxname)
	summary := fmt.Sprintf("Build index %s on %s concurrently (reads and writes go on)", ix.Idxname, t)
	if why != "" {
		summary += ", " + why
	}
	hazards := []plans.Hazard{{Type: plans.HazardIndexBuild,
		Message: "builds the index concurrently: reads and writes go on, but it scans the table twice, uses I/O and waits for running transactions"}}
	if ix.Unique {
		hazards = append(hazards, plans.Hazard{Type: plans.HazardIndexBuild,
			Message: "a failed build (duplicate keys) leaves an INVALID unique index that still rejects duplicate writes until it is dropped; the rollback drops it"})
	}
	return plans.Step{
		ID:            "create-index-" + ix.Idxname,
		Summary:       summary,
		SQL:           sql,
		Rollback:      "DROP INDEX CONCURRENTLY IF EXISTS " + name.quoted(),
		Lock:          plans.LockShareUpdateExclusive,
		Table:         t.String(),
		Transactional: false,
		Rewrite:       plans.ImpactScan,
		Gate:          indexValidGate(name),
		Hazards:       hazards,
	}, nil
}

// indexOnOnly is the step creating ix on the partitioned parent only.
func (b *builder) indexOnOnly(st stage, t relName, ix *pg_query.IndexStmt) error {
	ix = proto.Clone(ix).(*pg_query.IndexStmt)
	ix.Concurrent = false
	ix.Relation = rangeVar(t)
	ix.Relation.Inh = false
	sql, err := deparseStmt(&pg_query.Node{Node: &pg_query.Node_IndexStmt{IndexStmt: ix}})
	if err != nil {
		return fmt.Errorf("planner: deparse index %s: %w", ix.Idxname, err)
	}
	b.add(st, plans.Step{
		ID:      "create-index-" + ix.Idxname + "-on-only",
		Summary: fmt.Sprintf("Create index %s on the partitioned table %s only: an invalid shell until every partition's index is attached (catalog only, no build)", ix.Idxname, t),
		SQL:     sql,
		// Dropping a partitioned index also drops the partition indexes
		// attached to it.
		Rollback:      "DROP INDEX IF EXISTS " + t.sibling(ix.Idxname).quoted(),
		Lock:          plans.LockShare,
		Table:         t.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards: []plans.Hazard{{Type: plans.HazardBlocksWrites,
			Message: "takes SHARE on the parent for an instant (no build: the parent holds no rows); writes through the parent queue behind it, so it runs with a short lock_timeout"}},
	})
	return nil
}

// buildPartitionedIndex plans the documented procedure for an index on a
// partitioned table: the parent index ON ONLY, each partition's index built
// concurrently (or an equivalent existing one reused), then all attached.
func (b *builder) buildPartitionedIndex(st stage, t relName, tab *schema.Table, ix *pg_query.IndexStmt, why string) error {
	if err := b.indexOnOnly(st, t, ix); err != nil {
		return err
	}
	cols := nameAddition(indexColumnNames(append(append([]*pg_query.Node{}, ix.IndexParams...), ix.IndexIncludingParams...)))
	var attach, reused, recreate []string
	for _, pk := range tab.Partitions {
		part := b.schema.Tables[pk]
		if part == nil {
			return fmt.Errorf("planner: partition %s of %s is not in the schema", pk, t)
		}
		prel := tableRel(part)
		// The model lists only partition indexes not attached to a parent
		// index: those PostgreSQL may attach instead of building one.
		child := ""
		for _, cix := range part.Indexes {
			if !cix.Valid || cix.Constraint != "" || b.marked("attached:"+prel.sibling(cix.Name).key()) {
				continue
			}
			same, err := equivalentIndex(cix.Definition, ix)
			if err != nil {
				return fmt.Errorf("planner: index %s: %w", cix.Name, err)
			}
			if same {
				child = cix.Name
				reused = append(reused, prel.sibling(child).String())
				recreate = append(recreate, cix.Definition)
				// An index attached here cannot be attached to a second
				// parent index later in the plan.
				b.mark("attached:" + prel.sibling(child).key())
				break
			}
		}
		if child == "" {
			child = b.chooseName(relationName, prel.Schema, prel.Name, cols, "idx")
			cix := proto.Clone(ix).(*pg_query.IndexStmt)
			cix.Idxname = child
			step, err := concurrentIndexStep(prel, cix, fmt.Sprintf("partition of %s", ix.Idxname))
			if err != nil {
				return err
			}
			b.add(st, step)
		}
		attach = append(attach, fmt.Sprintf("ALTER INDEX %s ATTACH PARTITION %s", t.sibling(ix.Idxname).quoted(), prel.sibling(child).quoted()))
	}
	parent := t.sibling(ix.Idxname)
	step := plans.Step{
		ID:            "attach-index-" + ix.Idxname,
		Summary:       fmt.Sprintf("Attach each partition's index to %s, which then becomes valid", ix.Idxname),
		SQL:           joinStatements(attach),
		Rollback:      "DROP INDEX IF EXISTS " + parent.quoted(),
		Lock:          plans.LockAccessExclusive,
		Table:         t.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Gate:          indexValidGate(parent),
		Hazards:       []plans.Hazard{aeHazard("ATTACH PARTITION (on each partition's new index, not on the tables: queries on a partition wait only while it is attached)")},
	}
	if why != "" {
		step.Summary += ", " + why
	}
	if len(attach) == 0 {
		// Without partitions the parent index is created valid.
		return nil
	}
	if len(reused) > 0 {
		// PostgreSQL cannot detach a partition index: dropping the parent
		// index drops the reused ones, which existed before the plan, with
		// it, so the rollback creates them again.
		step.Rollback = joinStatements(append([]string{step.Rollback}, recreate...))
		b.warn("Index %s reuses the equivalent existing index(es) %s instead of building new ones, as the naive CREATE INDEX would. PostgreSQL cannot detach them again: the rollback of the attach step drops %s with them and rebuilds them without CONCURRENTLY (writes to those partitions wait during each build).",
			parent, joinNames(reused), parent)
	}
	b.add(st, step)
	return nil
}

// equivalentIndex reports whether def (a canonical CREATE INDEX statement
// of the schema) builds the same index as ix, ignoring the names of the
// index and its table.
func equivalentIndex(def string, ix *pg_query.IndexStmt) (bool, error) {
	tree, err := parseOne(def)
	if err != nil {
		return false, err
	}
	other := tree.Stmts[0].Stmt.GetIndexStmt()
	if other == nil {
		return false, fmt.Errorf("not a CREATE INDEX statement: %q", short(def))
	}
	a, err := indexShape(other)
	if err != nil {
		return false, err
	}
	c, err := indexShape(ix)
	if err != nil {
		return false, err
	}
	return a == c, nil
}

// indexShape deparses an index with its name, table, and build options
// blanked out: two indexes with the same shape are interchangeable.
func indexShape(ix *pg_query.IndexStmt) (string, error) {
	ix = proto.Clone(ix).(*pg_query.IndexStmt)
	ix.Idxname = ""
	ix.Relation = &pg_query.RangeVar{Relname: "t", Inh: true, Relpersistence: "p"}
	ix.Concurrent = false
	ix.IfNotExists = false
	if ix.AccessMethod == "" {
		ix.AccessMethod = "btree"
	}
	return deparseStmt(&pg_query.Node{Node: &pg_query.Node_IndexStmt{IndexStmt: ix}})
}

// joinStatements joins statements of one transactional step.
func joinStatements(stmts []string) string {
	out := ""
	for i, s := range stmts {
		if i > 0 {
			out += ";\n"
		}
		out += s
	}
	return out
}

// joinNames joins names for prose.
func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}
