package planner

// Checking migrations (cutover check).
//
// The checker reads migration files as the migration tool runs them, in
// order, and reports each statement that is unsafe as written. It has no
// rules of its own about single statements: it asks each statement's
// operations what they do as written (naive(), in the op files, with the
// rules of rules.go) and reports what they say. The rules about sequences
// of statements (check_context.go) are the checker's: a statement that
// cannot run in a transaction block inside one, NOT VALID validated in the
// same transaction, a lock taken with no lock_timeout set.
//
// A migration set is checked like one input of the planner: each statement
// against the schema as the statements before it leave it (when there is
// a schema), and a statement on a table created earlier in the set is
// safe (the table is new and empty, and no release uses it yet).
// Statements the planner does not know (GRANT, INSERT, CREATE TRIGGER...)
// are not judged; Stats counts them.

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// TxMode says how a migration tool runs the statements of a file.
type TxMode int

const (
	// TxNone: each statement commits on its own (psql -f, plain files),
	// unless the file says BEGIN.
	TxNone TxMode = iota
	// TxFile: the tool runs the whole file in one transaction (goose,
	// dbmate).
	TxFile
	// TxImplicit: the tool sends the file as one query string, which
	// PostgreSQL runs as one transaction when it holds several statements
	// (golang-migrate).
	TxImplicit
	// TxUnlessNonTransactional: one transaction, unless every statement
	// of the file is one that cannot run in a transaction block (Flyway).
	TxUnlessNonTransactional
)

// Source is one migration file.
type Source struct {
	// Name names the file in findings and errors.
	Name string
	// SQL is what the migration tool runs, at the byte offsets it has in
	// the file (the sections the tool does not run blanked out), so that
	// positions are the file's.
	SQL string
	// Tx says how the tool runs the file; TxNote says so for people, with
	// how to run it outside a transaction ("goose runs each migration in a
	// transaction unless it has -- +goose NO TRANSACTION").
	Tx     TxMode
	TxNote string
}

// CheckOptions tune the checker.
type CheckOptions struct {
	// Schema is the schema before the first file; nil checks without
	// one (type changes cannot be told binary-coercible, and nothing is
	// checked against existing objects).
	Schema *schema.Schema
	// Plans asks for the safe plan of every flagged statement
	// (Finding.Plan).
	Plans bool
}

// Finding is one unsafe statement (or comment) and why. The JSON field
// names are part of cutover check's stable output.
type Finding struct {
	// Rule is the rule's ID (CUT001), Name its slug.
	Rule string `json:"rule"`
	Name string `json:"name"`
	// File, Line and Column locate the statement's first token (1-based;
	// Column counts characters).
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	// Statement is the statement, shortened to one line.
	Statement string `json:"statement"`
	// Table is the table (or view, index) the lock is taken on, when known;
	// Lock the lock.
	Table string     `json:"table,omitempty"`
	Lock  plans.Lock `json:"lock,omitempty"`
	// Hazards are the typed hazards, as the plans name them.
	Hazards []plans.HazardType `json:"hazards"`
	// Reason says what goes wrong; Alternative what to do instead.
	Reason      string `json:"reason"`
	Alternative string `json:"alternative"`
	// Suppressed is the reason given by the cutover:ignore comment that
	// suppresses the finding; "" when it is not suppressed.
	Suppressed string `json:"suppressed,omitempty"`

	// Plan is the safe plan of the statement (CheckOptions.Plans; nil for
	// rules about sequences of statements); PlanError says why there is
	// none when planning it failed.
	Plan      *plans.Plan `json:"-"`
	PlanError string      `json:"plan_error,omitempty"`
}

// CheckError is input the checker cannot check: a syntax error, or a
// statement that contradicts the schema.
type CheckError struct {
	File         string
	Line, Column int
	Message      string
}

func (e *CheckError) Error() string {
	return oneLine(fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Message))
}

// CheckStats count what the checker has read.
type CheckStats struct {
	Files, Statements int
	// Unjudged counts the statements cutover has no rule about (GRANT,
	// INSERT, CREATE TRIGGER...).
	Unjudged int
}

// Checker checks the files of one migration set, in order.
type Checker struct {
	opts CheckOptions
	// cur is the schema as the statements so far leave it (nil without
	// one, or once a statement could not be applied to it).
	cur *schema.Schema
	// created are the tables created so far (see createdAfter).
	created map[string]bool
	// proven and pending track the CHECK (c IS NOT NULL) constraints of
	// the set (see naiveContext.proven): validated, and added NOT VALID
	// ("table\x00name" -> columns).
	proven  map[string]bool
	pending map[string][]string
	stats   CheckStats
}

