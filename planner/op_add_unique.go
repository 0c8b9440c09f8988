package planner

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// addUnique plans ALTER TABLE t ADD [CONSTRAINT name] UNIQUE (...) and
// ... PRIMARY KEY (...).
//
// The naive statement builds the constraint's unique index under ACCESS
// EXCLUSIVE: no read or write of the table for the whole build. A PRIMARY
// KEY on nullable columns also sets them NOT NULL, with a full scan under
// that same lock. The plan:
//
//	expand   (PRIMARY KEY on nullable columns: the SET NOT NULL sequence of
//	         notnull.go for each, with its NULL pre-check;)
//	         a read-only pre-check that no duplicate key exists (the build
//	         would fail on one after scanning the whole table);
//	         CREATE UNIQUE INDEX CONCURRENTLY under the constraint's name,
//	         gated on pg_index.indisvalid;
//	         ALTER TABLE ADD CONSTRAINT name UNIQUE / PRIMARY KEY USING INDEX
//	         name: ACCESS EXCLUSIVE for an instant, no build, no scan.
//
// The constraint gets the name the naive statement would give it
// (<table>_<columns>_key, <table>_pkey), and so does its index: PostgreSQL
// renames the index to the constraint's name anyway.
//
// The steps go to the migrate phase instead when an earlier statement of the
// input backfills the table (the data must be final before the build), and
// the VALIDATE / SET NOT NULL steps of the sequence always do.
//
// A partitioned table can neither build an index concurrently nor take a
// constraint USING INDEX. With a schema, the plan builds each partition's
// unique index concurrently and turns it into the partition's constraint
// (USING INDEX, named as PostgreSQL names them), then runs the naive
// ALTER TABLE on the parent, which then attaches those constraints instead
// of building anything (ACCESS EXCLUSIVE on the parent and partitions, for
// an instant).
//
// ADD CONSTRAINT ... USING INDEX written by hand is already the safe form
// and passes through (after the SET NOT NULL sequence for a primary key on
// nullable columns).
type addUnique struct {
	si      stmtInfo
	table   relName
	con     *pg_query.Constraint
	primary bool
	// keys and include are the key and INCLUDE columns (empty for USING INDEX
	// until the schema tells the index's columns).
	keys, include []string

	// From the schema (nil without one).
	tab *schema.Table
	// nullable lists the key columns of a primary key that are not yet
	// NOT NULL; without a schema every key column is assumed nullable.
	nullable []string
}

func newAddUnique(si stmtInfo, t relName, con *pg_query.Constraint, primary bool) (operation, error) {
	op := &addUnique{si: si, table: t, con: proto.Clone(con).(*pg_query.Constraint), primary: primary,
		keys: nameList(con.Keys), include: nameList(con.Including)}
	if con.Indexname == "" && len(op.keys) == 0 {
		return nil, si.invalid("the constraint names no column")
	}
	if con.SkipValidation {
		return nil, si.invalid("UNIQUE and PRIMARY KEY constraints cannot be NOT VALID")
	}
	return op, nil
}

func (op *addUnique) kind() string {
	if op.primary {
		return "PRIMARY KEY"
	}
	return "UNIQUE"
}

func (op *addUnique) validate(s *schema.Schema) error {
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	if name := op.con.Conname; name != "" {
		if tab.Constraint(name) != nil {
			return op.si.invalid(fmt.Sprintf("table %s already has a constraint named %s", op.table, name))
		}
		if name != op.con.Indexname && relationExists(s, op.table.Schema, name) {
			return op.si.invalid(fmt.Sprintf("a relation named %s already exists in schema %s, and the constraint's index would take that name; choose another constraint name", name, op.table.Schema))
		}
	}
	if op.primary {
		if pk := tab.PrimaryKey(); pk != nil {
			return op.si.invalid(fmt.Sprintf("table %s already has a primary key (%s); drop it first", op.table, pk.Name))
		}
	}
	if ixName := op.con.Indexname; ixName != "" {
		ix := tab.Index(ixName)
		if ix == nil {
			return op.si.invalid(fmt.Sprintf("index %s does not exist on table %s", ixName, op.table))
		}
		if !ix.Unique || !ix.Valid || ix.Constraint != "" || strings.Contains(ix.Definition, " WHERE ") {
			return op.si.invalid(fmt.Sprintf("index %s cannot back a constraint: it must be a valid, unique, non-partial index that backs no constraint yet", ixName))
		}
		op.keys = ix.Columns
	}
	for _, c := range append(append([]string{}, op.keys...), op.include...) {
		if c == "" {
			return op.si.invalid("an index on expressions cannot back a constraint")
		}
		col, err := requireColumn(op.si, tab, c)
		if err != nil {
			return err
		}
		if op.primary && !col.NotNull && containsString(op.keys, c) {
			op.nullable = append(op.nullable, c)
		}
	}
	if tab.Partitioned && op.con.Indexname == "" {
		if err := requireLeafPartitions(op.si, s, tab); err != nil {
			return err
		}
	}
	op.tab = tab
	return nil
}

