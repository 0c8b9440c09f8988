package planner

// The checker's rules about sequences of statements. They follow the
// transaction state and the lock_timeout setting through a file, from the
// parse tree: BEGIN / COMMIT / ROLLBACK, SET [LOCAL] lock_timeout, RESET,
// SELECT set_config('lock_timeout', ...), and the transaction the migration
// tool itself wraps the file in (Source.Tx).
//
//	CUT101  a statement that cannot run in a transaction block inside one
//	CUT102  ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT, in the
//	        same transaction
//	CUT103  a lock that blocks writes taken on a table in use with no
//	        lock_timeout set

import (
	"fmt"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
)

// txState is the transaction state and lock_timeout of the file so far.
type txState struct {
	// in is set inside a transaction block; why says whose, for
	// messages; explicit when the file's own BEGIN opened it.
	in       bool
	why      string
	explicit bool
	// implicit: after COMMIT the next statements are in a transaction
	// again (TxImplicit: PostgreSQL's implicit block of a multi-statement
	// query); toolWhy says so.
	implicit bool
	toolWhy  string
	// lockTimeout is set while a session lock_timeout is set (line: where);
	// local while SET LOCAL holds in the current transaction. saved is the
	// session setting at BEGIN, which ROLLBACK restores.
	lockTimeout, local, saved bool
	// localOutside is the line of a SET LOCAL lock_timeout run outside a
	// transaction block, where it does nothing (0: none).
	localOutside int
	// notValid holds "table\x00constraint" (constraint "" when unnamed)
	// of the constraints added NOT VALID in the current transaction.
	notValid map[string]int
}

func newTxState(src Source, tree *pg_query.ParseResult, version int) txState {
	tx := txState{notValid: map[string]int{}}
	switch src.Tx {
	case TxFile:
		tx.in = true
	case TxImplicit:
		tx.in, tx.implicit = len(tree.Stmts) > 1, true
	case TxUnlessNonTransactional:
		for _, raw := range tree.Stmts {
			if nonTransactional(raw.Stmt, version) == "" {
				tx.in = true
				break
			}
		}
	}
	tx.toolWhy = src.TxNote
	if tx.toolWhy == "" {
		tx.toolWhy = "the migration tool runs the file in a transaction"
	}
	if tx.in {
		tx.why = tx.toolWhy
	}
	return tx
}

// lockTimeoutSet reports whether a lock_timeout holds for the next
// statement.
func (tx *txState) lockTimeoutSet() bool { return tx.lockTimeout || tx.in && tx.local }

// end ends the current transaction block.
func (tx *txState) end(rollback bool) {
	if rollback && tx.in {
		tx.lockTimeout = tx.saved
	}
	tx.in, tx.local, tx.explicit = tx.implicit, false, false
	tx.notValid = map[string]int{}
	if tx.implicit {
		tx.why = tx.toolWhy
	}
}

// control follows transaction control and settings; it reports whether
// the statement is one of them (and has no other effect).
func (tx *txState) control(f *fileCheck, st *stmt, n *pg_query.Node) bool {
	switch x := n.Node.(type) {
	case *pg_query.Node_TransactionStmt:
		switch x.TransactionStmt.Kind {
		case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
			if !tx.in {
				tx.in, tx.why, tx.saved, tx.explicit = true, fmt.Sprintf("the BEGIN on line %d opened one", st.line), tx.lockTimeout, true
			}
		case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT, pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
			tx.end(false)
		case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
			tx.end(true)
		}
		return true
	case *pg_query.Node_VariableSetStmt:
		v := x.VariableSetStmt
		switch {
		case v.Kind == pg_query.VariableSetKind_VAR_RESET_ALL:
			tx.lockTimeout, tx.local = false, false
		case v.Name == "lock_timeout":
			on := v.Kind == pg_query.VariableSetKind_VAR_SET_VALUE && len(v.Args) == 1 && timeoutOn(v.Args[0])
			tx.setLockTimeout(on, v.IsLocal, st.line)
		}
		return true
	case *pg_query.Node_SelectStmt:
		// SELECT set_config('lock_timeout', '2s', is_local)
		s := x.SelectStmt
		if len(s.TargetList) != 1 || len(s.FromClause) > 0 {
			return false
		}
		fc := s.TargetList[0].GetResTarget().GetVal().GetFuncCall()
		if fc == nil || len(fc.Args) != 3 || strings.Join(nameList(fc.Funcname), ".") != "set_config" && strings.Join(nameList(fc.Funcname), ".") != "pg_catalog.set_config" {
			return false
		}
		name := fc.Args[0].GetAConst().GetSval().GetSval()
		local := fc.Args[2].GetAConst().GetBoolval()
		if name != "lock_timeout" || local == nil {
			return false
		}
		tx.setLockTimeout(timeoutOn(fc.Args[1]), local.Boolval, st.line)
		return true
	}
	return false
}

