package planner

import (
	"fmt"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// addForeignKey plans ALTER TABLE t ADD [CONSTRAINT name] FOREIGN KEY (cols)
// REFERENCES r (refcols).
//
// The naive statement takes SHARE ROW EXCLUSIVE on both tables and then
// checks every row of t against r: writes to both tables wait for the whole
// scan. The plan:
//
//	expand   (when no index of t leads with the key columns: CREATE INDEX
//	         CONCURRENTLY on them, so deletes and key updates on r do not
//	         scan t once the key exists; the naive statement does not create
//	         it, and a warning says so;)
//	         a read-only pre-check counting orphan rows (a LEFT JOIN
//	         anti-join: rows whose key is set but matches no row of r);
//	         ADD CONSTRAINT name FOREIGN KEY ... NOT VALID: SHARE ROW
//	         EXCLUSIVE on both tables for an instant, no scan; new writes are
//	         checked from then on;
//	migrate  VALIDATE CONSTRAINT name: SHARE UPDATE EXCLUSIVE on t and ROW
//	         SHARE on r while it scans: reads and writes go on.
//
// The constraint gets PostgreSQL's default name (<table>_<columns>_fkey).
// A key written NOT VALID stays so (no pre-check, no VALIDATE).
//
// PostgreSQL 15 cannot add a NOT VALID foreign key to a partitioned table.
// The plan then adds it validated in one step, after the pre-check, and
// says so: writes to both tables wait while every partition is scanned.
// (Adding NOT VALID keys to each partition first would leave the partitions
// with constraints named differently from what the naive statement creates.)
type addForeignKey struct {
	si            stmtInfo
	table, ref    relName
	con           *pg_query.Constraint
	cols, refCols []string

	// From the schema (nil without one).
	tab, refTab *schema.Table
	needIndex   bool
}

func newAddForeignKey(si stmtInfo, t relName, con *pg_query.Constraint) (operation, error) {
	if con.Pktable == nil {
		return nil, si.invalid("FOREIGN KEY without REFERENCES")
	}
	op := &addForeignKey{si: si, table: t, ref: rel(con.Pktable), con: proto.Clone(con).(*pg_query.Constraint),
		cols: nameList(con.FkAttrs), refCols: nameList(con.PkAttrs)}
	if len(op.refCols) > 0 && len(op.refCols) != len(op.cols) {
		return nil, si.invalid(fmt.Sprintf("the foreign key has %d column(s) but references %d", len(op.cols), len(op.refCols)))
	}
	return op, nil
}

func (op *addForeignKey) validate(s *schema.Schema) error {
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	refTab, err := requireTable(op.si, s, op.ref)
	if err != nil {
		return err
	}
	for _, c := range op.cols {
		if _, err := requireColumn(op.si, tab, c); err != nil {
			return err
		}
	}
	if len(op.refCols) == 0 {
		pk := refTab.PrimaryKey()
		if pk == nil {
			return op.si.invalid(fmt.Sprintf("table %s has no primary key to reference; name the referenced columns", op.ref))
		}
		op.refCols = pk.Columns
		if len(op.refCols) != len(op.cols) {
			return op.si.invalid(fmt.Sprintf("the foreign key has %d column(s) but the primary key of %s has %d", len(op.cols), op.ref, len(op.refCols)))
		}
	}
	for _, c := range op.refCols {
		if _, err := requireColumn(op.si, refTab, c); err != nil {
			return err
		}
	}
	if !uniqueKeyOn(refTab, op.refCols) {
		return op.si.invalid(fmt.Sprintf("columns (%s) of %s have no PRIMARY KEY or UNIQUE constraint, which a foreign key needs; add one first", strings.Join(op.refCols, ", "), op.ref))
	}
	if name := op.con.Conname; name != "" && tab.Constraint(name) != nil {
		return op.si.invalid(fmt.Sprintf("table %s already has a constraint named %s", op.table, name))
	}
	if tab.Partitioned && op.con.SkipValidation {
		return op.si.invalid("PostgreSQL cannot add a NOT VALID foreign key to a partitioned table; leave out NOT VALID and cutover plans it")
	}
	if tab.Partitioned {
		if err := requireLeafPartitions(op.si, s, tab); err != nil {
			return err
		}
	}
	op.needIndex = !leadingIndex(tab, op.cols)
	if op.needIndex && tab.Partitioned && len(tab.Partitions) > 0 {
		all := true
		for _, pk := range tab.Partitions {
			if p := s.Tables[pk]; p == nil || !leadingIndex(p, op.cols) {
				all = false
			}
		}
		op.needIndex = !all
	}
	op.tab, op.refTab = tab, refTab
	return nil
}

// leadingIndex reports whether a valid, non-partial index of t has the
// columns, in any order, as its leading columns.
func leadingIndex(t *schema.Table, cols []string) bool {
	for _, ix := range t.Indexes {
		if !ix.Valid || strings.Contains(ix.Definition, " WHERE ") || len(ix.Columns) < len(cols) {
			continue
		}
		if sameSet(ix.Columns[:len(cols)], cols) {
			return true
		}
	}
	return false
}

// naive: SHARE ROW EXCLUSIVE on both tables while every row is checked,
// unless NOT VALID (then for an instant).
func (op *addForeignKey) naive(ctx *naiveContext) asWritten {
	switch {
	case ctx.isNew(op.table) && ctx.isNew(op.ref):
		return asWritten{}
	case ctx.isNew(op.table):
		// Nothing to check, but the referenced table is locked.
		return safeLock(plans.LockShareRowExclusive, op.ref)
	case op.con.SkipValidation:
		return safeLock(plans.LockShareRowExclusive, op.table)
	}
	a := asWritten{rule: RuleAddForeignKey, lock: plans.LockShareRowExclusive, table: op.table, impact: plans.ImpactScan,
		held: fmt.Sprintf("and on %s while it checks every row: writes to both tables wait until it ends", op.ref),
		do:   "add it NOT VALID (instant; index the referencing columns concurrently first if none leads with them), then VALIDATE CONSTRAINT in a later transaction (`cutover plan`)"}
	if op.tab != nil && op.tab.Partitioned {
		a.do = "PostgreSQL cannot add it NOT VALID to a partitioned table: pre-check for orphan rows and add it in a quiet moment (`cutover plan` writes the pre-check)"
	}
	return a
}

func (op *addForeignKey) plan(b *builder) error {
	b.touch(op.table)
	b.touch(op.ref)
	t, r := op.table, op.ref
	name := op.con.Conname
	if name == "" {
		name = b.chooseName(constraintName, t.Schema, t.Name, nameAddition(op.cols), "fkey")
	} else {
		b.reserveName(constraintName, t.Schema, name)
	}
	if b.isNew(t) {
		return op.planNew(b, name)
	}
	ds := b.dataStage(t)
	if b.dataStage(r) == stageAfterBackfill {
		ds = stageAfterBackfill
	}
	// After the swap of a column an earlier statement renames or changes
	// the type of, and once a key of r an earlier statement adds exists.
	settled := later(b.settledFrom(t, op.cols...), b.settledFrom(r, op.refCols...))
	ds = later(later(ds, settled), b.ready[r.key()])

	if op.tab == nil {
		b.assume("%s has an index whose leading columns are (%s); without one, every DELETE on %s and every update of its key scans %s. Add it with CREATE INDEX CONCURRENTLY if it is missing.", t, strings.Join(op.cols, ", "), r, t)
		b.assume("%s is not a partitioned table (PostgreSQL cannot add a NOT VALID foreign key to one).", t)
	}
	// A second foreign key on the same columns in this plan uses the index
	// the first one builds.
	if op.needIndex && !b.mark("index leading with:"+t.key()+":"+strings.Join(sortedCopy(op.cols), ",")) {
		idx := b.chooseName(relationName, t.Schema, t.Name, nameAddition(op.cols), "idx")
		ix := &pg_query.IndexStmt{Idxname: idx, Relation: rangeVar(t), AccessMethod: "btree"}
		for _, c := range op.cols {
			ix.IndexParams = append(ix.IndexParams, &pg_query.Node{Node: &pg_query.Node_IndexElem{IndexElem: &pg_query.IndexElem{
				Name: c, Ordering: pg_query.SortByDir_SORTBY_DEFAULT, NullsOrdering: pg_query.SortByNulls_SORTBY_NULLS_DEFAULT}}})
		}
		if err := b.buildIndex(ds, t, op.tab, ix, "for the foreign key "+name); err != nil {
			return err
		}
		b.warn("Index %s on %s (%s) is added for foreign key %s: without it every DELETE on %s and every update of its key scans %s. The naive statement does not create it; drop it if you do not want it.",
			idx, t, strings.Join(op.cols, ", "), name, r, t)
	}

	validate := !op.con.SkipValidation
	if validate {
		if len(op.refCols) > 0 {
			b.add(ds, op.orphanPrecheck(name))
		} else {
			b.assume("REFERENCES %s without a column list means its primary key; the plan cannot count orphan rows before validating without knowing those columns (VALIDATE fails cleanly if there are any).", r)
		}
	}

	partitioned := op.tab != nil && op.tab.Partitioned
	if partitioned {
		sql, err := op.addSQL(name, false)
		if err != nil {
			return fmt.Errorf("planner: deparse foreign key %s: %w", name, err)
		}
		b.add(ds, plans.Step{
			ID:            "add-foreign-key-" + name,
			Summary:       fmt.Sprintf("Add foreign key %s from %s to %s, validated at once: a partitioned table cannot take it NOT VALID", name, t, r),
			SQL:           sql,
			Rollback:      dropConstraintSQL(t, name),
			Lock:          plans.LockShareRowExclusive,
			Table:         t.String(),
			Transactional: true,
			Rewrite:       plans.ImpactScan,
			Hazards: []plans.Hazard{
				{Type: plans.HazardBlocksWrites, Message: fmt.Sprintf("holds SHARE ROW EXCLUSIVE on %s (and its partitions) and on %s while every partition is scanned: writes to both wait", t, r)},
				{Type: plans.HazardTableScan, Message: "scans every partition to check each row against " + r.String()},
			},
		})
		b.warn("%s is partitioned, and PostgreSQL 15 cannot add a NOT VALID foreign key to a partitioned table: foreign key %s is added and validated in one step, which blocks writes to %s and %s while it scans. Run it in a quiet period.", t, name, t, r)
		return nil
	}

	sql, err := op.addSQL(name, true)
	if err != nil {
		return fmt.Errorf("planner: deparse foreign key %s: %w", name, err)
	}
	b.add(ds, plans.Step{
		ID:            "add-foreign-key-" + name,
		Summary:       fmt.Sprintf("Add foreign key %s from %s to %s NOT VALID: checked for new writes, existing rows not scanned", name, t, r),
		SQL:           sql,
		Rollback:      dropConstraintSQL(t, name),
		Lock:          plans.LockShareRowExclusive,
		Table:         t.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards: []plans.Hazard{{Type: plans.HazardBlocksWrites,
			Message: fmt.Sprintf("takes SHARE ROW EXCLUSIVE on %s and on %s for an instant: writes to both queue behind it, so it runs with a short lock_timeout", t, r)}},
	})
	if !validate {
		b.warn("Foreign key %s on %s was written NOT VALID, so the plan does not validate it: existing rows are not checked until VALIDATE CONSTRAINT %s runs.", name, t, name)
		return nil
	}
	b.add(later(stageAfterBackfill, ds), plans.Step{
		ID:            "validate-" + name,
		Summary:       fmt.Sprintf("Validate foreign key %s: scans %s while reads and writes go on (ROW SHARE on %s)", name, t, r),
		SQL:           validateConstraintSQL(t, name),
		Rollback:      noUndo("validation changes no data"),
		Lock:          plans.LockShareUpdateExclusive,
		Table:         t.String(),
		Transactional: true,
		Rewrite:       plans.ImpactScan,
		Hazards: []plans.Hazard{{Type: plans.HazardTableScan,
			Message: fmt.Sprintf("scans %s under SHARE UPDATE EXCLUSIVE (and %s under ROW SHARE): reads and writes go on, other DDL and autovacuum wait", t, r)}},
	})
	return nil
}

// addSQL is ALTER TABLE t ADD CONSTRAINT name FOREIGN KEY (...) REFERENCES
// r (...) ..., NOT VALID when notValid: the tables schema-qualified and
// quoted, so the statement means the same whatever the search_path, and
// every other clause of the input (MATCH, ON DELETE, ON UPDATE,
// DEFERRABLE) deparsed from its parse tree. The clauses are cut from the
// deparsed form of a synthetic statement whose head cutover writes itself
// ("... FOREIGN KEY (a) REFERENCES r (b)"), the same way schema's
// canonical forms are made.
func (op *addForeignKey) addSQL(name string, notValid bool) (string, error) {
	con := proto.Clone(op.con).(*pg_query.Constraint)
	con.Conname = "n"
	con.FkAttrs = []*pg_query.Node{pg_query.MakeStrNode("a")}
	con.Pktable = &pg_query.RangeVar{Relname: "r", Inh: true, Relpersistence: "p"}
	con.PkAttrs = nil
	synthetic := "ALTER TABLE x ADD CONSTRAINT n FOREIGN KEY (a) REFERENCES r"
	head := fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s", op.table.quoted(), ident(name), identList(op.cols), op.ref.quoted())
	if len(op.refCols) > 0 {
		con.PkAttrs = []*pg_query.Node{pg_query.MakeStrNode("b")}
		synthetic += " (b)"
		head += " (" + identList(op.refCols) + ")"
	}
	con.SkipValidation, con.InitiallyValid = notValid, !notValid
	full, err := addConstraintSQL(relName{Name: "x"}, con)
	if err != nil {
		return "", fmt.Errorf("planner: deparse foreign key %s: %w", name, err)
	}
	tail, ok := strings.CutPrefix(full, synthetic)
	if !ok {
		return "", fmt.Errorf("planner: deparse foreign key %s: unexpected %q", name, full)
	}
	return head + tail, nil
}

// planNew adds the foreign key to a table created earlier in the input as
// written, in one step: there is no row to check. The index that makes
// deletes on the referenced table cheap is added the same way, as for an
// existing table.
func (op *addForeignKey) planNew(b *builder, name string) error {
	t, r := op.table, op.ref
	if op.needIndex && !b.mark("index leading with:"+t.key()+":"+strings.Join(sortedCopy(op.cols), ",")) {
		idx := b.chooseName(relationName, t.Schema, t.Name, nameAddition(op.cols), "idx")
		b.newTableStep(t, plans.Step{
			ID:       "create-index-" + idx,
			Summary:  fmt.Sprintf("Create index %s on %s (%s), for the foreign key %s", idx, t, strings.Join(op.cols, ", "), name),
			SQL:      fmt.Sprintf("CREATE INDEX %s ON %s (%s)", ident(idx), t.quoted(), identList(op.cols)),
			Rollback: "DROP INDEX IF EXISTS " + t.sibling(idx).quoted(),
			Lock:     plans.LockShare,
			Hazards: []plans.Hazard{{Type: plans.HazardBlocksWrites,
				Message: "takes SHARE on the new table while it builds an index over no rows"}},
		})
		b.warn("Index %s on %s (%s) is added for foreign key %s: without it every DELETE on %s and every update of its key scans %s. The naive statement does not create it; drop it if you do not want it.",
			idx, t, strings.Join(op.cols, ", "), name, r, t)
	}
	sql, err := op.addSQL(name, op.con.SkipValidation)
	if err != nil {
		return err
	}
	step := plans.Step{
		ID:       "add-foreign-key-" + name,
		Summary:  fmt.Sprintf("Add foreign key %s from %s to %s", name, t, r),
		SQL:      sql,
		Rollback: dropConstraintSQL(t, name),
		Lock:     plans.LockShareRowExclusive,
	}
	if !b.isNew(r) {
		step.Hazards = []plans.Hazard{{Type: plans.HazardBlocksWrites,
			Message: fmt.Sprintf("takes SHARE ROW EXCLUSIVE on %s for an instant (the new table holds no row to check): writes to %s queue behind it, so it runs with a short lock_timeout", r, r)}}
	}
	b.newTableStep(t, step)
	return nil
}

// orphanPrecheck is a read-only step whose gate counts the rows of t whose
// key matches no row of r (a LEFT JOIN anti-join). With MATCH SIMPLE (the
// default) a row with any NULL key column is not checked; with MATCH FULL
// only a row whose key columns are all NULL is exempt.
func (op *addForeignKey) orphanPrecheck(name string) plans.Step {
	var on, set []string
	for i, c := range op.cols {
		on = append(on, fmt.Sprintf("p.%s = c.%s", ident(op.refCols[i]), ident(c)))
		set = append(set, fmt.Sprintf("c.%s IS NOT NULL", ident(c)))
	}
	checked := strings.Join(set, " AND ")
	if op.con.FkMatchtype == "f" && len(set) > 1 {
		checked = "(" + strings.Join(set, " OR ") + ")"
	}
	q := fmt.Sprintf("SELECT count(*) FROM %s AS c LEFT JOIN %s AS p ON %s WHERE %s AND p.%s IS NULL",
		op.table.quoted(), op.ref.quoted(), strings.Join(on, " AND "), checked, ident(op.refCols[0]))
	return precheck("check-orphans-"+name,
		fmt.Sprintf("Count the rows of %s whose (%s) matches no row of %s", op.table, strings.Join(op.cols, ", "), op.ref), op.table, q,
		fmt.Sprintf("no row of %s references a missing row of %s; if the gate counts some, fix or delete them and run it again", op.table, op.ref),
		fmt.Sprintf("reads the whole of %s and joins it to %s", op.table, op.ref))
}

// sortedCopy returns the names sorted, leaving the list as it is.
func sortedCopy(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out
}
