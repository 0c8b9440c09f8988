package planner

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// passthrough is a statement that is already safe as written: it becomes one
// expand step, with the lock it takes described and, wherever the inverse
// is obvious, a real rollback:
//
//	CREATE TABLE / VIEW / SEQUENCE / TYPE / DOMAIN / FUNCTION / SCHEMA /
//	EXTENSION, CREATE TABLE AS, CREATE MATERIALIZED VIEW
//	                  DROP ... IF EXISTS of what was created; irreversible
//	                  when IF NOT EXISTS or OR REPLACE may have met an
//	                  existing object (dropping it would destroy what was
//	                  there before), unless the schema has the old view;
//	RENAME of an index, constraint, view or sequence
//	                  the rename back;
//	DROP CONSTRAINT   the constraint added again from its schema definition;
//	VALIDATE CONSTRAINT
//	                  nothing to undo.
//
// Locks: creating something new locks nothing anyone uses, except CREATE
// TABLE ... PARTITION OF (ACCESS EXCLUSIVE on the parent) and REFERENCES
// to an existing table (SHARE ROW EXCLUSIVE on it, for an instant).
type passthrough struct {
	si      stmtInfo
	node    *pg_query.Node
	sql     string
	class   passthroughClass
	table   relName
	summary string

	// From the schema.
	exists  bool               // the IF NOT EXISTS / IF EXISTS target makes it a no-op
	dropped *schema.Constraint // DROP CONSTRAINT: the constraint dropped
	oldView *schema.View       // CREATE OR REPLACE VIEW: the view replaced
	index   *schema.Table      // RENAME of an index: its table
}

type passthroughClass int

const (
	// passthroughNew creates something new (CREATE TABLE, CREATE VIEW...):
	// nothing else uses it yet, so its locks harm nobody.
	passthroughNew passthroughClass = iota
	// passthroughBriefAE is a catalog-only change under ACCESS EXCLUSIVE
	// (rename an index or constraint, drop a constraint).
	passthroughBriefAE
	// passthroughValidate is VALIDATE CONSTRAINT (SHARE UPDATE EXCLUSIVE, scan).
	passthroughValidate
)

func newPassthrough(si stmtInfo, n *pg_query.Node, class passthroughClass, table relName) (operation, error) {
	sql, err := deparseStmt(n)
	if err != nil {
		return nil, si.unsupported("cannot re-emit this statement: " + err.Error())
	}
	if table.Name == "" {
		if ctas := n.GetCreateTableAsStmt(); ctas != nil && ctas.Into != nil {
			table = rel(ctas.Into.Rel)
		}
		if seq := n.GetCreateSeqStmt(); seq != nil {
			table = rel(seq.Sequence)
		}
	}
	return &passthrough{si: si, node: proto.Clone(n).(*pg_query.Node), sql: sql, class: class, table: table, summary: short(sql)}, nil
}

// dropConstraintCmd returns the DROP CONSTRAINT subcommand of the
// statement, or nil.
func (op *passthrough) dropConstraintCmd() *pg_query.AlterTableCmd {
	at := op.node.GetAlterTableStmt()
	if at == nil || at.Objtype != pg_query.ObjectType_OBJECT_TABLE || len(at.Cmds) != 1 {
		return nil
	}
	cmd := at.Cmds[0].GetAlterTableCmd()
	if cmd == nil || cmd.Subtype != pg_query.AlterTableType_AT_DropConstraint {
		return nil
	}
	return cmd
}