func (tx *txState) setLockTimeout(on, local bool, line int) {
	switch {
	case local && !tx.in:
		// PostgreSQL only warns: SET LOCAL outside a transaction block
		// lasts for that one statement.
		if on {
			tx.localOutside = line
		}
	case local:
		tx.local = on
	default:
		tx.lockTimeout = on
		if !on {
			tx.local = false
		}
	}
}

// timeoutOn reports whether a timeout value (a constant: 2000, '2s',
// '250ms') sets a timeout: 0 disables it.
func timeoutOn(n *pg_query.Node) bool {
	c := n.GetAConst()
	if c == nil {
		return false
	}
	if i := c.GetIval(); i != nil {
		return i.Ival != 0
	}
	if fl := c.GetFval(); fl != nil {
		v, err := strconv.ParseFloat(fl.Fval, 64)
		return err != nil || v != 0
	}
	s := c.GetSval()
	if s == nil {
		return false
	}
	num := strings.TrimRightFunc(strings.TrimSpace(s.Sval), func(r rune) bool { return r < '0' || r > '9' })
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	return err != nil || v != 0
}

// nonTransactional names what in the statement cannot run in a
// transaction block ("CREATE INDEX CONCURRENTLY"), or returns "".
func nonTransactional(n *pg_query.Node, version int) string {
	switch x := n.Node.(type) {
	case *pg_query.Node_IndexStmt:
		if x.IndexStmt.Concurrent {
			return "CREATE INDEX CONCURRENTLY"
		}
	case *pg_query.Node_DropStmt:
		if x.DropStmt.Concurrent {
			return "DROP INDEX CONCURRENTLY"
		}
	case *pg_query.Node_ReindexStmt:
		if defOption(x.ReindexStmt.Params, "concurrently") {
			return "REINDEX CONCURRENTLY"
		}
		if x.ReindexStmt.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_SYSTEM || x.ReindexStmt.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_DATABASE {
			return "REINDEX " + strings.TrimPrefix(x.ReindexStmt.Kind.String(), "REINDEX_OBJECT_")
		}
	case *pg_query.Node_VacuumStmt:
		if x.VacuumStmt.IsVacuumcmd {
			return "VACUUM"
		}
	case *pg_query.Node_AlterTableStmt:
		for _, c := range x.AlterTableStmt.Cmds {
			cmd := c.GetAlterTableCmd()
			if cmd != nil && cmd.Subtype == pg_query.AlterTableType_AT_DetachPartition && cmd.Def.GetPartitionCmd().GetConcurrent() {
				return "DETACH PARTITION CONCURRENTLY"
			}
		}
	case *pg_query.Node_AlterEnumStmt:
		if version > 0 && version < 120000 && x.AlterEnumStmt.OldVal == "" {
			return "ALTER TYPE ... ADD VALUE (before PostgreSQL 12)"
		}
	case *pg_query.Node_CreatedbStmt:
		return "CREATE DATABASE"
	case *pg_query.Node_DropdbStmt:
		return "DROP DATABASE"
	case *pg_query.Node_CreateTableSpaceStmt:
		return "CREATE TABLESPACE"
	case *pg_query.Node_DropTableSpaceStmt:
		return "DROP TABLESPACE"
	case *pg_query.Node_AlterSystemStmt:
		return "ALTER SYSTEM"
	}
	return ""
}

