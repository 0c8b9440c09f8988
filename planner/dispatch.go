package planner

import (
	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// operationsFor maps one parsed statement to its operations. An ALTER TABLE
// with several subcommands gives one operation per subcommand.
func operationsFor(si stmtInfo, n *pg_query.Node, s *schema.Schema) ([]operation, error) {
	switch st := n.Node.(type) {
	case *pg_query.Node_AlterTableStmt:
		return alterTableOps(si, st.AlterTableStmt)
	case *pg_query.Node_RenameStmt:
		r := st.RenameStmt
		switch r.RenameType {
		case pg_query.ObjectType_OBJECT_COLUMN:
			if r.RelationType != pg_query.ObjectType_OBJECT_TABLE {
				return nil, si.unsupported("only columns of tables can be renamed here; rename view columns with CREATE OR REPLACE VIEW")
			}
			return one(newRenameColumn(si, rel(r.Relation), r.Subname, r.Newname))
		case pg_query.ObjectType_OBJECT_TABLE:
			return one(newRenameTable(si, rel(r.Relation), r.Newname))
		case pg_query.ObjectType_OBJECT_INDEX, pg_query.ObjectType_OBJECT_TABCONSTRAINT,
			pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_SEQUENCE:
			return one(newPassthrough(si, n, passthroughBriefAE, rel(r.Relation)))
		}
		return nil, si.unsupported("this kind of RENAME is not planned by cutover")
	case *pg_query.Node_IndexStmt:
		return one(newCreateIndex(si, st.IndexStmt))
	case *pg_query.Node_DropStmt:
		d := st.DropStmt
		switch d.RemoveType {
		case pg_query.ObjectType_OBJECT_INDEX:
			return one(newDropIndex(si, d))
		case pg_query.ObjectType_OBJECT_TABLE:
			return one(newDropTable(si, d))
		case pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW:
			return one(newDropView(si, d))
		}
		return nil, si.unsupported("only DROP TABLE, DROP INDEX and DROP VIEW are planned by cutover")
	case *pg_query.Node_AlterEnumStmt:
		return one(newAddEnumValue(si, st.AlterEnumStmt))
	case *pg_query.Node_UpdateStmt:
		// One that cannot be batched is still a bulk change as written.
		op, err := newBatchedUpdate(si, st.UpdateStmt)
		return one(op, withNaive(err, bulkDML(rel(st.UpdateStmt.Relation))))
	case *pg_query.Node_DeleteStmt:
		op, err := newBatchedDelete(si, st.DeleteStmt)
		return one(op, withNaive(err, bulkDML(rel(st.DeleteStmt.Relation))))
	case *pg_query.Node_CreateStmt:
		return one(newPassthrough(si, n, passthroughNew, rel(st.CreateStmt.Relation)))
	case *pg_query.Node_ViewStmt:
		return one(newPassthrough(si, n, passthroughNew, rel(st.ViewStmt.View)))
	case *pg_query.Node_CreateSeqStmt, *pg_query.Node_CreateEnumStmt, *pg_query.Node_CreateDomainStmt,
		*pg_query.Node_CreateFunctionStmt, *pg_query.Node_CreateSchemaStmt, *pg_query.Node_CreateExtensionStmt,
		*pg_query.Node_CommentStmt, *pg_query.Node_CompositeTypeStmt, *pg_query.Node_CreateTableAsStmt:
		return one(newPassthrough(si, n, passthroughNew, relName{}))
	case *pg_query.Node_VacuumStmt, *pg_query.Node_ClusterStmt, *pg_query.Node_ReindexStmt, *pg_query.Node_RefreshMatViewStmt:
		// The rewriting forms are refused with what they do (op_rewrite.go);
		// the others are left to the operator, as below.
		if err := refuseRewrite(si, n); err != nil {
			return nil, err
		}
	case *pg_query.Node_TransactionStmt:
		// cutover decides the transactions itself; BEGIN/COMMIT in a
		// migration file carry no change.
		return nil, nil
	case *pg_query.Node_VariableSetStmt:
		// SET lock_timeout and the like: cutover sets its own per statement.
		return nil, nil
	}
	return nil, si.unsupported("cutover has no safe plan for this kind of statement; run it yourself if you know it is safe")
}

// alterTableOps splits an ALTER TABLE into one operation per subcommand.
func alterTableOps(si stmtInfo, at *pg_query.AlterTableStmt) ([]operation, error) {
	switch at.Objtype {
	case pg_query.ObjectType_OBJECT_TABLE:
	case pg_query.ObjectType_OBJECT_INDEX, pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_VIEW:
		return one(newPassthrough(si, &pg_query.Node{Node: &pg_query.Node_AlterTableStmt{AlterTableStmt: at}}, passthroughBriefAE, rel(at.Relation)))
	default:
		return nil, si.unsupported("only ALTER TABLE on tables is planned by cutover")
	}
	t := rel(at.Relation)
	var ops []operation
	for _, c := range at.Cmds {
		cmd := c.GetAlterTableCmd()
		if cmd == nil {
			return nil, si.unsupported("unexpected ALTER TABLE form")
		}
		var op operation
		var err error
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddColumn:
			op, err = newAddColumn(si, t, cmd.Def.GetColumnDef(), cmd.MissingOk)
		case pg_query.AlterTableType_AT_DropColumn:
			op, err = newDropColumn(si, t, cmd.Name, cmd.Behavior == pg_query.DropBehavior_DROP_CASCADE, cmd.MissingOk)
		case pg_query.AlterTableType_AT_AlterColumnType:
			op, err = newChangeType(si, t, cmd.Name, cmd.Def.GetColumnDef())
		case pg_query.AlterTableType_AT_SetNotNull:
			op, err = newSetNotNull(si, t, cmd.Name)
		case pg_query.AlterTableType_AT_DropNotNull:
			op, err = newDropNotNull(si, t, cmd.Name)
		case pg_query.AlterTableType_AT_ColumnDefault:
			// Def is nil for DROP DEFAULT.
			op, err = newSetDefault(si, t, cmd.Name, cmd.Def)
		case pg_query.AlterTableType_AT_AddConstraint:
			con := cmd.Def.GetConstraint()
			switch con.GetContype() {
			case pg_query.ConstrType_CONSTR_FOREIGN:
				op, err = newAddForeignKey(si, t, con)
			case pg_query.ConstrType_CONSTR_CHECK:
				op, err = newAddCheck(si, t, con)
			case pg_query.ConstrType_CONSTR_UNIQUE:
				op, err = newAddUnique(si, t, con, false)
			case pg_query.ConstrType_CONSTR_PRIMARY:
				op, err = newAddUnique(si, t, con, true)
			default:
				return nil, si.unsupported("only FOREIGN KEY, CHECK, UNIQUE and PRIMARY KEY constraints are planned by cutover")
			}
		case pg_query.AlterTableType_AT_ValidateConstraint:
			op, err = newPassthrough(si, &pg_query.Node{Node: &pg_query.Node_AlterTableStmt{AlterTableStmt: oneCmd(at, c)}}, passthroughValidate, t)
		case pg_query.AlterTableType_AT_DropConstraint:
			op, err = newPassthrough(si, &pg_query.Node{Node: &pg_query.Node_AlterTableStmt{AlterTableStmt: oneCmd(at, c)}}, passthroughBriefAE, t)
		default:
			if err := refuseTableRewrite(si, t, cmd); err != nil {
				return nil, err
			}
			return nil, si.unsupported("this ALTER TABLE subcommand has no safe plan in cutover")
		}
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// oneCmd returns a copy of the ALTER TABLE with only the given subcommand.
func oneCmd(at *pg_query.AlterTableStmt, cmd *pg_query.Node) *pg_query.AlterTableStmt {
	return &pg_query.AlterTableStmt{Relation: at.Relation, Cmds: []*pg_query.Node{cmd}, Objtype: at.Objtype, MissingOk: at.MissingOk}
}

func one(op operation, err error) ([]operation, error) {
	if err != nil {
		return nil, err
	}
	return []operation{op}, nil
}

// rel resolves a RangeVar to a qualified name; unqualified names are in
// public, PostgreSQL's default search_path.
func rel(rv *pg_query.RangeVar) relName {
	if rv == nil {
		return relName{}
	}
	s := rv.Schemaname
	if s == "" {
		s = "public"
	}
	return relName{Schema: s, Name: rv.Relname}
}

// requireTable returns the schema's table or an InvalidError naming it.
func requireTable(si stmtInfo, s *schema.Schema, t relName) (*schema.Table, error) {
	tab := s.Table(t.Schema, t.Name)
	if tab == nil {
		return nil, si.invalid("table " + t.String() + " does not exist in the schema")
	}
	return tab, nil
}

// requireColumn returns the table's column or an InvalidError naming it.
func requireColumn(si stmtInfo, tab *schema.Table, column string) (*schema.Column, error) {
	c := tab.Column(column)
	if c == nil {
		return nil, si.invalid("column " + column + " does not exist in table " + tab.Schema + "." + tab.Name)
	}
	return c, nil
}

// lockTimeoutHazard is the hazard every ACCESS EXCLUSIVE step carries.
func aeHazard(what string) plans.Hazard {
	return plans.Hazard{Type: plans.HazardAccessExclusive,
		Message: what + " takes ACCESS EXCLUSIVE; brief, but queued queries wait behind it, so it runs with a short lock_timeout and retries"}
}
