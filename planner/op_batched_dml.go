package planner

import (
	"fmt"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// batchedDML plans a large UPDATE t SET ... WHERE p, or DELETE FROM t
// WHERE p.
//
// Run as one statement, a big UPDATE or DELETE locks every row it touches
// until it commits (blocking the application's writes to them), writes all
// of its WAL at once (replica lag) and, if it fails late, rolls everything
// back. The plan is one batched step in the migrate phase: the backfill
// engine walks the table by its primary key (keyset batches, short
// transactions, throttled by replica lag and lock waiters, resumable). Each
// batch runs with the predicate of the rows that still need work, so a
// batch that is retried, or a run that is resumed, never applies the change
// twice:
//
//	UPDATE: (p) AND ((a IS DISTINCT FROM e) OR ...), so a row already set
//	        is skipped;
//	DELETE: p.
//
// The gate counts the rows still matching that predicate. That makes only
// statements whose batches are idempotent plannable, and the others are
// refused with the reason: SET expressions that read a column the statement
// assigns (SET n = n + 1) or that change between batches (now(), random(),
// nextval()); FROM / USING joins, WITH and RETURNING (rewrite them as
// subqueries in SET or WHERE EXISTS); SET (a, b) = ..., SET a = DEFAULT,
// and assignments to array elements or fields.
//
// Both are irreversible (the old values or rows are gone). With a schema
// the plan names the triggers each batch fires, and for a DELETE what the
// foreign keys referencing the table do (ON DELETE CASCADE deletes rows of
// other tables too).
type batchedDML struct {
	si     stmtInfo
	table  relName
	delete bool
	sets   []setItem
	where  *pg_query.Node

	tab *schema.Table
}

// setItem is one assignment col = expr of an UPDATE.
type setItem struct {
	col  string
	expr *pg_query.Node
}

// volatileFuncs are functions whose value differs between batches (or
// rows): an assignment using one cannot be checked as done.
var volatileFuncs = map[string]bool{
	"random": true, "clock_timestamp": true, "timeofday": true, "now": true,
	"statement_timestamp": true, "transaction_timestamp": true,
	"gen_random_uuid": true, "uuid_generate_v1": true, "uuid_generate_v1mc": true, "uuid_generate_v4": true,
	"nextval": true, "setval": true, "currval": true, "lastval": true,
	"txid_current": true, "pg_current_xact_id": true,
}

func newBatchedUpdate(si stmtInfo, st *pg_query.UpdateStmt) (operation, error) {
	st = proto.Clone(st).(*pg_query.UpdateStmt)
	switch {
	case st.WithClause != nil:
		return nil, si.unsupported("a WITH clause would run once per batch; inline it as a subquery")
	case len(st.FromClause) > 0:
		return nil, si.unsupported("UPDATE ... FROM cannot be batched by key; write the join as a correlated subquery in SET and WHERE EXISTS (...)")
	case len(st.ReturningList) > 0:
		return nil, si.unsupported("a batched UPDATE returns nothing to the caller; drop RETURNING")
	case !st.Relation.Inh:
		return nil, si.unsupported("UPDATE ONLY is not batched by cutover")
	}
	if err := refuseCurrentOf(si, st.WhereClause); err != nil {
		return nil, err
	}
	op := &batchedDML{si: si, table: rel(st.Relation), where: st.WhereClause}
	for _, n := range st.TargetList {
		rt := n.GetResTarget()
		if rt == nil {
			return nil, si.unsupported("unexpected SET item")
		}
		switch {
		case len(rt.Indirection) > 0:
			return nil, si.unsupported("assignments to array elements or fields cannot be checked as done per batch; assign the whole column")
		case rt.Val.GetMultiAssignRef() != nil:
			return nil, si.unsupported("SET (a, b) = ... cannot be batched; write one assignment per column")
		case rt.Val.GetSetToDefault() != nil:
			return nil, si.unsupported("SET col = DEFAULT cannot be checked as done per batch; write the default's value")
		}
		op.sets = append(op.sets, setItem{col: rt.Name, expr: rt.Val})
	}
	if st.Relation.Alias != nil {
		op.unalias(st.Relation.Alias.Aliasname)
	}
	for _, s := range op.sets {
		if fn := volatileIn(s.expr); fn != "" {
			return nil, si.unsupported(fmt.Sprintf("SET %s = ... uses %s, whose value changes between batches, so a batch cannot tell which rows are done; compute the value once and write it as a constant", s.col, fn))
		}
		for _, c := range columnRefNames(s.expr) {
			for _, a := range op.sets {
				if c == a.col {
					return nil, si.unsupported(fmt.Sprintf("SET %s = ... reads %s, which the statement assigns, so running a batch twice would apply it twice; batch it yourself with a marker column", s.col, c))
				}
			}
		}
	}
	return op, nil
}

func newBatchedDelete(si stmtInfo, st *pg_query.DeleteStmt) (operation, error) {
	st = proto.Clone(st).(*pg_query.DeleteStmt)
	switch {
	case st.WithClause != nil:
		return nil, si.unsupported("a WITH clause would run once per batch; inline it as a subquery")
	case len(st.UsingClause) > 0:
		return nil, si.unsupported("DELETE ... USING cannot be batched by key; write the join as WHERE EXISTS (SELECT 1 FROM ... WHERE ...)")
	case len(st.ReturningList) > 0:
		return nil, si.unsupported("a batched DELETE returns nothing to the caller; drop RETURNING")
	case !st.Relation.Inh:
		return nil, si.unsupported("DELETE FROM ONLY is not batched by cutover")
	}
	if err := refuseCurrentOf(si, st.WhereClause); err != nil {
		return nil, err
	}
	op := &batchedDML{si: si, table: rel(st.Relation), delete: true, where: st.WhereClause}
	if st.Relation.Alias != nil {
		op.unalias(st.Relation.Alias.Aliasname)
	}
	return op, nil
}

func refuseCurrentOf(si stmtInfo, where *pg_query.Node) error {
	if where.GetCurrentOfExpr() != nil {
		return si.unsupported("WHERE CURRENT OF needs a cursor and cannot be batched")
	}
	return nil
}

// unalias rewrites column references qualified by the statement's alias to
// use the table's name, since the batches do not use the alias.
func (op *batchedDML) unalias(alias string) {
	nodes := []*pg_query.Node{op.where}
	for _, s := range op.sets {
		nodes = append(nodes, s.expr)
	}
	for _, n := range nodes {
		if n == nil {
			continue
		}
		walk(n.ProtoReflect(), func(m protoreflect.Message) {
			if cr, ok := m.Interface().(*pg_query.ColumnRef); ok && len(cr.Fields) == 2 {
				if s := cr.Fields[0].GetString_(); s != nil && s.Sval == alias {
					s.Sval = op.table.Name
				}
			}
		})
	}
}

// volatileIn returns the first function in n whose value changes between
// batches, or "".
func volatileIn(n *pg_query.Node) string {
	found := ""
	if n == nil {
		return ""
	}
	walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if found != "" {
			return
		}
		switch x := m.Interface().(type) {
		case *pg_query.FuncCall:
			if len(x.Funcname) > 0 {
				name := x.Funcname[len(x.Funcname)-1].GetString_().GetSval()
				if volatileFuncs[strings.ToLower(name)] {
					found = name + "()"
				}
			}
		case *pg_query.SQLValueFunction:
			if x.Op >= pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE && x.Op <= pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N {
				found = "the current date or time"
			}
		}
	})
	return found
}

