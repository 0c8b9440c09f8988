package planner

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// renameTable plans ALTER TABLE old RENAME TO new.
//
// The naive rename is instant, but every running application instance
// that still says `old` fails from that moment until the release that says
// `new` has rolled out everywhere. The plan:
//
//	expand   in one short transaction: rename the table, and create a view
//	         under the old name, SELECT * FROM the table, with the table's
//	         privileges copied onto it. A simple view is automatically
//	         updatable, so instances still using the old name keep reading
//	         and writing (INSERT, UPDATE, DELETE, ON CONFLICT, RETURNING go
//	         through to the table, whose defaults and triggers apply);
//	migrate  the application release that uses the new name;
//	contract drop the compatibility view (the rollback recreates it).
//
// On PostgreSQL 15 and later (when the schema says so) the view is created
// WITH (security_invoker = true), so the table's row-level security and
// privileges are checked for the caller, not for the view's owner.
type renameTable struct {
	si    stmtInfo
	table relName
	to    string

	tab *schema.Table
}

func newRenameTable(si stmtInfo, t relName, to string) (operation, error) {
	if t.Name == to {
		return nil, si.invalid("the table already has the name " + to)
	}
	return &renameTable{si: si, table: t, to: to}, nil
}

func (op *renameTable) validate(s *schema.Schema) error {
	tab, err := requireTable(op.si, s, op.table)
	if err != nil {
		return err
	}
	if relationExists(s, op.table.Schema, op.to) {
		return op.si.invalid(fmt.Sprintf("a relation named %s already exists in schema %s", op.to, op.table.Schema))
	}
	op.tab = tab
	return nil
}

// naive: instant, but every running release that still says the old name
// fails from the moment it commits.
func (op *renameTable) naive(ctx *naiveContext) asWritten {
	if ctx.isNew(op.table) {
		return asWritten{}
	}
	return asWritten{rule: RuleRenameRelation, lock: plans.LockAccessExclusive, table: op.table, held: heldInstant,
		breaks: fmt.Sprintf("every running release that still uses %s fails from the moment it commits, until the release using %s is out everywhere", op.table, op.to),
		do:     fmt.Sprintf("rename it and create an updatable view %s over %s in the same transaction; drop the view once no release uses the old name (`cutover plan`)", op.table, op.to)}
}

