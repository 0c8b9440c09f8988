package planner

// Dependent views. PostgreSQL refuses to change the type of, or drop, a
// column that a view or materialized view reads ("cannot alter type of a
// column used by a view or rule"). The column change kinds therefore drop
// the views that use the column (dependents first) and create them again
// from their definitions (in reverse order), inside the same transaction
// as the change, so no session ever sees the views missing.

import (
	"fmt"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// viewsUsingColumns returns the views that read any of the columns,
// directly or through other views, in an order safe to drop (a view comes
// before every view it reads).
func viewsUsingColumns(s *schema.Schema, cols []schema.ColumnRef) []*schema.View {
	if s == nil {
		return nil
	}
	set := map[string]*schema.View{}
	for _, c := range cols {
		for _, v := range s.ViewsUsingColumn(c.Relation, c.Column) {
			set[v.Key()] = v
		}
	}
	return dropOrder(set)
}

// dropOrder orders a closed set of views dependents first. Ties are broken
// by name so plans are stable.
func dropOrder(set map[string]*schema.View) []*schema.View {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []*schema.View
	done := map[string]bool{}
	var visit func(k string)
	visit = func(k string) {
		if done[k] {
			return
		}
		done[k] = true
		// Every view of the set that reads k is dropped before k.
		for _, k2 := range keys {
			for _, d := range set[k2].DependsOn {
				if d == k {
					visit(k2)
				}
			}
		}
		out = append(out, set[k])
	}
	for _, k := range keys {
		visit(k)
	}
	return out
}

// viewRel is the relName of a view.
func viewRel(v *schema.View) relName { return relName{v.Schema, v.Name} }

// viewKind is "view" or "materialized view", for SQL and messages.
func viewKind(v *schema.View) string {
	if v.Materialized {
		return "materialized view"
	}
	return "view"
}

// dropViewSQL drops one view. There is no CASCADE: the views depending on
// it are dropped before it, and anything else that depends on it (which
// the schema model does not show) makes the statement fail rather than
// vanish silently.
func dropViewSQL(v *schema.View) string {
	return fmt.Sprintf("DROP %s %s", strings.ToUpper(viewKind(v)), viewRel(v).quoted())
}

// createViewSQL creates a view again from its canonical definition, built
// as a parse tree and deparsed. A materialized view is created WITH DATA
// (its query runs), and its indexes are created again after it.
//
// s is the schema the view belongs to (unused for now: the view carries
// its indexes); it is kept so callers need not change when more of the
// view's surroundings are modelled.
func createViewSQL(s *schema.Schema, v *schema.View) ([]string, error) {
	tree, err := parseOne(v.Definition)
	if err != nil {
		return nil, fmt.Errorf("view %s: %w", v.Key(), err)
	}
	query := tree.Stmts[0].Stmt
	if query.GetSelectStmt() == nil {
		return nil, fmt.Errorf("view %s: definition is not a SELECT", v.Key())
	}
	var stmt *pg_query.Node
	if v.Materialized {
		stmt = &pg_query.Node{Node: &pg_query.Node_CreateTableAsStmt{CreateTableAsStmt: &pg_query.CreateTableAsStmt{
			Query:   query,
			Into:    &pg_query.IntoClause{Rel: rangeVar(viewRel(v)), OnCommit: pg_query.OnCommitAction_ONCOMMIT_NOOP},
			Objtype: pg_query.ObjectType_OBJECT_MATVIEW,
		}}}
	} else {
		stmt = &pg_query.Node{Node: &pg_query.Node_ViewStmt{ViewStmt: &pg_query.ViewStmt{
			View:            rangeVar(viewRel(v)),
			Query:           query,
			WithCheckOption: pg_query.ViewCheckOption_NO_CHECK_OPTION,
		}}}
	}
	sql, err := deparseStmt(stmt)
	if err != nil {
		return nil, fmt.Errorf("view %s: %w", v.Key(), err)
	}
	out := []string{sql}
	for _, ix := range viewIndexes(v) {
		out = append(out, ix.Definition)
	}
	return out, nil
}

// viewIndexes returns the indexes of a materialized view.
func viewIndexes(v *schema.View) []*schema.Index {
	if !v.Materialized {
		return nil
	}
	return v.Indexes
}

// aroundViews wraps statements in the drop (dependents first) and the
// re-creation (reverse order) of the views.
func aroundViews(views []*schema.View, stmts []string) ([]string, error) {
	var out []string
	for _, v := range views {
		out = append(out, dropViewSQL(v))
	}
	out = append(out, stmts...)
	for i := len(views) - 1; i >= 0; i-- {
		create, err := createViewSQL(nil, views[i])
		if err != nil {
			return nil, err
		}
		out = append(out, create...)
	}
	return out, nil
}

// viewKeys lists the views' names for messages.
func viewKeys(views []*schema.View) string {
	names := make([]string, len(views))
	for i, v := range views {
		names[i] = v.Key()
	}
	return strings.Join(names, ", ")
}

// viewHazards describes the cost of dropping and recreating views inside a
// step: materialized views run their query again while the step holds its
// locks.
func viewHazards(views []*schema.View) []plans.Hazard {
	var mat []string
	for _, v := range views {
		if v.Materialized {
			mat = append(mat, v.Key())
		}
	}
	if len(mat) == 0 {
		return nil
	}
	return []plans.Hazard{{Type: plans.HazardTableScan,
		Message: "re-creating materialized view(s) " + strings.Join(mat, ", ") +
			" runs their query (WITH DATA) inside the transaction, so the ACCESS EXCLUSIVE lock is held for as long as that query takes"}}
}

// warnRecreatedViews tells the operator what dropping and recreating views
// does not carry over: the model holds only their definitions.
func warnRecreatedViews(b *builder, views []*schema.View) {
	if len(views) == 0 {
		return
	}
	b.warn("The view(s) %s are dropped and created again from their definitions: privileges granted on them, comments, their owner and options (security_barrier, security_invoker, WITH CHECK OPTION) are not in the schema model and are not carried over; re-apply them after the step (cutover creates the views as the user that runs the plan).", viewKeys(views))
}