// NewChecker returns a checker for one migration set.
func NewChecker(opts CheckOptions) *Checker {
	return &Checker{opts: opts, cur: opts.Schema, created: map[string]bool{}, proven: map[string]bool{}, pending: map[string][]string{}}
}

// Stats returns what the checker has read so far.
func (c *Checker) Stats() CheckStats { return c.stats }

// Check checks sql as one file named "input" whose statements each commit
// on their own.
func Check(sql string, opts CheckOptions) ([]Finding, error) {
	return NewChecker(opts).Check(Source{Name: "input", SQL: sql})
}

// Check checks the next file of the set. The findings are sorted by
// position; suppressed ones are included, with Suppressed set. A
// *CheckError is returned for a syntax error or a statement that
// contradicts the schema.
func (c *Checker) Check(src Source) ([]Finding, error) {
	c.stats.Files++
	tree, err := pg_query.Parse(src.SQL)
	if err != nil {
		var se *SyntaxError
		if errors.As(syntaxError(src.SQL, err), &se) {
			return nil, &CheckError{File: src.Name, Line: se.Line, Column: se.Column, Message: "syntax error: " + se.Message}
		}
		return nil, err
	}
	f, err := newFileCheck(c, src, tree)
	if err != nil {
		return nil, err
	}
	for i, raw := range tree.Stmts {
		if err := f.statement(i, raw); err != nil {
			return nil, err
		}
	}
	out := f.finish()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		if out[i].Column != out[j].Column {
			return out[i].Column < out[j].Column
		}
		return out[i].Rule < out[j].Rule
	})
	return out, nil
}

// fileCheck is the check of one file.
type fileCheck struct {
	c    *Checker
	src  Source
	text *sourceText
	tx   txState
	// ignores are the file's cutover:ignore comments.
	ignores []*ignore
	out     []Finding
}

func newFileCheck(c *Checker, src Source, tree *pg_query.ParseResult) (*fileCheck, error) {
	text, err := newSourceText(src.SQL)
	if err != nil {
		return nil, fmt.Errorf("planner: scan %s: %w", src.Name, err)
	}
	f := &fileCheck{c: c, src: src, text: text}
	f.tx = newTxState(src, tree, c.serverVersion())
	f.ignores = text.ignores()
	return f, nil
}

func (c *Checker) serverVersion() int {
	if c.opts.Schema == nil {
		return 0
	}
	return c.opts.Schema.ServerVersion
}

// stmt is the statement being checked.
type stmt struct {
	line, column int
	// text is the statement shortened to one line, full as written.
	text, full string
	ignores    []*ignore
	// ops are the statement's operations, with the schema each was
	// validated against, for its plan; planErr says why it cannot be
	// planned.
	ops     []plannedOp
	base    *schema.Schema
	planErr string
	// lock is the strongest lock it takes on a relation in use.
	lock asWritten
	// findings are the statement's findings from its operations, context
	// those of the rules about sequences of statements; before
	// suppression.
	findings, context []Finding
}

// statement checks the i-th statement of the file.
func (f *fileCheck) statement(i int, raw *pg_query.RawStmt) error {
	c := f.c
	c.stats.Statements++
	start, end := f.text.span(raw)
	full := strings.TrimSpace(f.src.SQL[start:end])
	st := &stmt{text: short(full), full: full, base: c.cur}
	st.line, st.column = f.text.position(start)
	st.ignores = f.attach(st.line)

	// Transaction control and settings are the context's.
	if f.tx.control(f, st, raw.Stmt) {
		return nil
	}
	f.beforeChange(st, raw.Stmt)
	judged := false
	for _, u := range stmtUnits(f.src.SQL, raw) {
		u.si = stmtInfo{text: full, line: st.line}
		ops, err := operationsFor(u.si, u.node, c.cur)
		switch {
		case err != nil:
			var ue *UnsupportedError
			if !errors.As(err, &ue) {
				return f.errorAt(st, err)
			}
			if ue.naive != nil {
				judged = true
				f.asWritten(st, *ue.naive)
				st.planErr = ue.Reason
			}
		default:
			judged = true
		}
		for _, op := range ops {
			if c.cur != nil {
				if err := op.validate(c.cur); err != nil {
					var ue *UnsupportedError
					if !errors.As(err, &ue) {
						return f.errorAt(st, err)
					}
					st.planErr = ue.Reason
				}
			}
			ctx := &naiveContext{schema: c.cur, created: c.created, proven: c.proven}
			f.asWritten(st, op.naive(ctx))
			st.ops = append(st.ops, plannedOp{op: op, si: u.si, schema: c.cur, created: c.created})
		}
		c.evolve(u.node)
	}
	if !judged {
		c.stats.Unjudged++
	}
	f.afterChange(st, raw.Stmt)
	f.plan(st)
	f.settle(st)
	return nil
}

