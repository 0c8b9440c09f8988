package planner

// Positions and cutover:ignore comments, from PostgreSQL's own scanner:
// statement positions skip the comments and blank lines before a statement
// (a RawStmt's location includes them), and a comment is only a comment
// where the scanner says so (not inside a string or a dollar-quoted body).

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v5"

	"github.com/cutover/cutover/plans"
)

// sourceText is a file's SQL with its tokens and line starts.
type sourceText struct {
	sql    string
	tokens []*pg_query.ScanToken
	// lineStarts holds the byte offset of each line's start.
	lineStarts []int
}

func newSourceText(sql string) (*sourceText, error) {
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return nil, err
	}
	t := &sourceText{sql: sql, tokens: scan.Tokens, lineStarts: []int{0}}
	for i := 0; i < len(sql); i++ {
		if sql[i] == '\n' {
			t.lineStarts = append(t.lineStarts, i+1)
		}
	}
	return t, nil
}

func isComment(tok *pg_query.ScanToken) bool {
	return tok.Token == pg_query.Token_SQL_COMMENT || tok.Token == pg_query.Token_C_COMMENT
}

// span returns the byte range of a statement from its first token (not a
// comment) to its end, without the semicolon.
func (t *sourceText) span(raw *pg_query.RawStmt) (start, end int) {
	start, end = int(raw.StmtLocation), len(t.sql)
	if raw.StmtLen > 0 {
		end = start + int(raw.StmtLen)
	}
	i := sort.Search(len(t.tokens), func(i int) bool { return int(t.tokens[i].Start) >= start })
	for ; i < len(t.tokens) && int(t.tokens[i].Start) < end; i++ {
		if !isComment(t.tokens[i]) {
			start = int(t.tokens[i].Start)
			break
		}
	}
	return start, end
}

// position returns the 1-based line and character column of an offset.
func (t *sourceText) position(offset int) (line, column int) {
	i := sort.Search(len(t.lineStarts), func(i int) bool { return t.lineStarts[i] > offset }) - 1
	return i + 1, utf8.RuneCountInString(t.sql[t.lineStarts[i]:offset]) + 1
}

// ignore is a -- cutover:ignore RULE[,RULE] reason comment.
type ignore struct {
	line, column int
	text         string
	rules        []string
	reason       string
	// problem says what is wrong with the comment ("" when nothing);
	// attached is set once it stands right before a statement.
	problem  string
	attached bool
}

// ignores finds the file's cutover:ignore comments.
func (t *sourceText) ignores() []*ignore {
	var out []*ignore
	for _, tok := range t.tokens {
		if tok.Token != pg_query.Token_SQL_COMMENT {
			continue
		}
		text := t.sql[tok.Start:tok.End]
		body := strings.TrimSpace(strings.TrimPrefix(text, "--"))
		rest, ok := strings.CutPrefix(body, ignoreDirective)
		if !ok || rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			continue
		}
		ig := &ignore{text: short(text)}
		ig.line, ig.column = t.position(int(tok.Start))
		fields := strings.Fields(rest)
		if len(fields) > 0 {
			for _, id := range strings.Split(fields[0], ",") {
				if id = strings.TrimSpace(id); id != "" {
					ig.rules = append(ig.rules, strings.ToUpper(id))
				}
			}
			ig.reason = strings.Join(fields[1:], " ")
		}
		var problems []string
		if len(ig.rules) == 0 {
			problems = append(problems, "names no rule")
		}
		for _, id := range ig.rules {
			if RuleByID(id) == nil {
				problems = append(problems, fmt.Sprintf("names %s, which is not a cutover rule", id))
			}
		}
		if ig.reason == "" {
			problems = append(problems, "gives no reason (say why the risk is accepted here)")
		}
		ig.problem = strings.Join(problems, " and ")
		out = append(out, ig)
	}
	return out
}

// commentOnly reports whether the line holds comments and nothing else.
func (t *sourceText) commentOnly(line int) bool {
	if line < 1 || line > len(t.lineStarts) {
		return false
	}
	from := t.lineStarts[line-1]
	to := len(t.sql)
	if line < len(t.lineStarts) {
		to = t.lineStarts[line]
	}
	i := sort.Search(len(t.tokens), func(i int) bool { return int(t.tokens[i].End) > from })
	seen := false
	for ; i < len(t.tokens) && int(t.tokens[i].Start) < to; i++ {
		if !isComment(t.tokens[i]) || int(t.tokens[i].Start) < from {
			return false
		}
		seen = true
	}
	return seen
}

// attach returns the ignore comments in the block of comment-only lines
// right above a statement starting on line.
func (f *fileCheck) attach(line int) []*ignore {
	var out []*ignore
	for l := line - 1; f.text.commentOnly(l); l-- {
		for _, ig := range f.ignores {
			if ig.line == l {
				ig.attached = true
				out = append(out, ig)
			}
		}
	}
	return out
}

// settle applies the statement's ignore comments to its findings and
// keeps them.
func (f *fileCheck) settle(st *stmt) {
	for _, fd := range append(st.context, st.findings...) {
		for _, ig := range st.ignores {
			if ig.problem == "" && containsString(ig.rules, fd.Rule) {
				fd.Suppressed = ig.reason
			}
		}
		f.out = append(f.out, fd)
	}
}

// finish reports the ignore comments that are wrong or apply to no
// statement, and returns the file's findings.
func (f *fileCheck) finish() []Finding {
	for _, ig := range f.ignores {
		problem := ig.problem
		if problem == "" && !ig.attached {
			problem = "is not on the line right before a statement (comment lines may come between, blank lines may not), so it suppresses nothing"
		}
		if problem == "" {
			continue
		}
		r := RuleByID(RuleIgnoreComment)
		f.out = append(f.out, Finding{Rule: r.ID, Name: r.Name, File: f.src.Name, Line: ig.line, Column: ig.column,
			Statement: ig.text, Hazards: []plans.HazardType{},
			Reason:      sentence("this cutover:ignore comment " + problem),
			Alternative: r.Do})
	}
	return f.out
}