func (op *passthrough) validate(s *schema.Schema) error {
	switch op.class {
	case passthroughNew:
		return op.validateCreate(s)
	case passthroughValidate:
		tab, err := requireTable(op.si, s, op.table)
		if err != nil {
			return err
		}
		if cmd := op.node.GetAlterTableStmt().GetCmds()[0].GetAlterTableCmd(); cmd != nil && tab.Constraint(cmd.Name) == nil {
			return op.si.invalid(fmt.Sprintf("table %s has no constraint named %s", op.table, cmd.Name))
		}
		return nil
	}
	if r := op.node.GetRenameStmt(); r != nil {
		return op.validateRename(s, r)
	}
	if cmd := op.dropConstraintCmd(); cmd != nil {
		tab, err := requireTable(op.si, s, op.table)
		if err != nil {
			return err
		}
		c := tab.Constraint(cmd.Name)
		if c == nil {
			if cmd.MissingOk {
				op.exists = true
				return nil
			}
			return op.si.invalid(fmt.Sprintf("table %s has no constraint named %s", op.table, cmd.Name))
		}
		if (c.Type == schema.PrimaryKey || c.Type == schema.Unique) && cmd.Behavior != pg_query.DropBehavior_DROP_CASCADE {
			for _, fk := range s.ReferencingForeignKeys(tab.Key()) {
				if sameSet(fk.Constraint.RefColumns, c.Columns) {
					return op.si.invalid(fmt.Sprintf("foreign key %s of %s depends on constraint %s; drop it first (or use CASCADE)", fk.Constraint.Name, fk.Table.Key(), c.Name))
				}
			}
		}
		op.dropped = c
		return nil
	}
	if op.table.Name != "" && s.Table(op.table.Schema, op.table.Name) != nil {
		_, err := requireTable(op.si, s, op.table)
		return err
	}
	return nil
}

// validateCreate refuses to create a relation whose name is taken, unless
// IF NOT EXISTS (then the statement does nothing) or OR REPLACE of a view.
func (op *passthrough) validateCreate(s *schema.Schema) error {
	ifNotExists := false
	switch st := op.node.Node.(type) {
	case *pg_query.Node_CreateStmt:
		ifNotExists = st.CreateStmt.IfNotExists
		if st.CreateStmt.Partbound != nil && len(st.CreateStmt.InhRelations) == 1 {
			parent := rel(st.CreateStmt.InhRelations[0].GetRangeVar())
			pt, err := requireTable(op.si, s, parent)
			if err != nil {
				return err
			}
			if !pt.Partitioned {
				return op.si.invalid(fmt.Sprintf("table %s is not partitioned", parent))
			}
		}
	case *pg_query.Node_CreateSeqStmt:
		ifNotExists = st.CreateSeqStmt.IfNotExists
	case *pg_query.Node_CreateTableAsStmt:
		ifNotExists = st.CreateTableAsStmt.IfNotExists
	case *pg_query.Node_ViewStmt:
		if st.ViewStmt.Replace {
			if v := s.Views[op.table.key()]; v != nil {
				op.oldView = v
				return nil
			}
		}
	default:
		return nil
	}
	if op.table.Name == "" || !relationExists(s, op.table.Schema, op.table.Name) {
		return nil
	}
	if ifNotExists {
		op.exists = true
		return nil
	}
	return op.si.invalid(fmt.Sprintf("a relation named %s already exists in schema %s", op.table.Name, op.table.Schema))
}

// validateRename checks the renamed object exists and the new name is free.
func (op *passthrough) validateRename(s *schema.Schema, r *pg_query.RenameStmt) error {
	target := rel(r.Relation)
	switch r.RenameType {
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		tab, err := requireTable(op.si, s, target)
		if err != nil {
			return err
		}
		if tab.Constraint(r.Subname) == nil {
			return op.si.invalid(fmt.Sprintf("table %s has no constraint named %s", target, r.Subname))
		}
		if tab.Constraint(r.Newname) != nil {
			return op.si.invalid(fmt.Sprintf("table %s already has a constraint named %s", target, r.Newname))
		}
		return nil
	case pg_query.ObjectType_OBJECT_INDEX:
		tab, ix := findIndex(s, target.Schema, target.Name)
		if ix == nil {
			return op.si.invalid(fmt.Sprintf("index %s does not exist in the schema", target))
		}
		op.index = tab
	case pg_query.ObjectType_OBJECT_VIEW:
		if s.Views[target.key()] == nil {
			return op.si.invalid(fmt.Sprintf("view %s does not exist in the schema", target))
		}
	}
	if relationExists(s, target.Schema, r.Newname) {
		return op.si.invalid(fmt.Sprintf("a relation named %s already exists in schema %s", r.Newname, target.Schema))
	}
	return nil
}