// hasSubquery reports whether n holds a subquery (whose column references
// may name other tables' columns).
func hasSubquery(n *pg_query.Node) bool {
	found := false
	if n != nil {
		walk(n.ProtoReflect(), func(m protoreflect.Message) {
			if _, ok := m.Interface().(*pg_query.SubLink); ok {
				found = true
			}
		})
	}
	return found
}

// noEquality lists column types without an equality operator: their
// assignments cannot be checked as done with IS DISTINCT FROM.
var noEquality = map[string]bool{"xml": true, "point": true, "line": true, "lseg": true, "box": true, "path": true, "polygon": true, "circle": true}

func (op *batchedDML) validate(s *schema.Schema) error {
	if s.Views[op.table.key()] != nil {
		return op.si.unsupported(fmt.Sprintf("%s is a view; batch the change on its table", op.table))
	}
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	for _, it := range op.sets {
		col, err := requireColumn(op.si, tab, it.col)
		if err != nil {
			return err
		}
		if col.Generated != "" {
			return op.si.invalid(fmt.Sprintf("column %s of %s is generated and cannot be assigned", it.col, op.table))
		}
		if noEquality[strings.TrimSuffix(col.Type, "[]")] {
			return op.si.unsupported(fmt.Sprintf("column %s has type %s, which has no equality operator, so a batch cannot tell whether a row is done", it.col, col.Type))
		}
	}
	// Without subqueries every column reference is the table's.
	nodes := []*pg_query.Node{op.where}
	for _, it := range op.sets {
		nodes = append(nodes, it.expr)
	}
	for _, n := range nodes {
		if hasSubquery(n) {
			continue
		}
		for _, c := range columnRefNames(n) {
			if _, err := requireColumn(op.si, tab, c); err != nil {
				return err
			}
		}
	}
	op.tab = tab
	return nil
}

