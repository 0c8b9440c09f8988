package planner

import (
	"strings"
	"unicode"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// What a statement does when it runs as written.
//
// Every operation answers, in its own op file next to its plan(), what its
// naive statement does to a running application: naive(ctx) returns the
// lock it takes on a relation the application uses and, when that is
// unsafe, the rule (rules.go) it breaks and why: how long the lock is held,
// whether it rewrites or scans the table, what breaks for the releases
// running during the deploy, what data is lost, and the safe alternative in
// one line. The answers use the facts the plans are made of (binary-coercible
// type changes, non-volatile defaults, NOT VALID, CONCURRENTLY, tables
// created earlier in the migration set). The checker (check.go) turns them
// into findings.

// naiveContext is what naive() knows about the migration set.
type naiveContext struct {
	// schema is the schema as the statements before this one leave it;
	// nil without one.
	schema *schema.Schema
	// created holds the keys of the tables created earlier in the set:
	// new and empty, and used by no release yet.
	created map[string]bool
	// proven holds notNullKey()s of the columns a validated CHECK (c IS NOT
	// NULL) added earlier in the set proves NOT NULL (the schema tells the
	// constraints it already had).
	proven map[string]bool
}

// isNew reports whether the table was created earlier in the set.
func (c *naiveContext) isNew(t relName) bool { return c.created[t.key()] }

// serverVersion is the server_version_num the schema was read from, 0 when
// unknown.
func (c *naiveContext) serverVersion() int {
	if c.schema == nil {
		return 0
	}
	return c.schema.ServerVersion
}

// notNullProven reports whether a validated CHECK (col IS NOT NULL) of the
// table proves the column NOT NULL, so that SET NOT NULL (PostgreSQL 12+)
// skips its scan.
func (c *naiveContext) notNullProven(t relName, col string) bool {
	if c.proven[notNullKey(t, col)] {
		return true
	}
	if c.schema == nil || (c.schema.ServerVersion > 0 && c.schema.ServerVersion < 120000) {
		return false
	}
	tab := c.schema.Table(t.Schema, t.Name)
	if tab == nil {
		return false
	}
	for _, con := range tab.Constraints {
		if con.Type != schema.Check || !con.Valid {
			continue
		}
		tree, err := parseOne("ALTER TABLE t ADD " + con.Definition)
		if err != nil {
			continue
		}
		for _, cmd := range tree.Stmts[0].Stmt.GetAlterTableStmt().GetCmds() {
			if containsString(notNullColumns(cmd.GetAlterTableCmd().GetDef().GetConstraint()), col) {
				return true
			}
		}
	}
	return false
}

// notNullColumns lists the columns a CHECK constraint proves NOT NULL: its
// expression is c IS NOT NULL, or an AND of terms some of which are.
func notNullColumns(con *pg_query.Constraint) []string {
	if con == nil || con.Contype != pg_query.ConstrType_CONSTR_CHECK {
		return nil
	}
	var out []string
	var visit func(n *pg_query.Node)
	visit = func(n *pg_query.Node) {
		if b := n.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
			for _, a := range b.Args {
				visit(a)
			}
			return
		}
		nt := n.GetNullTest()
		if nt == nil || nt.Nulltesttype != pg_query.NullTestType_IS_NOT_NULL {
			return
		}
		if cr := nt.Arg.GetColumnRef(); cr != nil && len(cr.Fields) > 0 {
			if name := cr.Fields[len(cr.Fields)-1].GetString_(); name != nil {
				out = append(out, name.Sval)
			}
		}
	}
	visit(con.RawExpr)
	return out
}

func notNullKey(t relName, col string) string { return t.key() + "\x00" + col }

// asWritten is what a statement does when run as written.
type asWritten struct {
	// lock is the strongest lock the statement takes on a relation the
	// application uses (not on one created earlier in the set), table the
	// relation; lock is "" when it takes none that matters.
	lock  plans.Lock
	table relName
	// where, when set, names what the lock is on instead of table (an
	// index whose table a schema would tell).
	where string

	// rule is set when the statement is unsafe as written; the fields
	// below say why.
	rule string
	// held says how long lock is held: "for an instant", "while it
	// rewrites the whole table ...".
	held string
	// impact is ImpactRewrite or ImpactScan when the statement rewrites or
	// scans the table under its lock.
	impact plans.Impact
	// breaks says what fails in the releases running during the deploy;
	// loss what data is gone for good; why anything else (one sentence).
	breaks, loss, why string
	// extra lists hazards beyond those the fields above imply.
	extra []plans.HazardType
	// do is the safe alternative, one line.
	do string
}

// How long a lock is held, in the words naive() uses.
const (
	heldInstant = "for an instant, but it queues behind every running transaction on the table, and every later query queues behind it"
	heldRewrite = "while it rewrites the whole table and rebuilds every index on it: no read or write of the table until it ends"
	heldScan    = "while it scans the whole table: no read or write of the table until it ends"
)

// safe is a statement that is safe as written, apart from the lock it takes.
func safeLock(lock plans.Lock, t relName) asWritten { return asWritten{lock: lock, table: t} }

// unsafe reports whether the statement breaks a rule.
func (a asWritten) unsafe() bool { return a.rule != "" }

// hazards are the typed hazards of an unsafe statement.
func (a asWritten) hazards() []plans.HazardType {
	var out []plans.HazardType
	reads, writes := a.lock.Blocks()
	switch {
	case a.lock == plans.LockAccessExclusive:
		out = append(out, plans.HazardAccessExclusive)
	case writes && !reads:
		out = append(out, plans.HazardBlocksWrites)
	}
	switch a.impact {
	case plans.ImpactRewrite:
		out = append(out, plans.HazardTableRewrite)
	case plans.ImpactScan:
		out = append(out, plans.HazardTableScan)
	}
	if a.breaks != "" {
		out = append(out, plans.HazardDeployBreakage)
	}
	if a.loss != "" {
		out = append(out, plans.HazardDataLoss)
	}
	for _, h := range a.extra {
		if !containsHazard(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func containsHazard(list []plans.HazardType, h plans.HazardType) bool {
	for _, x := range list {
		if x == h {
			return true
		}
	}
	return false
}

// firstUnsafe returns the first unsafe answer, else the first one with the
// strongest lock (for an operation made of several, like ADD COLUMN with
// inline constraints).
func firstUnsafe(all ...asWritten) asWritten {
	var best asWritten
	for _, a := range all {
		if a.unsafe() {
			return a
		}
		if lockRank(a.lock) > lockRank(best.lock) {
			best = a
		}
	}
	return best
}

// lockRank orders locks by strength.
func lockRank(l plans.Lock) int {
	switch l {
	case plans.LockAccessShare:
		return 1
	case plans.LockRowExclusive:
		return 2
	case plans.LockShareUpdateExclusive:
		return 3
	case plans.LockShare:
		return 4
	case plans.LockShareRowExclusive:
		return 5
	case plans.LockAccessExclusive:
		return 6
	}
	return 0
}

// reason says what goes wrong, for people: the specific reason, what
// breaks for running releases, what data is lost, and the lock with how
// long it is held.
func (a asWritten) reason() string {
	var parts []string
	for _, p := range []string{a.why, a.breaks, a.loss} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if a.lock != "" && a.lock != plans.LockNone && a.held != "" {
		on := a.where
		if on == "" && a.table.Name != "" {
			on = a.table.String()
		}
		l := "takes " + string(a.lock)
		if on != "" {
			l += " on " + on
		}
		parts = append(parts, l+" "+a.held)
	}
	return sentence(strings.Join(parts, "; "))
}

// sentence capitalizes s and ends it with a period.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