// naive: what each passthrough statement locks. Creating something new
// locks nothing anyone uses, but PARTITION OF locks the parent and
// REFERENCES the referenced table; renaming a view or sequence breaks the
// releases that use the old name; SET TABLESPACE rewrites.
func (op *passthrough) naive(ctx *naiveContext) asWritten {
	switch op.class {
	case passthroughValidate:
		return safeLock(plans.LockShareUpdateExclusive, op.table)
	case passthroughNew:
		if op.exists {
			return asWritten{}
		}
		if cs := op.node.GetCreateStmt(); cs != nil {
			if cs.Partbound != nil && len(cs.InhRelations) == 1 {
				if parent := rel(cs.InhRelations[0].GetRangeVar()); !ctx.isNew(parent) {
					return safeLock(plans.LockAccessExclusive, parent)
				}
				return asWritten{}
			}
			for _, r := range referencedTables(op.node) {
				if !ctx.isNew(r) {
					return safeLock(plans.LockShareRowExclusive, r)
				}
			}
		}
		if vs := op.node.GetViewStmt(); vs != nil && vs.Replace && (op.oldView != nil || ctx.schema == nil) {
			return safeLock(plans.LockAccessExclusive, op.table)
		}
		return asWritten{}
	}
	if ctx.isNew(op.table) || op.exists {
		return asWritten{}
	}
	if r := op.node.GetRenameStmt(); r != nil {
		switch r.RenameType {
		case pg_query.ObjectType_OBJECT_INDEX:
			a := safeLock(plans.LockShareUpdateExclusive, op.table)
			if op.index != nil {
				a.table = tableRel(op.index)
			}
			return a
		case pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_SEQUENCE:
			kind := strings.ToLower(strings.TrimPrefix(r.RenameType.String(), "OBJECT_"))
			return asWritten{rule: RuleRenameRelation, lock: plans.LockAccessExclusive, table: op.table, held: heldInstant,
				breaks: fmt.Sprintf("every running release that still uses the %s %s fails from the moment it commits", kind, op.table),
				do:     fmt.Sprintf("release the application that uses %s first, or keep both names meanwhile (a view over the renamed one)", r.Newname)}
		}
	}
	if at := op.node.GetAlterTableStmt(); at != nil {
		for _, c := range at.Cmds {
			if cmd := c.GetAlterTableCmd(); cmd != nil && cmd.Subtype == pg_query.AlterTableType_AT_SetTableSpace {
				return rewriteUnderLock(op.table, plans.LockAccessExclusive, "SET TABLESPACE copies the whole relation", "move it with an online tool (pg_repack --tablespace) instead")
			}
		}
	}
	return safeLock(plans.LockAccessExclusive, op.table)
}

func (op *passthrough) plan(b *builder) error {
	step := plans.Step{
		ID:            "run",
		Summary:       op.summary,
		SQL:           op.sql,
		Transactional: true,
		Rewrite:       plans.ImpactNone,
	}
	if op.table.Name != "" {
		step.Table = op.table.String()
	}
	var err error
	switch op.class {
	case passthroughNew:
		if op.exists {
			b.warn("%s already exists, so %q does nothing; the plan has no step for it.", op.table, op.summary)
			return nil
		}
		if op.table.Name != "" && op.oldView == nil && op.node.GetCreateEnumStmt() == nil && op.node.GetCreateDomainStmt() == nil {
			// A name an earlier statement frees only in the contract
			// phase (multistatement.go).
			b.claimRelation(op.table.Schema, op.table.Name)
		}
		err = op.createStep(b, &step)
	case passthroughBriefAE:
		if op.exists {
			b.warn("The constraint does not exist, so %q does nothing; the plan has no step for it.", op.summary)
			return nil
		}
		err = op.alterStep(b, &step)
	case passthroughValidate:
		step.ID = "validate"
		if cmd := op.node.GetAlterTableStmt().GetCmds()[0].GetAlterTableCmd(); cmd != nil {
			step.ID = "validate-" + cmd.Name
		}
		step.Lock = plans.LockShareUpdateExclusive
		step.Rewrite = plans.ImpactScan
		step.Rollback = noUndo("validation changes no data and needs no undo")
		step.Hazards = []plans.Hazard{{Type: plans.HazardTableScan, Message: "scans the table; reads and writes go on (SHARE UPDATE EXCLUSIVE; a foreign key also takes ROW SHARE on the referenced table)"}}
		b.touch(op.table)
	default:
		err = fmt.Errorf("planner: unknown passthrough class %d", op.class)
	}
	if err != nil {
		return err
	}
	if step.Rollback == "" && !step.Irreversible {
		return fmt.Errorf("planner: passthrough step %s has no rollback", step.ID)
	}
	b.add(stageExpand, step)
	return nil
}