// naive: builds the unique index under ACCESS EXCLUSIVE, unless USING
// INDEX; a primary key also proves its columns NOT NULL, with a scan
// unless they are (or a validated CHECK proves them).
func (op *addUnique) naive(ctx *naiveContext) asWritten {
	if ctx.isNew(op.table) {
		return asWritten{}
	}
	var scan []string
	for _, c := range op.nullable {
		if !ctx.notNullProven(op.table, c) {
			scan = append(scan, c)
		}
	}
	switch {
	case op.con.Indexname == "":
		return asWritten{rule: RuleAddUnique, lock: plans.LockAccessExclusive, table: op.table, impact: plans.ImpactScan,
			held: "while it builds the unique index (a primary key also scans for NULLs): no read or write of the table until it ends",
			do:   fmt.Sprintf("CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... %s USING INDEX, instant (`cutover plan`)", op.kind())}
	case len(scan) > 0:
		return asWritten{rule: RuleAddUnique, lock: plans.LockAccessExclusive, table: op.table, held: heldScan, impact: plans.ImpactScan,
			why: fmt.Sprintf("the primary key makes %s NOT NULL, which PostgreSQL proves by scanning the table", strings.Join(scan, ", ")),
			do:  "make the columns NOT NULL first through a validated CHECK (see CUT009), then add the primary key USING INDEX (`cutover plan`)"}
	}
	return safeLock(plans.LockAccessExclusive, op.table)
}

func (op *addUnique) plan(b *builder) error {
	b.touch(op.table)
	if op.tab == nil && op.primary {
		op.nullable = op.keys
		if len(op.keys) > 0 {
			b.assume("The primary key column(s) %s of %s may hold NULL, so the plan sets them NOT NULL first; if they already are NOT NULL, those steps change nothing, but their rollback would make them nullable.", strings.Join(op.keys, ", "), op.table)
		}
	}
	if op.tab == nil && op.con.Indexname == "" {
		b.assume("%s is not a partitioned table (CREATE INDEX CONCURRENTLY and USING INDEX fail on one); plan with a schema to have partitions handled.", op.table)
	}

	if b.isNew(op.table) {
		return op.planNew(b)
	}
	// After a backfill of the table, or after the swap of a column an
	// earlier statement renames or changes the type of.
	settled := b.settledFrom(op.table, append(append([]string{}, op.keys...), op.include...)...)
	ds := later(b.dataStage(op.table), settled)
	st := ds
	if len(op.nullable) > 0 {
		for _, c := range op.nullable {
			check := notNullCheckName(op.table, c)
			add, validate := notNullCheckSteps(op.table, c, check)
			b.add(ds, notNullPrecheck(op.table, c))
			b.add(ds, add)
			b.add(later(stageAfterBackfill, settled), validate)
			b.add(later(stageAfterBackfill, settled), setNotNullStep(b, op.table, c, check))
		}
		st = later(stageAfterBackfill, settled)
	}
	// A foreign key added later in the input waits for the key.
	b.keyReady(op.table, st)

	if op.con.Indexname != "" {
		return op.planUsingIndex(b, st)
	}

	name := op.con.Conname
	if name == "" {
		if op.primary {
			name = b.chooseName(constraintIndexName, op.table.Schema, op.table.Name, "", "pkey")
		} else {
			name = b.chooseName(constraintIndexName, op.table.Schema, op.table.Name, nameAddition(append(append([]string{}, op.keys...), op.include...)), "key")
		}
	} else {
		b.reserveName(constraintIndexName, op.table.Schema, name)
	}

	b.add(st, op.duplicatesPrecheck())
	if op.tab != nil && op.tab.Partitioned {
		return op.planPartitioned(b, st, name)
	}
	step, err := concurrentIndexStep(op.table, op.uniqueIndex(name), "to back the "+op.kind()+" constraint "+name)
	if err != nil {
		return err
	}
	b.add(st, step)
	return op.attachStep(b, st, name)
}

