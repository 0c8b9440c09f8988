// Package migrations reads migration sets: .sql files and directories of
// them, written for the common migration tools, in the order the tool runs
// them. For each file it gives the SQL the tool runs when migrating up, at
// the byte offsets it has in the file (so that a position in it is a
// position in the file), and whether the tool wraps it in a transaction.
//
// Layouts:
//
//	golang-migrate  NNN_name.up.sql (NNN_name.down.sql is skipped); the
//	                whole file is sent as one query, which PostgreSQL runs
//	                as one transaction when it holds several statements.
//	goose           a file with a "-- +goose Up" line; the Up section,
//	                "-- +goose StatementBegin/End" blocks kept as they are
//	                (PostgreSQL's parser needs no help with them), the Down
//	                section blanked; one transaction unless the file has
//	                "-- +goose NO TRANSACTION".
//	dbmate          a file with a "-- migrate:up" line; the up section, the
//	                "-- migrate:down" section blanked; one transaction
//	                unless "-- migrate:up transaction:false".
//	Flyway          V<version>__<description>.sql, versions compared part by
//	                part as numbers (1.10 after 1.9); R__<description>.sql
//	                repeatables after every versioned file, by description;
//	                U<version>__ undo files skipped. One transaction, unless
//	                every statement is one that cannot run in one.
//	plain           any other .sql file: run as it is, each statement on its
//	                own (psql -f).
//
// Files with a version (golang-migrate, goose and dbmate take the digits
// their name starts with, Flyway its V version) come first, in version
// order; then plain files, by path; then Flyway repeatables. The
// annotations are read line by line, as the tools themselves read them;
// the SQL is left to PostgreSQL's parser.
package migrations

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Tool is the migration tool a file is written for.
type Tool string

const (
	Plain         Tool = "plain"
	GolangMigrate Tool = "golang-migrate"
	Goose         Tool = "goose"
	Dbmate        Tool = "dbmate"
	Flyway        Tool = "flyway"
)

// Transaction says how the tool runs a file's statements.
type Transaction int

const (
	// NoTransaction: each statement commits on its own, unless the file
	// says BEGIN.
	NoTransaction Transaction = iota
	// FileTransaction: the tool runs the whole file in one transaction.
	FileTransaction
	// QueryTransaction: the tool sends the file as one query, which
	// PostgreSQL runs as one transaction when it holds several statements.
	QueryTransaction
	// UnlessNonTransactional: one transaction, unless every statement is
	// one that cannot run in a transaction block (Flyway).
	UnlessNonTransactional
)

// File is one migration file, as the tool runs it when migrating up.
type File struct {
	// Path is the file's path as found (relative when given relative).
	Path string
	Tool Tool
	// Version is the version in the file name, "" when it has none.
	Version string
	// SQL is the up SQL at the file's byte offsets: lines the tool does
	// not run (a down section) are blanked, line breaks kept.
	SQL string
	// Transaction says how the tool runs the file; TxNote says so for
	// people, with the way to run it outside one.
	Transaction Transaction
	TxNote      string

	// order sorts the set (see the package comment).
	group   int
	version []*big.Int
	key     string
}

// Error is a migration file that cannot be read as its tool would.
type Error struct {
	Path string
	// Line is 1-based; 0 when the error is about the whole file.
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Path + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
}

// Load reads the migration files at paths (files, and directories searched
// recursively for *.sql, skipping hidden ones) and returns them in the
// order the tools run them. Down and undo files are left out. A path given
// twice is read once.
func Load(paths []string) ([]File, error) {
	var names []string
	seen := map[string]bool{}
	add := func(p string) {
		if c := filepath.Clean(p); !seen[c] {
			seen[c] = true
			names = append(names, p)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, &Error{Path: p, Msg: pathErr(err).Error()}
		}
		if !st.IsDir() {
			add(p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != p && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() && strings.HasSuffix(strings.ToLower(d.Name()), ".sql") {
				add(path)
			}
			return nil
		})
		if err != nil {
			return nil, &Error{Path: p, Msg: err.Error()}
		}
	}
	var out []File
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, &Error{Path: name, Msg: pathErr(err).Error()}
		}
		f, ok, err := Read(name, string(b))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, f)
		}
	}
	Sort(out)
	return out, nil
}

