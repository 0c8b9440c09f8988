package planner

import (
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/proto"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// addEnumValue plans ALTER TYPE e ADD VALUE [IF NOT EXISTS] 'v'
// [BEFORE | AFTER 'w'].
//
// Adding an enum value locks no table and rewrites nothing, but it has two
// traps: before PostgreSQL 12 it cannot run inside a transaction block, and
// the new value cannot be used until the transaction that added it has
// committed. And once added, a value cannot be removed (PostgreSQL has no
// DROP VALUE). The plan is one step, run on its own outside a transaction
// block, irreversible; the application may write the new value only from
// the release after it, and every running release must be able to read it.
//
// RENAME VALUE is refused: it breaks every running release that still
// writes or compares the old label, and there is no way to keep both
// labels valid during a deploy.
type addEnumValue struct {
	si   stmtInfo
	stmt *pg_query.AlterEnumStmt
	typ  relName

	// exists is set when IF NOT EXISTS names a value the enum has.
	exists bool
}

func newAddEnumValue(si stmtInfo, st *pg_query.AlterEnumStmt) (operation, error) {
	if st.OldVal != "" {
		return nil, si.unsupported("renaming an enum value breaks every running release that still uses the old label; add the new value, migrate the rows with an UPDATE, and stop using the old one instead")
	}
	typ, err := objectRel(si, st.TypeName)
	if err != nil {
		return nil, err
	}
	if st.NewVal == "" {
		return nil, si.invalid("an enum value cannot be empty")
	}
	if len(st.NewVal) > nameDataLen-1 {
		return nil, si.invalid(fmt.Sprintf("enum value %q is longer than 63 bytes", st.NewVal))
	}
	return &addEnumValue{si: si, stmt: proto.Clone(st).(*pg_query.AlterEnumStmt), typ: typ}, nil
}

func (op *addEnumValue) validate(s *schema.Schema) error {
	e := s.Enums[op.typ.key()]
	if e == nil {
		return op.si.invalid(fmt.Sprintf("enum type %s does not exist in the schema", op.typ))
	}
	if containsString(e.Values, op.stmt.NewVal) {
		if !op.stmt.SkipIfNewValExists {
			return op.si.invalid(fmt.Sprintf("enum type %s already has the value %s", op.typ, literal(op.stmt.NewVal)))
		}
		op.exists = true
	}
	if n := op.stmt.NewValNeighbor; n != "" && !containsString(e.Values, n) {
		return op.si.invalid(fmt.Sprintf("enum type %s has no value %s to place the new value next to", op.typ, literal(n)))
	}
	return nil
}

// naive: locks no table and rewrites nothing.
func (op *addEnumValue) naive(ctx *naiveContext) asWritten { return asWritten{} }

func (op *addEnumValue) plan(b *builder) error {
	if op.exists {
		b.warn("Enum type %s already has the value %s, so ADD VALUE IF NOT EXISTS does nothing; the plan has no step for it.", op.typ, literal(op.stmt.NewVal))
		return nil
	}
	st := proto.Clone(op.stmt).(*pg_query.AlterEnumStmt)
	st.TypeName = []*pg_query.Node{pg_query.MakeStrNode(op.typ.Schema), pg_query.MakeStrNode(op.typ.Name)}
	sql, err := deparseStmt(&pg_query.Node{Node: &pg_query.Node_AlterEnumStmt{AlterEnumStmt: st}})
	if err != nil {
		return fmt.Errorf("planner: deparse ALTER TYPE %s: %w", op.typ, err)
	}
	v := literal(op.stmt.NewVal)
	b.add(stageExpand, plans.Step{
		ID:                 "add-enum-value-" + op.typ.Name + "-" + op.stmt.NewVal,
		Summary:            fmt.Sprintf("Add the value %s to enum type %s, on its own and outside a transaction block (no table is locked)", v, op.typ),
		SQL:                sql,
		Irreversible:       true,
		IrreversibleReason: "PostgreSQL cannot remove a value from an enum type; undoing it means a new type and a type change of every column using it",
		Lock:               plans.LockNone,
		Transactional:      false,
		Rewrite:            plans.ImpactNone,
		Gate: &plans.Gate{
			Description: fmt.Sprintf("enum type %s has the value %s", op.typ, v),
			SQL: fmt.Sprintf("SELECT count(*) = 1 FROM pg_catalog.pg_enum WHERE enumtypid = %s::regtype AND enumlabel = %s",
				literal(op.typ.quoted()), v),
		},
	})
	b.instruct(stageRelease, fmt.Sprintf(
		"Only releases deployed after the value %s was added to %s may write it. Before any release writes it, make sure every running release can read it: an unknown enum label makes some drivers and ORMs fail when they load the row.",
		v, op.typ))
	b.warn("The value %s of %s cannot be used in the transaction that adds it, and can never be removed again.", v, op.typ)
	return nil
}