// planNew adds the constraint to a table created earlier in the input as
// written, in one step: its index build and NOT NULL check cover no row.
func (op *addUnique) planNew(b *builder) error {
	name := op.con.Conname
	switch {
	case name != "":
		b.reserveName(constraintIndexName, op.table.Schema, name)
	case op.con.Indexname != "":
		name = op.con.Indexname
	case op.primary:
		name = b.chooseName(constraintIndexName, op.table.Schema, op.table.Name, "", "pkey")
	default:
		name = b.chooseName(constraintIndexName, op.table.Schema, op.table.Name, nameAddition(append(append([]string{}, op.keys...), op.include...)), "key")
	}
	if op.primary && len(op.nullable) > 0 {
		b.warn("The PRIMARY KEY of %s also makes %s NOT NULL; the rollback of its step drops the key but leaves the columns NOT NULL.", op.table, strings.Join(op.nullable, ", "))
	}
	return b.newTableConstraint(op.table, op.con, name, op.kind())
}

// uniqueIndex is the CREATE UNIQUE INDEX statement building the constraint's
// index under name: same key and INCLUDE columns, NULLS NOT DISTINCT,
// storage parameters and tablespace as the constraint asks for.
func (op *addUnique) uniqueIndex(name string) *pg_query.IndexStmt {
	ix := &pg_query.IndexStmt{
		Idxname:          name,
		Relation:         rangeVar(op.table),
		AccessMethod:     "btree",
		TableSpace:       op.con.Indexspace,
		Options:          op.con.Options,
		Unique:           true,
		NullsNotDistinct: op.con.NullsNotDistinct,
	}
	for _, c := range op.keys {
		ix.IndexParams = append(ix.IndexParams, &pg_query.Node{Node: &pg_query.Node_IndexElem{IndexElem: &pg_query.IndexElem{
			Name: c, Ordering: pg_query.SortByDir_SORTBY_DEFAULT, NullsOrdering: pg_query.SortByNulls_SORTBY_NULLS_DEFAULT}}})
	}
	for _, c := range op.include {
		ix.IndexIncludingParams = append(ix.IndexIncludingParams, &pg_query.Node{Node: &pg_query.Node_IndexElem{IndexElem: &pg_query.IndexElem{
			Name: c, Ordering: pg_query.SortByDir_SORTBY_DEFAULT, NullsOrdering: pg_query.SortByNulls_SORTBY_NULLS_DEFAULT}}})
	}
	return ix
}

// usingIndex is the constraint clause UNIQUE / PRIMARY KEY USING INDEX index,
// named name, with the deferrability the user asked for.
func (op *addUnique) usingIndex(name, index string) *pg_query.Constraint {
	return &pg_query.Constraint{
		Contype:        op.con.Contype,
		Conname:        name,
		Indexname:      index,
		Deferrable:     op.con.Deferrable,
		Initdeferred:   op.con.Initdeferred,
		InitiallyValid: true,
	}
}

// duplicatesPrecheck is a read-only step whose gate stops the plan while
// duplicate keys exist. Rows with a NULL key column never collide, unless
// NULLS NOT DISTINCT (a primary key has none once NOT NULL).
func (op *addUnique) duplicatesPrecheck() plans.Step {
	t := op.table
	keys := identList(op.keys)
	where := ""
	if !op.primary && !op.con.NullsNotDistinct {
		var conds []string
		for _, c := range op.keys {
			conds = append(conds, ident(c)+" IS NOT NULL")
		}
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	q := fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM %s%s GROUP BY %s HAVING count(*) > 1) AS dup", t.quoted(), where, keys)
	return precheck("check-duplicates-"+strings.Join(op.keys, "-"),
		fmt.Sprintf("Check that no two rows of %s share a key (%s): the unique build would fail on one", t, strings.Join(op.keys, ", ")), t, q,
		fmt.Sprintf("no duplicate (%s) key in %s; if the gate counts some, remove or change the duplicates and run it again", strings.Join(op.keys, ", "), t),
		"reads and sorts the whole table (the key columns)")
}

// attachStep turns the index built under name into the constraint.
func (op *addUnique) attachStep(b *builder, st stage, name string) error {
	sql, err := addConstraintSQL(op.table, op.usingIndex(name, name))
	if err != nil {
		return fmt.Errorf("planner: deparse constraint %s: %w", name, err)
	}
	b.add(st, plans.Step{
		ID:      "add-constraint-" + name,
		Summary: fmt.Sprintf("Add %s constraint %s using the index just built (no build, no scan)", op.kind(), name),
		SQL:     sql,
		// Dropping the constraint drops its index too.
		Rollback:      dropConstraintSQL(op.table, name),
		Lock:          plans.LockAccessExclusive,
		Table:         op.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards:       []plans.Hazard{aeHazard("ADD CONSTRAINT ... USING INDEX")},
	})
	return nil
}