// irreversible marks the step irreversible with the reason.
func irreversible(step *plans.Step, reason string) {
	step.Rollback = ""
	step.Irreversible = true
	step.IrreversibleReason = reason
}

// createStep fills the step of a CREATE statement: its id, lock and inverse.
func (op *passthrough) createStep(b *builder, step *plans.Step) error {
	step.Lock = plans.LockNone
	const mayExist = "with IF NOT EXISTS the object may have existed before, and dropping it would destroy it; drop the new object by hand if needed"
	dropIfExists := func(kind, name string) { step.Rollback = "DROP " + kind + " IF EXISTS " + name }
	switch st := op.node.Node.(type) {
	case *pg_query.Node_CreateStmt:
		cs := st.CreateStmt
		step.ID = "create-table-" + op.table.Name
		dropIfExists("TABLE", op.table.quoted())
		if cs.IfNotExists {
			irreversible(step, mayExist)
		}
		if cs.Partbound != nil && len(cs.InhRelations) == 1 {
			parent := rel(cs.InhRelations[0].GetRangeVar())
			step.Lock = plans.LockAccessExclusive
			step.Table = parent.String()
			step.Summary = fmt.Sprintf("Create %s as a partition of %s", op.table, parent)
			step.Hazards = append(step.Hazards, aeHazard("CREATE TABLE ... PARTITION OF (on the parent)"))
			b.touch(parent)
		} else if refs := referencedTables(op.node); len(refs) > 0 {
			step.Lock = plans.LockShareRowExclusive
			step.Table = refs[0].String()
			step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardBlocksWrites,
				Message: fmt.Sprintf("its foreign key(s) take SHARE ROW EXCLUSIVE on %s for an instant (the new table is empty: nothing to check); writes to it queue behind, so it runs with a short lock_timeout", joinRels(refs))})
		}
	case *pg_query.Node_ViewStmt:
		step.ID = "create-view-" + op.table.Name
		dropIfExists("VIEW", op.table.quoted())
		if st.ViewStmt.Replace {
			switch {
			case op.oldView != nil:
				old, err := replaceViewSQL(op.oldView)
				if err != nil {
					return fmt.Errorf("planner: %w", err)
				}
				step.Rollback = old
				step.Lock = plans.LockAccessExclusive
				step.Hazards = append(step.Hazards, aeHazard("CREATE OR REPLACE VIEW (on the view)"))
			case b.schema == nil:
				irreversible(step, "CREATE OR REPLACE may replace an existing view whose definition cutover does not know without a schema")
			}
		}
	case *pg_query.Node_CreateSeqStmt:
		step.ID = "create-sequence-" + op.table.Name
		dropIfExists("SEQUENCE", op.table.quoted())
		if st.CreateSeqStmt.IfNotExists {
			irreversible(step, mayExist)
		}
	case *pg_query.Node_CreateEnumStmt:
		name, err := objectRel(op.si, st.CreateEnumStmt.TypeName)
		if err != nil {
			return err
		}
		step.ID = "create-type-" + name.Name
		dropIfExists("TYPE", name.quoted())
	case *pg_query.Node_CompositeTypeStmt:
		name := rel(st.CompositeTypeStmt.Typevar)
		step.ID = "create-type-" + name.Name
		dropIfExists("TYPE", name.quoted())
	case *pg_query.Node_CreateDomainStmt:
		name, err := objectRel(op.si, st.CreateDomainStmt.Domainname)
		if err != nil {
			return err
		}
		step.ID = "create-domain-" + name.Name
		dropIfExists("DOMAIN", name.quoted())
	case *pg_query.Node_CreateFunctionStmt:
		f := st.CreateFunctionStmt
		step.ID = "create-function-" + nameList(f.Funcname)[len(f.Funcname)-1]
		if f.Replace {
			irreversible(step, "CREATE OR REPLACE FUNCTION may replace an existing function whose previous body cutover does not know")
			break
		}
		drop, err := dropFunctionSQL(f)
		if err != nil {
			return fmt.Errorf("planner: %w", err)
		}
		step.Rollback = drop
	case *pg_query.Node_CreateSchemaStmt:
		cs := st.CreateSchemaStmt
		step.ID = "create-schema-" + cs.Schemaname
		dropIfExists("SCHEMA", ident(cs.Schemaname))
		switch {
		case cs.IfNotExists:
			irreversible(step, mayExist)
		case len(cs.SchemaElts) > 0 || cs.Schemaname == "":
			irreversible(step, "the schema is created with objects in it; drop it by hand (DROP SCHEMA ... CASCADE) if needed")
		}
	case *pg_query.Node_CreateExtensionStmt:
		ce := st.CreateExtensionStmt
		step.ID = "create-extension-" + ce.Extname
		dropIfExists("EXTENSION", ident(ce.Extname))
		if ce.IfNotExists {
			irreversible(step, mayExist)
		}
	case *pg_query.Node_CreateTableAsStmt:
		ctas := st.CreateTableAsStmt
		kind := "TABLE"
		if ctas.Objtype == pg_query.ObjectType_OBJECT_MATVIEW {
			kind = "MATERIALIZED VIEW"
		}
		step.ID = "create-" + strings.ToLower(kind) + "-" + op.table.Name
		dropIfExists(kind, op.table.quoted())
		if ctas.IfNotExists {
			irreversible(step, mayExist)
		}
		step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardTableScan,
			Message: "runs its query once, reading the tables it selects from (ACCESS SHARE: reads and writes go on)"})
	case *pg_query.Node_CommentStmt:
		step.ID = "comment"
		irreversible(step, "the previous comment is not known; set it again by hand if needed")
	default:
		step.ID = "create"
		irreversible(step, "cutover does not generate the inverse of this statement")
	}
	return nil
}