// naive: one long transaction over every matching row.
func (op *batchedDML) naive(ctx *naiveContext) asWritten {
	if ctx.isNew(op.table) {
		return asWritten{}
	}
	return bulkDML(op.table)
}

// bulkDML is what a single UPDATE or DELETE of an existing table does; it
// also describes the ones cutover cannot batch (see dispatch.go).
func bulkDML(t relName) asWritten {
	return asWritten{rule: RuleBulkDML, lock: plans.LockRowExclusive, table: t,
		held:  "(reads and writes go on) and locks every row it changes until it commits: writes to those rows wait",
		why:   "one transaction writes all its WAL at once (replica lag) and rolls everything back if it fails late",
		extra: []plans.HazardType{plans.HazardHeavyWrite},
		do:    "run it in keyset batches of short transactions, outside the schema migration (`cutover plan` batches it)"}
}

func (op *batchedDML) plan(b *builder) error {
	b.touch(op.table)
	t := op.table
	where := ""
	if op.where != nil {
		w, err := deparseExpr(op.where)
		if err != nil {
			return fmt.Errorf("planner: WHERE of %s: %w", t, err)
		}
		where = w
		if fn := volatileIn(op.where); fn != "" {
			b.warn("The WHERE clause of the batched change of %s uses %s, which each batch evaluates at its own time: rows that start to match during the run are included too.", t, fn)
		}
	}

	var key, triggers []string
	event := "UPDATE"
	if op.delete {
		event = "DELETE"
	}
	if op.tab != nil {
		for _, c := range op.tab.BatchKey() {
			key = append(key, ident(c))
		}
		triggers = op.tab.TriggersOn(event)
		if len(key) == 0 {
			b.warn("%s has no primary key or unique NOT NULL key: the batched %s cannot walk it by key and will use ctid ranges, which is slower.", t, event)
		}
	} else {
		b.assume("%s has a primary key usable for keyset batching.", t)
		b.assume("%s has no %s trigger and, for a DELETE, no foreign key referencing it with ON DELETE CASCADE.", t, event)
	}

	var step plans.Step
	if op.delete {
		step = op.deleteStep(b, where, key, triggers)
	} else {
		s, err := op.updateStep(b, where, key, triggers)
		if err != nil {
			return err
		}
		step = s
	}
	if len(triggers) > 0 {
		step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardFiresTriggers,
			Message: fmt.Sprintf("fires %s trigger(s) %s on every row", event, strings.Join(triggers, ", "))})
		b.warn("The batched %s of %s fires its %s trigger(s) %s on every row; decide before running it whether they should fire (`SET session_replication_role = replica` skips them, for a role allowed to set it).", event, t, event, strings.Join(triggers, ", "))
	}
	b.batchedDML(t, step)
	return nil
}