// asWritten records what one operation of the statement does as written.
func (f *fileCheck) asWritten(st *stmt, a asWritten) {
	if a.table.Name != "" && f.c.created[a.table.key()] {
		// An unplannable statement on a new table (its refusal cannot
		// know the table is new): harmless.
		return
	}
	if lockRank(a.lock) > lockRank(st.lock.lock) {
		st.lock = a
	}
	if !a.unsafe() {
		return
	}
	fd := f.finding(st, a.rule, a.reason(), sentence(a.do))
	fd.Lock, fd.Hazards = a.lock, a.hazards()
	switch {
	case a.where != "":
		fd.Table = a.where
	case a.table.Name != "":
		fd.Table = a.table.String()
	}
	for _, x := range st.findings {
		if x.Rule == fd.Rule && x.Reason == fd.Reason {
			return
		}
	}
	st.findings = append(st.findings, fd)
}

// finding is a finding of rule at the statement.
func (f *fileCheck) finding(st *stmt, rule, reason, alternative string) Finding {
	r := RuleByID(rule)
	return Finding{Rule: rule, Name: r.Name, File: f.src.Name, Line: st.line, Column: st.column,
		Statement: st.text, Hazards: []plans.HazardType{}, Reason: reason, Alternative: alternative}
}

// plan adds the statement's safe plan to its findings, when asked for.
func (f *fileCheck) plan(st *stmt) {
	if !f.c.opts.Plans || len(st.findings) == 0 || len(st.ops) == 0 && st.planErr == "" {
		return
	}
	var p *plans.Plan
	errText := st.planErr
	if errText == "" {
		var err error
		if p, err = planOps(st.full, st.base, st.ops, Options{Schema: st.base}); err != nil {
			var ue *UnsupportedError
			var ie *InvalidError
			switch {
			case errors.As(err, &ue):
				errText = ue.Reason
			case errors.As(err, &ie):
				errText = ie.Reason
			default:
				errText = err.Error()
			}
		}
	}
	for i := range st.findings {
		st.findings[i].Plan, st.findings[i].PlanError = p, errText
	}
}

// errorAt turns an error about the statement into a *CheckError at it.
func (f *fileCheck) errorAt(st *stmt, err error) error {
	msg := err.Error()
	var ie *InvalidError
	var ue *UnsupportedError
	switch {
	case errors.As(err, &ie):
		msg = fmt.Sprintf("%q: %s", ie.Statement, ie.Reason)
		if f.c.opts.Schema != nil {
			msg += " (the schema given is the one before the first file checked)"
		}
	case errors.As(err, &ue):
		msg = fmt.Sprintf("%q: %s", ue.Statement, ue.Reason)
	}
	return &CheckError{File: f.src.Name, Line: st.line, Column: st.column, Message: msg}
}

// evolve applies a statement to the schema, and records the tables it
// creates. A statement the schema model cannot follow leaves the rest of
// the set checked without a schema.
func (c *Checker) evolve(n *pg_query.Node) {
	if c.cur != nil && changesSchema(n) {
		next := c.cur.Snapshot()
		if err := next.Apply(n); err != nil {
			next = nil
		}
		c.cur = next
	}
	c.created = createdAfter(c.created, n)
}

// changesSchema reports whether Apply may change the model for n: not for
// the data changes and settings migrations are full of.
func changesSchema(n *pg_query.Node) bool {
	switch n.Node.(type) {
	case *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt,
		*pg_query.Node_SelectStmt, *pg_query.Node_VariableSetStmt, *pg_query.Node_TransactionStmt,
		*pg_query.Node_GrantStmt, *pg_query.Node_CommentStmt:
		return false
	}
	return true
}