// planUsingIndex passes ADD CONSTRAINT ... USING INDEX through.
func (op *addUnique) planUsingIndex(b *builder, st stage) error {
	name := op.con.Conname
	if name == "" {
		name = op.con.Indexname
	}
	b.reserveName(constraintName, op.table.Schema, name)
	sql, err := addConstraintSQL(op.table, op.usingIndex(op.con.Conname, op.con.Indexname))
	if err != nil {
		return fmt.Errorf("planner: deparse constraint %s: %w", name, err)
	}
	summary := fmt.Sprintf("Add %s constraint %s using the existing index %s (no build, no scan)", op.kind(), name, op.con.Indexname)
	if name != op.con.Indexname {
		summary += "; the index is renamed to " + name
	}
	b.add(st, plans.Step{
		ID:            "add-constraint-" + name,
		Summary:       summary,
		SQL:           sql,
		Irreversible:  true,
		Lock:          plans.LockAccessExclusive,
		Table:         op.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards:       []plans.Hazard{aeHazard("ADD CONSTRAINT ... USING INDEX")},
		IrreversibleReason: fmt.Sprintf("dropping constraint %s would drop the index %s, which existed before the plan, with it; to undo, drop the constraint and rebuild the index concurrently",
			name, op.con.Indexname),
	})
	return nil
}

// planPartitioned builds each partition's constraint from a concurrently
// built index, then adds the parent's constraint, which attaches them.
func (op *addUnique) planPartitioned(b *builder, st stage, name string) error {
	label, addition := "key", nameAddition(append(append([]string{}, op.keys...), op.include...))
	if op.primary {
		label, addition = "pkey", ""
	}
	shape := op.uniqueIndex(name)
	for _, pk := range op.tab.Partitions {
		part := b.schema.Tables[pk]
		if part == nil {
			return fmt.Errorf("planner: partition %s of %s is not in the schema", pk, op.table)
		}
		prel := tableRel(part)
		if existing := matchingConstraintIndex(part, shape); existing != "" {
			b.warn("Partition %s already has the constraint-backed index %s matching %s: the parent's constraint attaches it, as the naive statement would.", prel, existing, name)
			continue
		}
		child := b.chooseName(constraintIndexName, prel.Schema, prel.Name, addition, label)
		cix := op.uniqueIndex(child)
		cix.Relation = rangeVar(prel)
		step, err := concurrentIndexStep(prel, cix, fmt.Sprintf("for partition %s of the %s constraint %s", prel, op.kind(), name))
		if err != nil {
			return err
		}
		b.add(st, step)
		sql, err := addConstraintSQL(prel, &pg_query.Constraint{Contype: op.con.Contype, Conname: child, Indexname: child,
			Deferrable: op.con.Deferrable, Initdeferred: op.con.Initdeferred, InitiallyValid: true})
		if err != nil {
			return fmt.Errorf("planner: deparse constraint %s: %w", child, err)
		}
		b.add(st, plans.Step{
			ID:            "add-constraint-" + child,
			Summary:       fmt.Sprintf("Make index %s the %s constraint of partition %s (no build, no scan)", child, op.kind(), prel),
			SQL:           sql,
			Rollback:      dropConstraintSQL(prel, child),
			Lock:          plans.LockAccessExclusive,
			Table:         prel.String(),
			Transactional: true,
			Rewrite:       plans.ImpactNone,
			Hazards:       []plans.Hazard{aeHazard("ADD CONSTRAINT ... USING INDEX")},
		})
	}
	con := proto.Clone(op.con).(*pg_query.Constraint)
	con.Conname = name
	sql, err := addConstraintSQL(op.table, con)
	if err != nil {
		return fmt.Errorf("planner: deparse constraint %s: %w", name, err)
	}
	b.add(st, plans.Step{
		ID:      "add-constraint-" + name,
		Summary: fmt.Sprintf("Add %s constraint %s to the partitioned table %s: it attaches every partition's constraint instead of building an index", op.kind(), name, op.table),
		SQL:     sql,
		// Dropping the parent's constraint drops the partitions'
		// constraints attached to it, and their indexes.
		Rollback:      dropConstraintSQL(op.table, name),
		Lock:          plans.LockAccessExclusive,
		Table:         op.table.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Gate:          indexValidGate(op.table.sibling(name)),
		Hazards:       []plans.Hazard{aeHazard("ADD CONSTRAINT on the parent (and on each partition)")},
	})
	return nil
}

// matchingConstraintIndex returns the name of a valid constraint-backed
// index of the partition with the same shape as ix, "" when none.
func matchingConstraintIndex(part *schema.Table, ix *pg_query.IndexStmt) string {
	for _, cix := range part.Indexes {
		if cix.Constraint == "" || !cix.Valid {
			continue
		}
		if same, err := equivalentIndex(cix.Definition, ix); err == nil && same {
			return cix.Name
		}
	}
	return ""
}
