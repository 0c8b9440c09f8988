package planner

// Several statements in one input.
//
// The statements of an input build on each other: drop the views, then the
// table they read; add a column, then make it NOT NULL; drop a constraint,
// then add one of the same name; create a table, then index it. Each
// statement is therefore validated against the schema as the statements
// before it leave it (schema.Apply evolves a snapshot of the caller's
// schema, which is never changed), and each operation plans against the
// schema it was validated against (builder.schema). An ALTER TABLE with
// several subcommands is taken one subcommand at a time, as PostgreSQL
// mostly runs them.
//
// The plan does not run the statements in input order, though: an
// operation's steps go to the phases its change needs. Three consequences
// are handled here:
//
//   - A table created earlier in the input is new and empty, and no
//     release uses it yet: changes to it run as written, one step each,
//     right after its creation (see builder.isNew).
//   - A column renamed, or whose type is changed through a copy column,
//     earlier in the input gets its final form only in the contract
//     phase's swap: later changes of that column go after the swap, or are
//     refused where that cannot work (see builder.settledFrom).
//   - A name freed only in the contract phase (a table renamed aside, a
//     view, index or column dropped there) cannot be taken again by a step
//     that runs earlier: such input is refused with a clear reason (see
//     builder.free and builder.claim).

import (
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// plannedOp is an operation with what it is planned against.
type plannedOp struct {
	op operation
	si stmtInfo
	// schema is the schema the operation was validated against: the
	// input's schema as the statements before it leave it; nil without a
	// schema.
	schema *schema.Schema
	// created holds the keys of the tables created by earlier statements
	// of the input (shared between operations: never modified once
	// handed out).
	created map[string]bool
}

// unit is one statement, or one subcommand of an ALTER TABLE, with the
// statement it comes from.
type unit struct {
	si   stmtInfo
	node *pg_query.Node
}

// units splits the parsed input into the steps the schema evolves by.
func units(sql string, tree *pg_query.ParseResult) []unit {
	var out []unit
	for _, raw := range tree.Stmts {
		out = append(out, stmtUnits(sql, raw)...)
	}
	return out
}

// stmtUnits splits one statement: an ALTER TABLE into its subcommands.
func stmtUnits(sql string, raw *pg_query.RawStmt) []unit {
	si := stmtInfo{text: stmtText(sql, raw), line: stmtStartLine(sql, raw)}
	at := raw.Stmt.GetAlterTableStmt()
	if at == nil || at.Objtype != pg_query.ObjectType_OBJECT_TABLE || len(at.Cmds) < 2 {
		return []unit{{si, raw.Stmt}}
	}
	out := make([]unit, 0, len(at.Cmds))
	for _, c := range at.Cmds {
		out = append(out, unit{si, &pg_query.Node{Node: &pg_query.Node_AlterTableStmt{AlterTableStmt: oneCmd(at, c)}}})
	}
	return out
}

// prepare parses sql into operations, each validated (when s is not nil)
// against the schema as the statements before it leave it. s itself is
// never modified.
func prepare(sql string, s *schema.Schema) ([]plannedOp, error) {
	tree, err := parseInput(sql)
	if err != nil {
		return nil, err
	}
	us := units(sql, tree)
	cur := s
	created := map[string]bool{}
	var out []plannedOp
	for i, u := range us {
		ops, err := operationsFor(u.si, u.node, cur)
		if err != nil {
			return nil, err
		}
		for _, op := range ops {
			if cur != nil {
				if err := op.validate(cur); err != nil {
					return nil, err
				}
			}
			out = append(out, plannedOp{op: op, si: u.si, schema: cur, created: created})
		}
		if i == len(us)-1 {
			break
		}
		if cur != nil {
			// Apply never changes an object in place, so the snapshot the
			// operations above hold stays as they saw it.
			next := cur.Snapshot()
			if err := next.Apply(u.node); err != nil {
				return nil, u.si.unsupported("cutover cannot work out how this statement changes the schema for the statements after it (" + err.Error() + "); plan it on its own")
			}
			cur = next
		}
		created = createdAfter(created, u.node)
	}
	return out, nil
}

// createdAfter returns the set of tables created in the input once the
// statement has run: a new table (not CREATE TABLE AS, whose rows come
// from its query; a partition only when its parent is new too, since rows
// written to the parent land in it), renamed or dropped ones followed.
// The set passed in is not modified.
func createdAfter(created map[string]bool, n *pg_query.Node) map[string]bool {
	with := func(change func(m map[string]bool)) map[string]bool {
		m := make(map[string]bool, len(created)+1)
		for k := range created {
			m[k] = true
		}
		change(m)
		return m
	}
	switch st := n.Node.(type) {
	case *pg_query.Node_CreateStmt:
		cs := st.CreateStmt
		if cs.Partbound != nil && len(cs.InhRelations) == 1 && !created[rel(cs.InhRelations[0].GetRangeVar()).key()] {
			return created
		}
		if cs.IfNotExists {
			// It may have existed, with rows.
			return created
		}
		return with(func(m map[string]bool) { m[rel(cs.Relation).key()] = true })
	case *pg_query.Node_RenameStmt:
		r := st.RenameStmt
		if r.RenameType == pg_query.ObjectType_OBJECT_TABLE && created[rel(r.Relation).key()] {
			return with(func(m map[string]bool) {
				delete(m, rel(r.Relation).key())
				m[rel(r.Relation).sibling(r.Newname).key()] = true
			})
		}
	case *pg_query.Node_DropStmt:
		if st.DropStmt.RemoveType == pg_query.ObjectType_OBJECT_TABLE {
			return with(func(m map[string]bool) {
				for _, o := range st.DropStmt.Objects {
					if r, err := objectRel(stmtInfo{}, o.GetList().GetItems()); err == nil {
						delete(m, r.key())
					}
				}
			})
		}
	}
	return created
}

// isNew reports whether the table was created by an earlier statement of
// the input: it is empty and no release uses it yet, so changes to it can
// run as written.
func (b *builder) isNew(t relName) bool { return b.created[t.key()] }

// newTableStep adds the step of a change to a table created earlier in the
// input: the naive statement, in the expand phase right after the CREATE
// TABLE. Its lock harms nobody and its scan or build is instant.
func (b *builder) newTableStep(t relName, s plans.Step) {
	b.touch(t)
	s.Table = t.String()
	s.Transactional = true
	s.Rewrite = plans.ImpactNone
	s.Summary += fmt.Sprintf(" (%s is new and empty: run as written)", t)
	b.add(stageExpand, s)
	b.warn("%s is created by this plan, so the changes to it that follow its CREATE TABLE run as written, each in one step: on an empty table they lock nothing anyone uses and scan nothing. This assumes nothing else writes %s until the plan has finished (no release uses it yet).", t, t)
}

// swappedKey names a column in builder.swapped and builder.freed.
func columnKey(t relName, col string) string { return "col:" + t.key() + "." + col }

// swap records that an earlier operation gives the column its final form
// only in the contract phase's swap (a rename or a type change through a
// copy column): what the column is before then is a temporary copy or the
// old column.
func (b *builder) swap(t relName, col, why string) {
	if b.swapped == nil {
		b.swapped = map[string]string{}
	}
	b.swapped[columnKey(t, col)] = why
}

// settledFrom returns the earliest stage at which the columns of t have
// their final form: the contract stage when an earlier statement of the
// input swaps one of them in there (steps of that stage run in input
// order, so after the swap), else the expand stage.
func (b *builder) settledFrom(t relName, cols ...string) stage {
	for _, c := range cols {
		if _, ok := b.swapped[columnKey(t, c)]; ok {
			return stageContract
		}
	}
	return stageExpand
}

// requireSettled refuses an operation that cannot follow a swap of the
// column earlier in the input.
func (b *builder) requireSettled(si stmtInfo, t relName, what string, cols ...string) error {
	for _, c := range cols {
		if why, ok := b.swapped[columnKey(t, c)]; ok {
			return si.unsupported(fmt.Sprintf("column %s of %s is %s earlier in this input, which completes only in the contract phase; %s it in a plan of its own once that plan has run", c, t, why, what))
		}
	}
	return nil
}

// later returns st, or the settled stage when that comes later.
func later(st, settled stage) stage {
	if settled > st {
		return settled
	}
	return st
}

// free records that the plan removes a name only in a late stage: a
// relation ("rel:schema.name") or a column (columnKey), with what removes
// it, for the message should a later statement take the name again.
func (b *builder) free(key, what string) {
	if b.freed == nil {
		b.freed = map[string]string{}
	}
	b.freed[key] = what
}

// claim records that a step taking the name (a relation "rel:schema.name"
// or a column) comes before the step that frees it; Plan refuses the
// statement.
func (b *builder) claim(key, name string) {
	if what, ok := b.freed[key]; ok && b.conflict == "" {
		b.conflict = fmt.Sprintf("the name %s is still in use until the contract phase of this plan (%s), but this statement needs it earlier; plan the removal first, and this statement once that plan has run", name, what)
	}
}

// claimRelation claims a relation name of schema nsp.
func (b *builder) claimRelation(nsp, name string) {
	b.claim("rel:"+nsp+"."+name, nsp+"."+name)
}

// newTableConstraint adds ALTER TABLE t ADD CONSTRAINT name <con>, as
// written, as the one step of a constraint on a table created earlier in
// the input (see newTableStep): its check or index build covers no row.
func (b *builder) newTableConstraint(t relName, con *pg_query.Constraint, name, kind string) error {
	con = proto.Clone(con).(*pg_query.Constraint)
	con.Conname = name
	step := plans.Step{
		ID:       "add-constraint-" + name,
		Summary:  fmt.Sprintf("Add %s constraint %s", kind, name),
		Rollback: dropConstraintSQL(t, name),
		Lock:     plans.LockAccessExclusive,
		Hazards:  []plans.Hazard{aeHazard("ADD CONSTRAINT (on the new table)")},
	}
	if con.Contype == pg_query.ConstrType_CONSTR_FOREIGN {
		ref := rel(con.Pktable)
		con.Pktable = rangeVar(ref)
		step.Lock = plans.LockShareRowExclusive
		if !b.isNew(ref) {
			step.Hazards = []plans.Hazard{{Type: plans.HazardBlocksWrites,
				Message: fmt.Sprintf("takes SHARE ROW EXCLUSIVE on %s for an instant (the new table holds no row to check): writes to %s queue behind it, so it runs with a short lock_timeout", ref, ref)}}
		}
	}
	sql, err := addConstraintSQL(t, con)
	if err != nil {
		return fmt.Errorf("planner: deparse constraint %s: %w", name, err)
	}
	step.SQL = sql
	b.newTableStep(t, step)
	return nil
}

// keyReady records the stage at which a unique key of table t planned by
// this plan exists (a foreign key referencing it waits for it).
func (b *builder) keyReady(t relName, st stage) {
	if b.ready == nil {
		b.ready = map[string]stage{}
	}
	if st > b.ready[t.key()] {
		b.ready[t.key()] = st
	}
}