// Read reads one migration file: its layout from its name and its
// annotations. ok is false for a file the tool does not run when migrating
// up (a down or undo file).
func Read(path, content string) (f File, ok bool, err error) {
	base := filepath.Base(path)
	f = File{Path: path, Tool: Plain, SQL: content}
	switch {
	case strings.HasSuffix(base, ".down.sql"):
		return f, false, nil
	case strings.HasSuffix(base, ".up.sql"):
		f.Tool, f.Version = GolangMigrate, leadingDigits(base)
		f.Transaction = QueryTransaction
		f.TxNote = "golang-migrate sends the file as one query, which PostgreSQL runs as one transaction when it holds several statements; give the statement a migration file of its own"
	case flywayName(base, 'U') != "":
		return f, false, nil
	case flywayName(base, 'V') != "":
		f.Tool, f.Version = Flyway, flywayName(base, 'V')
		f.Transaction = UnlessNonTransactional
		f.TxNote = "Flyway runs a migration in one transaction when it holds any statement that can run in one (and refuses to mix in the others unless mixed = true); give the statement a migration of its own"
	case strings.HasPrefix(base, "R__") && strings.HasSuffix(base, ".sql"):
		f.Tool = Flyway
		f.Transaction = UnlessNonTransactional
		f.TxNote = "Flyway runs a migration in one transaction when it holds any statement that can run in one (and refuses to mix in the others unless mixed = true); give the statement a migration of its own"
		f.group, f.key = 2, strings.TrimSuffix(strings.TrimPrefix(base, "R__"), ".sql")
		return f, true, nil
	}
	if f.Tool == Plain {
		switch {
		case hasAnnotation(content, gooseAnnotation, "up"):
			f.Tool, f.Version = Goose, leadingDigits(base)
			if err := readGoose(&f); err != nil {
				return f, false, err
			}
		case hasAnnotation(content, dbmateAnnotation, "up"):
			f.Tool, f.Version = Dbmate, leadingDigits(base)
			if err := readDbmate(&f); err != nil {
				return f, false, err
			}
		}
	}
	f.key = path
	if f.Version == "" {
		f.group = 1
		return f, true, nil
	}
	for _, part := range strings.FieldsFunc(f.Version, func(r rune) bool { return r == '.' || r == '_' }) {
		n, valid := new(big.Int).SetString(part, 10)
		if !valid {
			return f, false, &Error{Path: path, Msg: fmt.Sprintf("version %q in the file name is not made of numbers", f.Version)}
		}
		f.version = append(f.version, n)
	}
	return f, true, nil
}

// Sort puts files in the order the tools run them (see the package
// comment).
func Sort(files []File) {
	sort.SliceStable(files, func(i, j int) bool {
		a, b := &files[i], &files[j]
		if a.group != b.group {
			return a.group < b.group
		}
		if a.group == 0 {
			if c := compareVersions(a.version, b.version); c != 0 {
				return c < 0
			}
		}
		return a.key < b.key
	})
}

// compareVersions compares versions part by part as numbers; a missing
// part counts as 0 (Flyway: 1.0 equals 1).
func compareVersions(a, b []*big.Int) int {
	zero := new(big.Int)
	for i := 0; i < len(a) || i < len(b); i++ {
		x, y := zero, zero
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := x.Cmp(y); c != 0 {
			return c
		}
	}
	return 0
}

// leadingDigits returns the digits a file name starts with.
func leadingDigits(base string) string {
	i := 0
	for i < len(base) && base[i] >= '0' && base[i] <= '9' {
		i++
	}
	return base[:i]
}

// flywayName returns the version of a Flyway file name
// <prefix><version>__<description>.sql, or "".
func flywayName(base string, prefix byte) string {
	if len(base) < 2 || base[0] != prefix || base[1] < '0' || base[1] > '9' || !strings.HasSuffix(base, ".sql") {
		return ""
	}
	v, _, ok := strings.Cut(base[1:], "__")
	if !ok {
		return ""
	}
	return v
}

// line is one line of a file with its byte offsets.
type line struct {
	text       string
	start, end int // end excludes the line break
}

func lines(s string) []line {
	var out []line
	start := 0
	for start <= len(s) {
		end := strings.IndexByte(s[start:], '\n')
		if end < 0 {
			out = append(out, line{s[start:], start, len(s)})
			break
		}
		out = append(out, line{s[start : start+end], start, start + end})
		start += end + 1
	}
	return out
}

