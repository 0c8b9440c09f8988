package planner

import (
	"fmt"
	"strings"
)

// oneLine keeps an error message on one line, as users see it: names and
// SQL quoted in a message may hold line breaks, which are shown escaped.
var oneLine = strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace

// SyntaxError is input PostgreSQL's parser rejects.
type SyntaxError struct {
	// Line and Column are 1-based; Column counts characters.
	Line, Column int
	Message      string
}

func (e *SyntaxError) Error() string {
	return oneLine(fmt.Sprintf("syntax error at line %d, column %d: %s", e.Line, e.Column, e.Message))
}

// UnsupportedError is a statement cutover does not know how to plan safely.
type UnsupportedError struct {
	Statement string // shortened statement text
	Line      int
	Reason    string

	// naive, when set, says what the statement does as written: it is
	// unsafe, and the checker reports it under naive.rule (see
	// stmtInfo.unsafe).
	naive *asWritten
}

func (e *UnsupportedError) Error() string {
	return oneLine(fmt.Sprintf("line %d: cannot plan %q: %s", e.Line, e.Statement, e.Reason))
}

// InvalidError is a statement that contradicts the schema: an unknown table
// or column, a name already taken, an impossible cast.
type InvalidError struct {
	Statement string
	Line      int
	Reason    string
}

func (e *InvalidError) Error() string {
	return oneLine(fmt.Sprintf("line %d: %q: %s", e.Line, e.Statement, e.Reason))
}
