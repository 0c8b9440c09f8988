package planner

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// Every identifier cutover writes into SQL goes through ident or qname;
// expressions taken from the input are deparsed from their parse tree,
// never copied as text.

// ident quotes one identifier: user -> "user", Unit Price -> "Unit Price".
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// literal quotes a string constant.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// relName is a schema-qualified relation name from the input or schema.
type relName struct {
	Schema, Name string
}

// quoted is the relation as SQL: "public"."Order Items".
func (r relName) quoted() string { return pgx.Identifier{r.Schema, r.Name}.Sanitize() }

// key is the schema model's key for the relation.
func (r relName) key() string { return r.Schema + "." + r.Name }

// String is the relation for people: public."Order Items" style is noisy in
// prose, so names are shown unquoted.
func (r relName) String() string { return r.Schema + "." + r.Name }

// sibling returns a relation in the same schema.
func (r relName) sibling(name string) relName { return relName{r.Schema, name} }

// column is a qualified column reference "public"."t"."c" for COMMENT-like
// statements; most statements use ident(col) with the table implied.

// deparseExpr renders an expression node back to SQL via the parser's own
// deparser, by wrapping it in a SELECT.
func deparseExpr(n *pg_query.Node) (string, error) {
	tree := &pg_query.ParseResult{Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_SelectStmt{
		SelectStmt: &pg_query.SelectStmt{
			TargetList: []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: n}}}},
		},
	}}}}}
	s, err := pg_query.Deparse(tree)
	if err != nil {
		return "", fmt.Errorf("deparse expression: %w", err)
	}
	out, ok := strings.CutPrefix(s, "SELECT ")
	if !ok {
		return "", fmt.Errorf("deparse expression: unexpected %q", s)
	}
	return out, nil
}

// deparseType renders a type name as SQL (e.g. "numeric(6,2)", "varchar(10)[]").
func deparseType(tn *pg_query.TypeName) (string, error) {
	cast := &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
		Arg:      &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Isnull: true}}},
		TypeName: tn,
	}}}
	s, err := deparseExpr(cast)
	if err != nil {
		return "", err
	}
	out, ok := strings.CutPrefix(s, "NULL::")
	if !ok {
		return "", fmt.Errorf("deparse type: unexpected %q", s)
	}
	return out, nil
}

// stmtText returns the source text of a statement, trimmed, for messages.
func stmtText(src string, raw *pg_query.RawStmt) string {
	start := int(raw.StmtLocation)
	end := len(src)
	if raw.StmtLen > 0 {
		end = start + int(raw.StmtLen)
	}
	if start < 0 || start > len(src) || end > len(src) || start > end {
		return ""
	}
	return strings.TrimSpace(src[start:end])
}

// short shortens a statement to one line for error messages.
func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 80 {
		return string(r[:77]) + "..."
	}
	return s
}

// lineOf returns the 1-based line of a byte offset in src.
func lineOf(src string, offset int) int {
	if offset < 0 {
		offset = 0
	}
	if offset > len(src) {
		offset = len(src)
	}
	return strings.Count(src[:offset], "\n") + 1
}

// stmtStartLine returns the line of the first non-blank character of the
// statement (RawStmt locations include leading whitespace and comments).
func stmtStartLine(src string, raw *pg_query.RawStmt) int {
	start := int(raw.StmtLocation)
	if start < 0 || start > len(src) {
		return 1
	}
	rest := src[start:]
	trimmed := strings.TrimLeft(rest, " \t\r\n")
	return lineOf(src, start+len(rest)-len(trimmed))
}

// shortName builds an identifier of at most 63 bytes (NAMEDATALEN-1) from
// parts, so generated names are never silently truncated by PostgreSQL: when
// too long, the tail is replaced by a short hash of the whole.
func shortName(parts ...string) string {
	name := strings.Join(parts, "_")
	if len(name) <= 63 {
		return name
	}
	h := fnv32(name)
	cut := 63 - 9
	// Do not cut inside a UTF-8 sequence.
	for cut > 0 && name[cut]&0xC0 == 0x80 {
		cut--
	}
	return fmt.Sprintf("%s_%08x", name[:cut], h)
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