// updateStep is the batched UPDATE: only rows matching the WHERE whose
// columns do not hold their new values yet.
func (op *batchedDML) updateStep(b *builder, where string, key, triggers []string) (plans.Step, error) {
	t := op.table
	var sets, differs, cols []string
	for _, it := range op.sets {
		e, err := deparseExpr(it.expr)
		if err != nil {
			return plans.Step{}, fmt.Errorf("planner: SET %s: %w", it.col, err)
		}
		sets = append(sets, fmt.Sprintf("%s = %s", ident(it.col), e))
		cmp := fmt.Sprintf("%s IS DISTINCT FROM (%s)", ident(it.col), e)
		if op.tab != nil {
			if c := op.tab.Column(it.col); c != nil && (c.Type == "json" || c.Type == "json[]") {
				// json has no equality operator: compare the text, as
				// stored, with the new value's.
				cmp = fmt.Sprintf("%s::text IS DISTINCT FROM ((%s)::%s)::text", ident(it.col), e, c.Type)
			}
		}
		differs = append(differs, cmp)
		cols = append(cols, it.col)
	}
	need := orJoin(differs)
	if where != "" {
		need = fmt.Sprintf("(%s) AND (%s)", where, need)
	}
	step := plans.Step{
		ID:                 "update-" + t.Name,
		Summary:            fmt.Sprintf("Update %s of %s in keyset batches, skipping rows already done", strings.Join(cols, ", "), t),
		SQL:                fmt.Sprintf("UPDATE %s SET %s WHERE %s", t.quoted(), strings.Join(sets, ", "), need),
		Irreversible:       true,
		IrreversibleReason: "the previous values are overwritten; to be able to restore them, copy the rows first (CREATE TABLE ... AS SELECT the key and the columns WHERE the same condition)",
		Lock:               plans.LockRowExclusive,
		Table:              t.String(),
		Transactional:      true,
		Rewrite:            plans.ImpactBatched,
		Gate: &plans.Gate{
			Description: fmt.Sprintf("no row of %s still needs the update (rows the application changes back during the run would show here)", t),
			SQL:         fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", t.quoted(), need),
		},
		Backfill: &plans.Backfill{Table: t.quoted(), Key: key, Set: sets, Where: need, Triggers: triggers},
		Hazards: []plans.Hazard{{Type: plans.HazardHeavyWrite,
			Message: "writes a new version of every matching row (WAL volume, replica lag, bloat); batched and throttled by cutover"}},
	}
	if b.schema != nil {
		for _, fk := range b.schema.ReferencingForeignKeys(t.key()) {
			if !overlaps(fk.Constraint.RefColumns, cols) {
				continue
			}
			if act := fkAction(fk.Constraint.Definition, false); act == "c" || act == "n" || act == "d" {
				step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardHeavyWrite,
					Message: fmt.Sprintf("changing the referenced key also updates the referencing rows of %s (foreign key %s, ON UPDATE %s)", fk.Table.Key(), fk.Constraint.Name, fkActionName(act))})
			}
		}
	}
	return step, nil
}