func (op *renameTable) plan(b *builder) error {
	oldRel, newRel := op.table, op.table.sibling(op.to)
	if b.isNew(oldRel) {
		// Created earlier in the input: no release uses either name.
		b.reserveName(relationName, newRel.Schema, newRel.Name)
		b.newTableStep(newRel, plans.Step{
			ID:       "rename-table-" + op.to,
			Summary:  fmt.Sprintf("Rename %s to %s", oldRel, op.to),
			SQL:      fmt.Sprintf("ALTER TABLE %s RENAME TO %s", oldRel.quoted(), ident(op.to)),
			Rollback: fmt.Sprintf("ALTER TABLE %s RENAME TO %s", newRel.quoted(), ident(oldRel.Name)),
			Lock:     plans.LockAccessExclusive,
			Hazards:  []plans.Hazard{aeHazard("RENAME (of the new table)")},
		})
		return nil
	}
	b.touch(oldRel)
	b.reserveName(relationName, newRel.Schema, newRel.Name)
	// The compatibility view holds the old name until the contract phase.
	b.free("rel:"+oldRel.key(), fmt.Sprintf("the compatibility view %s of the renamed table is dropped in the contract phase", oldRel))
	view := op.viewSQL(b)

	b.add(stageExpand, plans.Step{
		ID:      "rename-table-" + op.to,
		Summary: fmt.Sprintf("Rename %s to %s and create the view %s over it, with the table's privileges, in one transaction: old releases keep working through the view", oldRel, op.to, oldRel),
		SQL: joinStatements([]string{
			fmt.Sprintf("ALTER TABLE %s RENAME TO %s", oldRel.quoted(), ident(op.to)),
			view,
			copyGrantsSQL(newRel, oldRel),
		}),
		Rollback: joinStatements([]string{
			"DROP VIEW IF EXISTS " + oldRel.quoted(),
			fmt.Sprintf("ALTER TABLE %s RENAME TO %s", newRel.quoted(), ident(oldRel.Name)),
		}),
		Lock:          plans.LockAccessExclusive,
		Table:         oldRel.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Gate: &plans.Gate{
			Description: fmt.Sprintf("%s is a table and %s the compatibility view", newRel, oldRel),
			SQL: fmt.Sprintf("SELECT count(*) = 2 FROM pg_catalog.pg_class WHERE (oid = %s::regclass AND relkind IN ('r', 'p')) OR (oid = %s::regclass AND relkind = 'v')",
				literal(newRel.quoted()), literal(oldRel.quoted())),
		},
		Hazards: []plans.Hazard{aeHazard("RENAME")},
	})

	b.instruct(stageRelease, fmt.Sprintf(
		"Switch every use of the table `%s` to `%s` (queries, ORM models, raw SQL, reports). Instances of the previous release keep working through the compatibility view `%s` while this rolls out.",
		oldRel.Name, op.to, oldRel.Name))

	b.add(stageContract, plans.Step{
		ID:            "drop-view-" + oldRel.Name,
		Summary:       fmt.Sprintf("Drop the compatibility view %s once no release uses the old name", oldRel),
		SQL:           "DROP VIEW " + oldRel.quoted(),
		Rollback:      joinStatements([]string{view, copyGrantsSQL(newRel, oldRel)}),
		Lock:          plans.LockAccessExclusive,
		Table:         oldRel.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Removes:       &plans.Removal{Table: oldRel.String()},
		Hazards: []plans.Hazard{
			aeHazard("DROP VIEW (on the view only, not on the table)"),
			{Type: plans.HazardDeployBreakage, Message: fmt.Sprintf("anything still using the name %s fails from this step on: check the application logs and pg_stat_statements first", oldRel.Name)},
		},
	})

	b.warn("While the compatibility view %s exists, it supports SELECT, INSERT, UPDATE, DELETE (with ON CONFLICT and RETURNING), but not TRUNCATE, COPY ... FROM, ALTER TABLE, or pg_get_serial_sequence on the old name; columns added to %s later do not appear in the view, and column-level privileges are not copied to it.", oldRel, op.to)
	if !op.securityInvoker(b) {
		b.warn("The compatibility view %s checks the table's privileges and row-level security as the view's owner (security_invoker needs PostgreSQL 15): if %s relies on row-level security, do not let old releases use the view, or create it WITH (security_invoker = true) on PostgreSQL 15.", oldRel, oldRel.Name)
	}
	b.warn("Like the naive rename, this keeps the names of the table's indexes, constraints, sequences and triggers%s; rename them separately if you want them to match, and update functions and trigger bodies that name %s in their text.",
		op.keptNames(b), oldRel.Name)
	return nil
}

// securityInvoker reports whether the server is known to support
// security_invoker views (PostgreSQL 15).
func (op *renameTable) securityInvoker(b *builder) bool {
	return b.schema != nil && b.schema.ServerVersion >= 150000
}

// viewSQL is the compatibility view under the old name.
func (op *renameTable) viewSQL(b *builder) string {
	with := ""
	if op.securityInvoker(b) {
		with = " WITH (security_invoker = true)"
	}
	return fmt.Sprintf("CREATE VIEW %s%s AS SELECT * FROM %s", op.table.quoted(), with, op.table.sibling(op.to).quoted())
}

// keptNames lists, for the warning, the names that still carry the old
// table name (" (customer_pkey, customer_customer_id_seq)"), or "".
func (op *renameTable) keptNames(b *builder) string {
	if op.tab == nil {
		return ""
	}
	var names []string
	prefix := op.table.Name + "_"
	for _, ix := range op.tab.Indexes {
		if strings.HasPrefix(ix.Name, prefix) {
			names = append(names, ix.Name)
		}
	}
	for _, c := range op.tab.Constraints {
		if strings.HasPrefix(c.Name, prefix) && op.tab.Index(c.Name) == nil {
			names = append(names, c.Name)
		}
	}
	for _, sq := range b.schema.Sequences {
		owned := sq.OwnedBy != nil && sq.OwnedBy.Relation == op.table.key()
		if owned || (sq.Schema == op.table.Schema && strings.HasPrefix(sq.Name, prefix)) {
			names = append(names, sq.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return " (" + strings.Join(names, ", ") + ")"
}

// copyGrantsSQL grants on view `to` every privilege granted on relation
// `from` to roles other than its owner, so the roles the application uses
// can use the view exactly as they used the table.
func copyGrantsSQL(from, to relName) string {
	return fmt.Sprintf(`DO $cutover$
DECLARE g record;
BEGIN
  FOR g IN SELECT a.privilege_type, a.grantee, a.is_grantable FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a WHERE c.oid = %s::regclass AND a.grantee <> c.relowner
  LOOP
    EXECUTE format('GRANT %%s ON TABLE %%s TO %%s%%s', g.privilege_type, %s,
      CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END,
      CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
END
$cutover$`, literal(from.quoted()), literal(to.quoted()))
}
