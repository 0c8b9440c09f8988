package planner

import (
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// dropView plans DROP [MATERIALIZED] VIEW [IF EXISTS] v [, ...] [CASCADE].
//
// Dropping a view is instant, but every running instance that still
// queries it fails from then on. The plan:
//
//	migrate  the application release that stops using the view;
//	contract DROP VIEW (ACCESS EXCLUSIVE on the view only, for an instant).
//
// With a schema the rollback recreates the view from its definition (and,
// for CASCADE, the views that depend on it, in dependency order); without
// one the step is irreversible. Views that depend on the view make the
// naive DROP fail without CASCADE: with a schema the plan refuses and names
// them.
type dropView struct {
	si           stmtInfo
	names        []relName
	materialized bool
	ifExists     bool
	cascade      bool

	// From the schema, per name (nil entries when unknown or absent).
	views []*schema.View
	deps  [][]*schema.View
}

func newDropView(si stmtInfo, d *pg_query.DropStmt) (operation, error) {
	op := &dropView{si: si, materialized: d.RemoveType == pg_query.ObjectType_OBJECT_MATVIEW,
		ifExists: d.MissingOk, cascade: d.Behavior == pg_query.DropBehavior_DROP_CASCADE}
	for _, o := range d.Objects {
		r, err := objectRel(si, o.GetList().GetItems())
		if err != nil {
			return nil, err
		}
		op.names = append(op.names, r)
	}
	op.views, op.deps = make([]*schema.View, len(op.names)), make([][]*schema.View, len(op.names))
	return op, nil
}

func (op *dropView) kind() string {
	if op.materialized {
		return "materialized view"
	}
	return "view"
}

func (op *dropView) validate(s *schema.Schema) error {
	for i, n := range op.names {
		v := s.Views[n.key()]
		if v == nil {
			if op.ifExists {
				continue
			}
			return op.si.invalid(fmt.Sprintf("%s %s does not exist in the schema", op.kind(), n))
		}
		if v.Materialized != op.materialized {
			other := "DROP VIEW"
			if v.Materialized {
				other = "DROP MATERIALIZED VIEW"
			}
			return op.si.invalid(fmt.Sprintf("%s is not a %s; use %s", n, op.kind(), other))
		}
		var deps []*schema.View
		for _, d := range s.ViewsUsingRelation(v.Key()) {
			if d.Key() == v.Key() {
				continue
			}
			deps = append(deps, d)
		}
		if !op.cascade {
			var outside []*schema.View
			for _, d := range deps {
				if !containsRel(op.names, d.Key()) {
					outside = append(outside, d)
				}
			}
			if len(outside) > 0 {
				return op.si.invalid(fmt.Sprintf("%s is used by %s; drop or change those first, or write DROP ... CASCADE to drop them with it", n, dependents(nil, outside)))
			}
		}
		op.views[i], op.deps[i] = v, deps
	}
	return nil
}

// containsRel reports whether the relation key is one of the names.
func containsRel(names []relName, key string) bool {
	for _, n := range names {
		if n.key() == key {
			return true
		}
	}
	return false
}

// naive: instant, but running releases that query the view fail.
func (op *dropView) naive(ctx *naiveContext) asWritten {
	for i, n := range op.names {
		if ctx.schema != nil && op.views[i] == nil {
			continue // absent (IF EXISTS)
		}
		return asWritten{rule: RuleDropView, lock: plans.LockAccessExclusive, table: n, held: heldInstant,
			breaks: fmt.Sprintf("every running release that still queries the %s %s fails from the moment it commits", op.kind(), n),
			do:     "release the application that stops using it first, then drop it in a later migration (`cutover plan`)"}
	}
	return asWritten{}
}

func (op *dropView) plan(b *builder) error {
	kw := "VIEW"
	if op.materialized {
		kw = "MATERIALIZED VIEW"
	}
	for i, n := range op.names {
		v := op.views[i]
		if b.schema != nil && v == nil {
			b.warn("%s %s does not exist in the schema, so DROP ... IF EXISTS does nothing; the plan has no step for it.", op.kind(), n)
			continue
		}
		b.instruct(stageStopOld, fmt.Sprintf("Stop querying the %s `%s`.", op.kind(), n.Name))
		b.free("rel:"+n.key(), fmt.Sprintf("the %s %s is dropped in the contract phase", op.kind(), n))
		sql := "DROP " + kw + " "
		if op.ifExists {
			sql += "IF EXISTS "
		}
		sql += n.quoted()
		if op.cascade {
			sql += " CASCADE"
		}
		step := plans.Step{
			ID:            "drop-view-" + n.Name,
			Summary:       fmt.Sprintf("Drop the %s %s", op.kind(), n),
			SQL:           sql,
			Lock:          plans.LockAccessExclusive,
			Table:         n.String(),
			Transactional: true,
			Rewrite:       plans.ImpactNone,
			Removes:       &plans.Removal{Table: n.String()},
			Hazards: []plans.Hazard{
				aeHazard("DROP " + kw + " (on the view only)"),
				{Type: plans.HazardDeployBreakage, Message: fmt.Sprintf("anything still querying %s fails from this step on", n.Name)},
			},
		}
		if v == nil {
			step.Irreversible = true
			step.IrreversibleReason = "without a schema cutover does not know the view's definition; plan with --schema or --db to get a rollback that recreates it"
			b.add(stageContract, step)
			continue
		}
		// Recreate the view, then (CASCADE) its dependents in reverse drop
		// order (createViewSQL is in views.go).
		recreate := []*schema.View{v}
		if op.cascade {
			for j := len(op.deps[i]) - 1; j >= 0; j-- {
				recreate = append(recreate, op.deps[i][j])
			}
		}
		var create []string
		for _, rv := range recreate {
			sqls, err := createViewSQL(b.schema, rv)
			if err != nil {
				return fmt.Errorf("planner: %w", err)
			}
			create = append(create, sqls...)
		}
		step.Rollback = joinStatements(create)
		if op.cascade && len(op.deps[i]) > 0 {
			step.Summary += ", and with CASCADE the views that use it: " + dependents(nil, op.deps[i])
			b.warn("DROP %s %s CASCADE also drops %s.", kw, n, dependents(nil, op.deps[i]))
		}
		b.warn("The rollback of dropping %s recreates it from its definition; privileges, comments and options (security_barrier, CHECK OPTION) of the view are not restored.", n)
		b.add(stageContract, step)
	}
	return nil
}