// beforeChange applies the rules that look at the statement before it
// runs: CUT101.
func (f *fileCheck) beforeChange(st *stmt, n *pg_query.Node) {
	what := nonTransactional(n, f.c.serverVersion())
	if what == "" || !f.tx.in {
		return
	}
	do := RuleByID(RuleConcurrentlyInTx).Do
	if f.tx.explicit {
		do = "Run it outside BEGIN ... COMMIT, as a statement of its own (and, if the migration tool wraps files in a transaction, in a migration of its own that runs outside one)."
	}
	st.context = append(st.context, f.finding(st, RuleConcurrentlyInTx,
		sentence(fmt.Sprintf("%s cannot run inside a transaction block, and this one is in one (%s): PostgreSQL refuses it and the migration fails", what, f.tx.why)), do))
}

// afterChange applies the rules that need what the statement does: CUT102
// and CUT103, and records the constraints it adds or validates.
func (f *fileCheck) afterChange(st *stmt, n *pg_query.Node) {
	if at := n.GetAlterTableStmt(); at != nil && at.Objtype == pg_query.ObjectType_OBJECT_TABLE {
		t := rel(at.Relation)
		for _, c := range at.Cmds {
			cmd := c.GetAlterTableCmd()
			if cmd == nil {
				continue
			}
			switch cmd.Subtype {
			case pg_query.AlterTableType_AT_AddConstraint:
				f.added(st, t, cmd.Def.GetConstraint())
			case pg_query.AlterTableType_AT_ValidateConstraint:
				f.validated(st, t, cmd.Name)
			}
		}
	}
	f.lockTimeout(st)
}

// added records a constraint the statement adds.
func (f *fileCheck) added(st *stmt, t relName, con *pg_query.Constraint) {
	if con == nil {
		return
	}
	cols := notNullColumns(con)
	key := t.key() + "\x00" + con.Conname
	if !con.SkipValidation {
		for _, col := range cols {
			f.c.proven[notNullKey(t, col)] = true
		}
		return
	}
	if len(cols) > 0 {
		f.c.pending[key] = cols
	}
	if f.tx.in && !f.c.created[t.key()] {
		f.tx.notValid[key] = st.line
	}
}

// validated records VALIDATE CONSTRAINT name of table t: CUT102 when it
// was added NOT VALID in the same transaction.
func (f *fileCheck) validated(st *stmt, t relName, name string) {
	key, unnamed := t.key()+"\x00"+name, t.key()+"\x00"
	for _, k := range []string{key, unnamed} {
		if cols, ok := f.c.pending[k]; ok {
			for _, col := range cols {
				f.c.proven[notNullKey(t, col)] = true
			}
			delete(f.c.pending, k)
			break
		}
	}
	line, ok := f.tx.notValid[key]
	if !ok {
		line, ok = f.tx.notValid[unnamed]
	}
	if !ok {
		return
	}
	st.context = append(st.context, f.finding(st, RuleValidateSameTx,
		sentence(fmt.Sprintf("constraint %s was added NOT VALID on line %d in the same transaction (%s), whose lock on %s is held until it commits: the validation scans %s under it, and NOT VALID gains nothing", name, line, f.tx.why, t, t)),
		RuleByID(RuleValidateSameTx).Do))
}

// lockTimeout applies CUT103 to the statement's strongest lock.
func (f *fileCheck) lockTimeout(st *stmt) {
	a := st.lock
	if _, writes := a.lock.Blocks(); !writes || f.tx.lockTimeoutSet() {
		return
	}
	on := a.where
	if on == "" {
		on = a.table.String()
	}
	waits := "query on " + on
	if a.lock != plans.LockAccessExclusive {
		waits = "write to " + on
	}
	reason := fmt.Sprintf("it takes %s on %s with no lock_timeout set before it in %s: while any transaction holding a lock on %s runs, it waits for its lock, and every later %s waits behind it", a.lock, on, f.src.Name, on, waits)
	if f.tx.localOutside > 0 {
		reason += fmt.Sprintf(" (the SET LOCAL lock_timeout on line %d ran outside a transaction block, where it lasts for that statement only)", f.tx.localOutside)
	}
	fd := f.finding(st, RuleLockTimeout, sentence(reason), RuleByID(RuleLockTimeout).Do)
	fd.Lock, fd.Table = a.lock, on
	fd.Hazards = []plans.HazardType{plans.HazardBlocksWrites}
	if a.lock == plans.LockAccessExclusive {
		fd.Hazards = []plans.HazardType{plans.HazardAccessExclusive}
	}
	st.context = append(st.context, fd)
}
