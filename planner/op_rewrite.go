package planner

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
)

// Rewrites: VACUUM FULL, CLUSTER, REINDEX, REFRESH MATERIALIZED VIEW, and
// ALTER TABLE ... SET TABLESPACE / SET LOGGED / SET UNLOGGED / SET ACCESS
// METHOD.
//
// Each writes a new copy of a table, index or materialized view while it
// holds a lock that blocks the application for the whole copy:
//
//	VACUUM FULL, CLUSTER            ACCESS EXCLUSIVE on the table;
//	REINDEX                         SHARE on the table (writes wait) and
//	                                ACCESS EXCLUSIVE on the index (queries
//	                                that would use it wait);
//	REFRESH MATERIALIZED VIEW       ACCESS EXCLUSIVE on the view;
//	ALTER TABLE ... SET ...         ACCESS EXCLUSIVE on the table.
//
// cutover has no plan for them: the online ways are REINDEX CONCURRENTLY,
// REFRESH MATERIALIZED VIEW CONCURRENTLY and, for bloat, a tool like
// pg_repack. So they are refused, with what they do as written for the
// checker (rule CUT017). Their CONCURRENTLY forms, and plain VACUUM, are
// safe and are left to the operator like any statement cutover does not
// plan.

// rewriteUnderLock describes a statement that rewrites target while it
// holds lock on it.
func rewriteUnderLock(target relName, lock plans.Lock, why, do string) asWritten {
	a := asWritten{rule: RuleRewrite, lock: lock, table: target, held: heldRewrite, impact: plans.ImpactRewrite, why: why, do: do}
	if target.Name == "" {
		a.where = "every table it processes"
	}
	return a
}

// refuseRewrite refuses the statements above; it returns nil for a
// statement that is not one of them (or is their safe form).
func refuseRewrite(si stmtInfo, n *pg_query.Node) error {
	refuse := func(a asWritten) error {
		return si.unsafe(a, fmt.Sprintf("%s Instead: %s", a.reason(), a.do))
	}
	switch st := n.Node.(type) {
	case *pg_query.Node_VacuumStmt:
		v := st.VacuumStmt
		if !v.IsVacuumcmd || !defOption(v.Options, "full") {
			return nil
		}
		var target relName
		if len(v.Rels) > 0 {
			target = rel(v.Rels[0].GetVacuumRelation().GetRelation())
		}
		return refuse(rewriteUnderLock(target, plans.LockAccessExclusive, "VACUUM FULL writes a new copy of the table and its indexes",
			"plain VACUUM makes dead space reusable without blocking; to give space back to the system use an online tool such as pg_repack"))
	case *pg_query.Node_ClusterStmt:
		return refuse(rewriteUnderLock(rel(st.ClusterStmt.Relation), plans.LockAccessExclusive, "CLUSTER writes a new copy of the table in index order",
			"re-cluster online with a tool such as pg_repack (--order-by), or rely on the index as it is"))
	case *pg_query.Node_ReindexStmt:
		r := st.ReindexStmt
		if defOption(r.Params, "concurrently") {
			return nil
		}
		a := rewriteUnderLock(rel(r.Relation), plans.LockShare, "REINDEX builds the index again from scratch",
			"REINDEX ... CONCURRENTLY (PostgreSQL 12+): reads and writes go on")
		a.held = "and ACCESS EXCLUSIVE on the index while it rebuilds: writes wait, and so does every query that would use the index"
		switch r.Kind {
		case pg_query.ReindexObjectType_REINDEX_OBJECT_INDEX:
			a.where = "the table of index " + rel(r.Relation).String()
		case pg_query.ReindexObjectType_REINDEX_OBJECT_TABLE:
		default:
			a.table, a.where = relName{}, "every table of "+strings.ToLower(strings.TrimPrefix(r.Kind.String(), "REINDEX_OBJECT_"))+" "+r.Name
		}
		return refuse(a)
	case *pg_query.Node_RefreshMatViewStmt:
		r := st.RefreshMatViewStmt
		if r.Concurrent {
			return nil
		}
		a := rewriteUnderLock(rel(r.Relation), plans.LockAccessExclusive, "REFRESH MATERIALIZED VIEW computes the view's rows again and swaps them in",
			"REFRESH MATERIALIZED VIEW CONCURRENTLY (it needs a unique index on the view): queries of the view go on")
		a.held = "while it runs the view's query: every query of the view waits until it ends"
		return refuse(a)
	}
	return nil
}

// refuseTableRewrite refuses the ALTER TABLE subcommands that rewrite the
// table; it returns nil for any other.
func refuseTableRewrite(si stmtInfo, t relName, cmd *pg_query.AlterTableCmd) error {
	var what, do string
	switch cmd.Subtype {
	case pg_query.AlterTableType_AT_SetTableSpace:
		what, do = "SET TABLESPACE copies the whole table", "move it with an online tool (pg_repack --tablespace)"
	case pg_query.AlterTableType_AT_SetLogged:
		what, do = "SET LOGGED writes the whole table to the WAL", "create a logged copy, sync and backfill it, then swap (no online shortcut)"
	case pg_query.AlterTableType_AT_SetUnLogged:
		what, do = "SET UNLOGGED rewrites the whole table", "create an unlogged copy, sync and backfill it, then swap (no online shortcut)"
	case pg_query.AlterTableType_AT_SetAccessMethod:
		what, do = "SET ACCESS METHOD rewrites the whole table", "create a copy with the new access method, sync and backfill it, then swap"
	default:
		return nil
	}
	a := rewriteUnderLock(t, plans.LockAccessExclusive, what, do)
	return si.unsafe(a, fmt.Sprintf("%s Instead: %s", a.reason(), a.do))
}

// defOption reports whether a list of DefElem options (VACUUM (FULL),
// REINDEX (CONCURRENTLY)) turns the named option on.
func defOption(opts []*pg_query.Node, name string) bool {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || d.Defname != name {
			continue
		}
		switch {
		case d.Arg == nil:
			return true
		case d.Arg.GetBoolean() != nil:
			return d.Arg.GetBoolean().Boolval
		case d.Arg.GetInteger() != nil:
			return d.Arg.GetInteger().Ival != 0
		case d.Arg.GetString_() != nil:
			switch strings.ToLower(d.Arg.GetString_().Sval) {
			case "false", "off", "0", "no":
				return false
			}
			return true
		}
		return true
	}
	return false
}
