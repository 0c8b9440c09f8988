// Package planner turns naive DDL and DML into an expand / migrate /
// contract plan. It is pure: SQL text and a schema model in, a plan out, no
// I/O. Each kind of change is one file (op_*.go) implementing operation.
package planner

import (
	"errors"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v5"
	"github.com/pganalyze/pg_query_go/v5/parser"

	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// Options tune planning.
type Options struct {
	// Schema is the schema to plan against; nil plans without one, listing
	// the assumptions made.
	Schema *schema.Schema
	// BackfillRowsPerSecond estimates backfill speed for the plan's facts;
	// 0 means the default (50,000 rows/s, measured by the backfill benchmark).
	BackfillRowsPerSecond float64
}

func (o Options) backfillRate() float64 {
	if o.BackfillRowsPerSecond > 0 {
		return o.BackfillRowsPerSecond
	}
	return 50000
}

// operation is one change intent taken from the input ("rename column email
// of public.customer to email_address"). Each kind lives in its own file.
type operation interface {
	// validate checks the operation against the schema; it is only called
	// when there is one.
	validate(s *schema.Schema) error
	// plan contributes the operation's steps, releases and warnings.
	plan(b *builder) error
	// naive says what the statement does when run as written: the lock
	// it takes and, when that is unsafe, the rule it breaks and why (see
	// naive.go). It is called after validate (when there is a schema)
	// and before plan.
	naive(ctx *naiveContext) asWritten
}

// stmtInfo locates the statement an operation came from, for errors.
type stmtInfo struct {
	text string
	line int
}

func (si stmtInfo) unsupported(reason string) error {
	return &UnsupportedError{Statement: short(si.text), Line: si.line, Reason: reason}
}

// unsafe refuses a statement that is unsafe as written and that cutover
// has no plan for; a says what it does, for the checker.
func (si stmtInfo) unsafe(a asWritten, reason string) error {
	return &UnsupportedError{Statement: short(si.text), Line: si.line, Reason: reason, naive: &a}
}

// withNaive adds what the statement does as written to an
// *UnsupportedError that does not say it yet (a statement cutover cannot
// plan is still unsafe as written); other errors are returned as they are.
func withNaive(err error, a asWritten) error {
	var ue *UnsupportedError
	if errors.As(err, &ue) && ue.naive == nil {
		c := *ue
		c.naive = &a
		return &c
	}
	return err
}

func (si stmtInfo) invalid(reason string) error {
	return &InvalidError{Statement: short(si.text), Line: si.line, Reason: reason}
}

// Plan parses sql and plans it. On any error nothing is planned: the error
// is a *SyntaxError, *UnsupportedError or *InvalidError.
//
// Each statement is validated and planned against the schema as the
// statements before it leave it (see multistatement.go); opts.Schema itself
// is never modified.
func Plan(sql string, opts Options) (*plans.Plan, error) {
	planned, err := prepare(sql, opts.Schema)
	if err != nil {
		return nil, err
	}
	return planOps(sql, opts.Schema, planned, opts)
}

// planOps plans operations prepared from sql against base, the schema the
// plan starts from (nil for none).
func planOps(sql string, base *schema.Schema, planned []plannedOp, opts Options) (*plans.Plan, error) {
	b := newBuilder(base, opts)
	if base == nil {
		b.assume("Planned without a schema: tables, columns and types are assumed to exist as the statements say; pass --schema or --db to have them checked.")
		b.assume("Unqualified table names are in schema public.")
	}
	for _, p := range planned {
		b.schema, b.created = p.schema, p.created
		if err := p.op.plan(b); err != nil {
			return nil, err
		}
		if b.conflict != "" {
			return nil, p.si.unsupported(b.conflict)
		}
	}
	return b.build(sql)
}

// Operations parses sql into operations, validated against s when it is
// not nil, each against the schema as the statements before it leave it.
// It is the shared front end of the planner and the checker.
func Operations(sql string, s *schema.Schema) ([]operation, error) {
	planned, err := prepare(sql, s)
	if err != nil {
		return nil, err
	}
	ops := make([]operation, len(planned))
	for i, p := range planned {
		ops[i] = p.op
	}
	return ops, nil
}

// parseInput parses the SQL to plan, refusing input with no statement;
// errors are *SyntaxError. Planning, Relations and the checker start here.
func parseInput(sql string) (*pg_query.ParseResult, error) {
	if strings.TrimSpace(sql) == "" {
		return nil, &SyntaxError{Line: 1, Column: 1, Message: "no SQL statement in the input"}
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, syntaxError(sql, err)
	}
	if len(tree.Stmts) == 0 {
		return nil, &SyntaxError{Line: 1, Column: 1, Message: "no SQL statement in the input (only comments or semicolons)"}
	}
	return tree, nil
}

// syntaxError converts pg_query's error (with a 1-based byte cursor) into a
// line and a character column.
func syntaxError(src string, err error) error {
	var pe *parser.Error
	if !errors.As(err, &pe) {
		return &SyntaxError{Line: 1, Column: 1, Message: err.Error()}
	}
	off := pe.Cursorpos - 1
	if off < 0 {
		off = 0
	}
	if off > len(src) {
		off = len(src)
	}
	line := lineOf(src, off)
	lineStart := strings.LastIndex(src[:off], "\n") + 1
	col := utf8.RuneCountInString(src[lineStart:off]) + 1
	return &SyntaxError{Line: line, Column: col, Message: pe.Message}
}