// referencedTables lists the tables the foreign keys of a CREATE TABLE
// reference.
func referencedTables(n *pg_query.Node) []relName {
	var out []relName
	walk(n.ProtoReflect(), func(m protoreflect.Message) {
		if c, ok := m.Interface().(*pg_query.Constraint); ok && c.Contype == pg_query.ConstrType_CONSTR_FOREIGN && c.Pktable != nil {
			r := rel(c.Pktable)
			for _, x := range out {
				if x == r {
					return
				}
			}
			out = append(out, r)
		}
	})
	return out
}

func joinRels(rs []relName) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.String()
	}
	return strings.Join(names, ", ")
}

// replaceViewSQL is CREATE OR REPLACE VIEW with a view's schema definition.
func replaceViewSQL(v *schema.View) (string, error) {
	tree, err := parseOne(v.Definition)
	if err != nil {
		return "", fmt.Errorf("view %s: %w", v.Key(), err)
	}
	return deparseStmt(&pg_query.Node{Node: &pg_query.Node_ViewStmt{ViewStmt: &pg_query.ViewStmt{
		View:            rangeVar(relName{v.Schema, v.Name}),
		Query:           tree.Stmts[0].Stmt,
		Replace:         true,
		WithCheckOption: pg_query.ViewCheckOption_NO_CHECK_OPTION,
	}}})
}

// dropFunctionSQL is DROP FUNCTION IF EXISTS f(argument types) for a
// CREATE FUNCTION (or PROCEDURE): the types of the IN, INOUT and VARIADIC
// parameters identify it.
func dropFunctionSQL(f *pg_query.CreateFunctionStmt) (string, error) {
	owa := &pg_query.ObjectWithArgs{Objname: f.Funcname}
	for _, p := range f.Parameters {
		fp := p.GetFunctionParameter()
		if fp == nil {
			continue
		}
		switch fp.Mode {
		case pg_query.FunctionParameterMode_FUNC_PARAM_OUT, pg_query.FunctionParameterMode_FUNC_PARAM_TABLE:
			continue
		}
		owa.Objargs = append(owa.Objargs, &pg_query.Node{Node: &pg_query.Node_TypeName{TypeName: fp.ArgType}})
	}
	kind := pg_query.ObjectType_OBJECT_FUNCTION
	if f.IsProcedure {
		kind = pg_query.ObjectType_OBJECT_PROCEDURE
	}
	return deparseStmt(&pg_query.Node{Node: &pg_query.Node_DropStmt{DropStmt: &pg_query.DropStmt{
		Objects:    []*pg_query.Node{{Node: &pg_query.Node_ObjectWithArgs{ObjectWithArgs: owa}}},
		RemoveType: kind,
		Behavior:   pg_query.DropBehavior_DROP_RESTRICT,
		MissingOk:  true,
	}}})
}