// blank replaces the given lines by spaces, keeping line breaks (and so
// every offset).
func blank(s string, drop []line) string {
	if len(drop) == 0 {
		return s
	}
	b := []byte(s)
	for _, l := range drop {
		for i := l.start; i < l.end; i++ {
			b[i] = ' '
		}
	}
	return string(b)
}

// An annotation reader returns the annotation of a line, lower case with
// single spaces ("up", "statementbegin", "no transaction"), and what
// follows it for dbmate's options.
type annotation func(text string) (name string, args []string, ok bool)

// gooseAnnotation reads "-- +goose Up" and the like.
func gooseAnnotation(text string) (string, []string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(text), "--")
	if !ok {
		return "", nil, false
	}
	rest, ok = strings.CutPrefix(strings.TrimSpace(rest), "+goose")
	if !ok {
		return "", nil, false
	}
	return strings.ToLower(strings.Join(strings.Fields(rest), " ")), nil, true
}

// dbmateAnnotation reads "-- migrate:up transaction:false" and the like.
func dbmateAnnotation(text string) (string, []string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(text), "--")
	if !ok {
		return "", nil, false
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return "", nil, false
	}
	name, ok := strings.CutPrefix(fields[0], "migrate:")
	if !ok {
		return "", nil, false
	}
	return name, fields[1:], true
}

func hasAnnotation(content string, read annotation, want string) bool {
	for _, l := range lines(content) {
		if name, _, ok := read(l.text); ok && name == want {
			return true
		}
	}
	return false
}

// readGoose keeps the Up section of a goose file.
func readGoose(f *File) error {
	const (
		before = iota
		up
		down
	)
	state := before
	var drop []line
	block := 0 // line of an open StatementBegin
	noTx := false
	for i, l := range lines(f.SQL) {
		name, _, ok := gooseAnnotation(l.text)
		if !ok {
			if state != up {
				drop = append(drop, l)
			}
			continue
		}
		switch name {
		case "up":
			state = up
		case "down":
			if block > 0 && state == up {
				return &Error{Path: f.Path, Line: block, Msg: "-- +goose StatementBegin has no -- +goose StatementEnd before -- +goose Down"}
			}
			state = down
		case "statementbegin":
			if state == up {
				if block > 0 {
					return &Error{Path: f.Path, Line: i + 1, Msg: fmt.Sprintf("-- +goose StatementBegin inside the one on line %d", block)}
				}
				block = i + 1
			}
		case "statementend":
			if state == up {
				if block == 0 {
					return &Error{Path: f.Path, Line: i + 1, Msg: "-- +goose StatementEnd without a StatementBegin"}
				}
				block = 0
			}
		case "no transaction":
			noTx = true
		}
		if state != up {
			drop = append(drop, l)
		}
	}
	if block > 0 {
		return &Error{Path: f.Path, Line: block, Msg: "-- +goose StatementBegin has no -- +goose StatementEnd"}
	}
	f.SQL = blank(f.SQL, drop)
	if !noTx {
		f.Transaction = FileTransaction
		f.TxNote = "goose runs each migration in one transaction unless the file has -- +goose NO TRANSACTION"
	}
	return nil
}

// readDbmate keeps the up section of a dbmate file.
func readDbmate(f *File) error {
	up := false
	var drop []line
	noTx := false
	for _, l := range lines(f.SQL) {
		name, args, ok := dbmateAnnotation(l.text)
		switch {
		case ok && name == "up":
			up = true
			for _, a := range args {
				if opt, val, ok := strings.Cut(a, ":"); ok && opt == "transaction" {
					switch val {
					case "false":
						noTx = true
					case "true":
					default:
						return &Error{Path: f.Path, Line: lineNumber(f.SQL, l.start), Msg: fmt.Sprintf("dbmate option transaction:%s: want true or false", val)}
					}
				}
			}
		case ok && name == "down":
			up = false
		}
		if !up || ok && name == "down" {
			drop = append(drop, l)
		}
	}
	f.SQL = blank(f.SQL, drop)
	if !noTx {
		f.Transaction = FileTransaction
		f.TxNote = "dbmate runs each migration in one transaction unless it says -- migrate:up transaction:false"
	}
	return nil
}

func lineNumber(s string, offset int) int { return strings.Count(s[:offset], "\n") + 1 }

// pathErr drops the path from an *os.PathError, which the message names
// already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