// deleteStep is the batched DELETE.
func (op *batchedDML) deleteStep(b *builder, where string, key, triggers []string) plans.Step {
	t := op.table
	need := where
	if need == "" {
		need = "true"
		b.warn("DELETE without WHERE removes every row of %s; batched, it keeps locks short, but TRUNCATE (ACCESS EXCLUSIVE for an instant, no WAL per row) may be what you want.", t)
	}
	step := plans.Step{
		ID:                 "delete-" + t.Name,
		Summary:            fmt.Sprintf("Delete the matching rows of %s in keyset batches", t),
		SQL:                fmt.Sprintf("DELETE FROM %s WHERE %s", t.quoted(), need),
		Irreversible:       true,
		IrreversibleReason: fmt.Sprintf("deleted rows are gone; to be able to restore them, copy them first (CREATE TABLE ... AS SELECT * FROM %s WHERE the same condition)", t.quoted()),
		Lock:               plans.LockRowExclusive,
		Table:              t.String(),
		Transactional:      true,
		Rewrite:            plans.ImpactBatched,
		Gate: &plans.Gate{
			Description: fmt.Sprintf("no row of %s matches the condition any more (rows the application inserts during the run would show here)", t),
			SQL:         fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", t.quoted(), need),
		},
		Backfill: &plans.Backfill{Table: t.quoted(), Key: key, Where: need, Delete: true, Triggers: triggers},
		Hazards: []plans.Hazard{
			{Type: plans.HazardDataLoss, Message: "deletes every matching row"},
			{Type: plans.HazardHeavyWrite, Message: "writes WAL for every deleted row and leaves dead rows for VACUUM; batched and throttled by cutover"},
		},
	}
	if b.schema == nil {
		return step
	}
	var blocking []string
	for _, fk := range b.schema.ReferencingForeignKeys(t.key()) {
		switch act := fkAction(fk.Constraint.Definition, true); act {
		case "c":
			step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardDataLoss,
				Message: fmt.Sprintf("ON DELETE CASCADE also deletes the referencing rows of %s (foreign key %s)", fk.Table.Key(), fk.Constraint.Name)})
			b.warn("Deleting rows of %s also deletes the rows of %s that reference them (foreign key %s, ON DELETE CASCADE).", t, fk.Table.Key(), fk.Constraint.Name)
		case "n", "d":
			step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardHeavyWrite,
				Message: fmt.Sprintf("ON DELETE %s also updates the referencing rows of %s (foreign key %s)", fkActionName(act), fk.Table.Key(), fk.Constraint.Name)})
		default:
			blocking = append(blocking, fmt.Sprintf("%s (%s)", fk.Table.Key(), fk.Constraint.Name))
		}
	}
	if len(blocking) > 0 {
		sort.Strings(blocking)
		b.warn("Rows of %s still referenced from %s cannot be deleted: a batch holding one fails. Delete or re-point the referencing rows first.", t, strings.Join(blocking, ", "))
	}
	return step
}

// fkAction returns a foreign key's ON DELETE (onDelete) or ON UPDATE action
// as PostgreSQL's one-letter code (a no action, r restrict, c cascade, n set
// null, d set default), read from its canonical definition.
func fkAction(def string, onDelete bool) string {
	tree, err := pg_query.Parse("ALTER TABLE t ADD " + def)
	if err != nil || len(tree.Stmts) != 1 {
		return "a"
	}
	at := tree.Stmts[0].Stmt.GetAlterTableStmt()
	if at == nil || len(at.Cmds) != 1 {
		return "a"
	}
	con := at.Cmds[0].GetAlterTableCmd().GetDef().GetConstraint()
	if con == nil {
		return "a"
	}
	act := con.FkUpdAction
	if onDelete {
		act = con.FkDelAction
	}
	if act == "" {
		return "a"
	}
	return act
}

func fkActionName(code string) string {
	switch code {
	case "c":
		return "CASCADE"
	case "n":
		return "SET NULL"
	case "d":
		return "SET DEFAULT"
	case "r":
		return "RESTRICT"
	}
	return "NO ACTION"
}

// overlaps reports whether the lists share a name.
func overlaps(a, b []string) bool {
	for _, x := range a {
		if containsString(b, x) {
			return true
		}
	}
	return false
}