// alterStep fills the step of a brief ACCESS EXCLUSIVE statement: renames,
// DROP CONSTRAINT, ALTER INDEX / VIEW / SEQUENCE.
func (op *passthrough) alterStep(b *builder, step *plans.Step) error {
	step.ID = "alter"
	step.Lock = plans.LockAccessExclusive
	step.Hazards = []plans.Hazard{aeHazard("this statement")}
	irreversible(step, "cutover does not generate the inverse of this statement")

	if r := op.node.GetRenameStmt(); r != nil {
		return op.renameStep(b, step, r)
	}
	if cmd := op.dropConstraintCmd(); cmd != nil {
		b.touch(op.table)
		step.ID = "drop-constraint-" + cmd.Name
		step.Hazards = []plans.Hazard{aeHazard("DROP CONSTRAINT")}
		if op.dropped == nil {
			irreversible(step, "without a schema cutover does not know the constraint's definition; plan with --schema or --db to get a rollback that adds it again")
			return nil
		}
		c := op.dropped
		step.Rollback = fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", op.table.quoted(), ident(c.Name), c.Definition)
		if !c.Valid {
			step.Rollback += " NOT VALID"
		}
		step.Irreversible, step.IrreversibleReason = false, ""
		if c.Type == schema.ForeignKey {
			step.Summary += fmt.Sprintf(" (also takes SHARE ROW EXCLUSIVE on %s)", c.RefTable)
		}
		if c.Type != schema.Check || !c.Valid {
			b.warn("The rollback of dropping constraint %s adds it again from its definition: that scans %s (and builds an index for PRIMARY KEY / UNIQUE) under lock; prefer the safe plan (cutover plan the ADD CONSTRAINT) if it must be restored on a busy table.", c.Name, op.table)
		} else {
			b.warn("The rollback of dropping CHECK constraint %s adds it again validated: that scans %s under ACCESS EXCLUSIVE.", c.Name, op.table)
		}
		return nil
	}
	b.touch(op.table)
	if at := op.node.GetAlterTableStmt(); at != nil {
		for _, c := range at.Cmds {
			if cmd := c.GetAlterTableCmd(); cmd != nil && cmd.Subtype == pg_query.AlterTableType_AT_SetTableSpace {
				step.Rewrite = plans.ImpactRewrite
				step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardTableRewrite,
					Message: "SET TABLESPACE copies the whole relation while holding ACCESS EXCLUSIVE"})
			}
		}
	}
	return nil
}

// renameStep fills the step of a RENAME of an index, constraint, view or
// sequence; its rollback renames back.
func (op *passthrough) renameStep(b *builder, step *plans.Step, r *pg_query.RenameStmt) error {
	back := proto.Clone(r).(*pg_query.RenameStmt)
	target := rel(r.Relation)
	switch r.RenameType {
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		back.Subname, back.Newname = r.Newname, r.Subname
		step.ID = "rename-constraint-" + r.Newname
		b.touch(target)
	default:
		b.claimRelation(target.Schema, r.Newname)
		back.Relation = rangeVar(target.sibling(r.Newname))
		back.Newname = target.Name
		step.ID = "rename-" + strings.ToLower(strings.TrimPrefix(r.RenameType.String(), "OBJECT_")) + "-" + r.Newname
	}
	sql, err := deparseStmt(&pg_query.Node{Node: &pg_query.Node_RenameStmt{RenameStmt: back}})
	if err != nil {
		return fmt.Errorf("planner: deparse rename: %w", err)
	}
	step.Rollback = sql
	step.Irreversible, step.IrreversibleReason = false, ""
	switch r.RenameType {
	case pg_query.ObjectType_OBJECT_INDEX:
		// Since PostgreSQL 12 renaming an index takes SHARE UPDATE EXCLUSIVE.
		step.Lock = plans.LockShareUpdateExclusive
		step.Hazards = nil
		if op.index != nil {
			step.Table = tableRel(op.index).String()
		}
	case pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_SEQUENCE:
		kind := strings.ToLower(strings.TrimPrefix(r.RenameType.String(), "OBJECT_"))
		step.Hazards = append(step.Hazards, plans.Hazard{Type: plans.HazardDeployBreakage,
			Message: fmt.Sprintf("every running release that still uses the %s %s fails from this step on", kind, target.Name)})
		b.warn("Renaming the %s %s breaks running releases that use its old name: deploy the release that uses %s first, or keep both names meanwhile.", kind, target, r.Newname)
	}
	return nil
}
