package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/migrations"
	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// checkFlags are the flags of cutover check.
type checkFlags struct {
	schemaFile string
	dbURL      string
	format     string
	planDir    string
}

func newCheckCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check [--schema FILE | --db URL] [--format text|json|github] [--plan-dir DIR] PATH...",
		Short: "Find the statements of migration files that are unsafe to run as written",
		Long: `Check reads migration files (and directories of them) as the migration tool
runs them, in version order, and reports every statement that would lock,
rewrite or scan a table the application uses, break the releases running
during the deploy, or lose data: with its file, line and column, a rule id,
the reason, and what to do instead. With --plan-dir it writes the safe plan
of each unsafe statement there (Markdown and JSON).

Layouts: golang-migrate (*.up.sql; *.down.sql is skipped), goose (-- +goose
Up / Down / StatementBegin / StatementEnd / NO TRANSACTION), dbmate
(-- migrate:up / -- migrate:down, transaction:false), Flyway
(V<version>__<name>.sql, R__<name>.sql), and plain .sql files (lexical
order). The tool's own transaction counts: CREATE INDEX CONCURRENTLY fails
in a goose migration without NO TRANSACTION.

The files checked are one migration set: a statement on a table created
earlier in the set is safe (the table is new and empty). Check the
migrations a change adds, not those already run: with --schema FILE
(pg_dump --schema-only output of the database before them) or --db URL,
each statement is also checked against the schema as the statements
before it leave it (type changes that rewrite nothing are told apart,
unknown tables are errors).

Suppress a finding with a comment on the line right before the statement:
  -- cutover:ignore CUT013 the table has 40 rows

Exit codes: 0 nothing unsafe; 1 unsafe statements found (suppressed ones
do not count); 2 bad input: a flag, a file, a syntax error (with its file,
line and column), a statement that contradicts the schema.`,
		Example: `  cutover check db/migrations
  cutover check --schema schema.sql --format github $(git diff --name-only origin/main -- db/migrations)
  cutover check --db "$DATABASE_URL" --plan-dir plans/ migrations/20240501_orders.sql`,
		Args:                  cobra.ArbitraryArgs,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.schemaFile, "schema", "", "check against the schema dump in `FILE` (pg_dump --schema-only output)")
	fl.StringVar(&f.dbURL, "db", "", "check against the live database at `URL` (\"\" for DATABASE_URL or the PG* variables)")
	fl.StringVar(&f.format, "format", "text", "output `FORMAT`: text, json or github (GitHub Actions annotations)")
	fl.StringVar(&f.planDir, "plan-dir", "", "write the safe plan of each unsafe statement to `DIR` (Markdown and JSON)")
	return cmd
}

// checkedFinding is a finding with the plan file written for it.
type checkedFinding struct {
	planner.Finding
	// PlanFile is the Markdown plan written for the finding's statement
	// (--plan-dir), "" for none.
	PlanFile string `json:"plan_file,omitempty"`
}

// checkReport is what cutover check found; its JSON form is the output of
// --format json (described in the README).
type checkReport struct {
	Version    int              `json:"version"`
	Files      int              `json:"files"`
	Statements int              `json:"statements"`
	Unjudged   int              `json:"unjudged"`
	Findings   []checkedFinding `json:"findings"`
	Suppressed []checkedFinding `json:"suppressed"`
}

func runCheck(cmd *cobra.Command, f *checkFlags, args []string) error {
	switch f.format {
	case "text", "json", "github":
	default:
		return fmt.Errorf("unknown --format %q: use text, json or github", f.format)
	}
	if len(args) == 0 {
		return errors.New("no migrations to check: give the files or directories to check")
	}
	live := cmd.Flags().Changed("db")
	if live && f.schemaFile != "" {
		return errors.New("give the schema in one way only: --schema FILE or --db URL")
	}
	if f.planDir != "" {
		if st, err := os.Stat(f.planDir); err == nil && !st.IsDir() {
			return fmt.Errorf("--plan-dir %s is not a directory", f.planDir)
		}
	}
	files, err := migrations.Load(args)
	if err != nil {
		return err
	}
	var s *schema.Schema
	switch {
	case live:
		if s, err = introspect(cmd.Context(), f.dbURL); err != nil {
			return err
		}
	case f.schemaFile != "":
		if s, err = checkSchema(f.schemaFile, files); err != nil {
			return err
		}
	}
	rep, err := check(files, s, f.planDir != "")
	if err != nil {
		return err
	}
	if f.planDir != "" {
		if err := writePlans(f.planDir, rep); err != nil {
			return err
		}
	}
	var out []byte
	switch f.format {
	case "json":
		if out, err = json.MarshalIndent(rep, "", "  "); err != nil {
			return err
		}
		out = append(out, '\n')
	case "github":
		out = githubAnnotations(rep)
	default:
		out = checkText(rep)
	}
	if _, err := cmd.OutOrStdout().Write(out); err != nil {
		return err
	}
	if n := len(rep.Findings); n > 0 {
		return &exitError{code: ExitFindings, err: fmt.Errorf("%s (%s)", count(n, "unsafe finding"), summary(rep))}
	}
	return nil
}

// checkSchema loads the part of the --schema dump the migrations need.
func checkSchema(path string, files []migrations.File) (*schema.Schema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read --schema %s: %w", path, pathErr(err))
	}
	rels, types := map[string]bool{}, map[string]bool{}
	for _, mf := range files {
		// A file that does not parse is reported by the check itself,
		// with its position.
		if t, err := planner.Relations(mf.SQL); err == nil {
			for _, r := range t.Relations {
				rels[r] = true
			}
			for _, ty := range t.Types {
				types[ty] = true
			}
		}
	}
	s, err := schema.ParseDumpFor(path, string(b), keys(rels), keys(types))
	if err != nil {
		return nil, fmt.Errorf("--schema %w", err)
	}
	s.Source = "schema file " + path
	return s, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// check runs the checker over the files, in order.
func check(files []migrations.File, s *schema.Schema, withPlans bool) (*checkReport, error) {
	c := planner.NewChecker(planner.CheckOptions{Schema: s, Plans: withPlans})
	rep := &checkReport{Version: 1, Findings: []checkedFinding{}, Suppressed: []checkedFinding{}}
	for _, mf := range files {
		found, err := c.Check(planner.Source{Name: mf.Path, SQL: mf.SQL, Tx: txMode(mf.Transaction), TxNote: mf.TxNote})
		if err != nil {
			return nil, err
		}
		for _, fd := range found {
			if fd.Suppressed != "" {
				rep.Suppressed = append(rep.Suppressed, checkedFinding{Finding: fd})
			} else {
				rep.Findings = append(rep.Findings, checkedFinding{Finding: fd})
			}
		}
	}
	st := c.Stats()
	rep.Files, rep.Statements, rep.Unjudged = st.Files, st.Statements, st.Unjudged
	return rep, nil
}

func txMode(t migrations.Transaction) planner.TxMode {
	switch t {
	case migrations.FileTransaction:
		return planner.TxFile
	case migrations.QueryTransaction:
		return planner.TxImplicit
	case migrations.UnlessNonTransactional:
		return planner.TxUnlessNonTransactional
	}
	return planner.TxNone
}

// writePlans writes the safe plan of each flagged statement to dir, as
// <file>-L<line>.md and .json, once per statement.
func writePlans(dir string, rep *checkReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create --plan-dir %s: %w", dir, pathErr(err))
	}
	written := map[string]bool{}
	for _, list := range [][]checkedFinding{rep.Findings, rep.Suppressed} {
		for i := range list {
			fd := &list[i]
			if fd.Plan == nil {
				continue
			}
			base := filepath.Join(dir, planFileName(fd.File, fd.Line))
			fd.PlanFile = base + ".md"
			if written[base] {
				continue
			}
			written[base] = true
			js, err := plans.Encode(fd.Plan)
			if err != nil {
				return fmt.Errorf("cannot encode the plan of %s:%d: %w", fd.File, fd.Line, err)
			}
			for name, data := range map[string][]byte{base + ".md": []byte(plans.Markdown(fd.Plan)), base + ".json": js} {
				if err := os.WriteFile(name, data, 0o644); err != nil {
					return fmt.Errorf("cannot write the plan %s: %w", name, pathErr(err))
				}
			}
		}
	}
	return nil
}

// planFileName names the plan of the statement at line of file:
// db/migrations/0003_x.up.sql, 4 -> db_migrations_0003_x.up.sql-L4.
func planFileName(file string, line int) string {
	p := filepath.ToSlash(filepath.Clean(file))
	for strings.HasPrefix(p, "../") {
		p = p[3:]
	}
	p = strings.TrimPrefix(p, "/")
	p = strings.NewReplacer("/", "_", ":", "_").Replace(p)
	return fmt.Sprintf("%s-L%d", p, line)
}

// checkText is the human output: findings grouped by file, then a summary.
func checkText(rep *checkReport) []byte {
	var b bytes.Buffer
	file := ""
	all := append(append([]checkedFinding{}, rep.Findings...), rep.Suppressed...)
	sortFindings(all)
	for _, fd := range all {
		if fd.File != file {
			if file != "" {
				b.WriteString("\n")
			}
			file = fd.File
			b.WriteString(file + "\n")
		}
		pos := fmt.Sprintf("%d:%d", fd.Line, fd.Column)
		if fd.Suppressed != "" {
			fmt.Fprintf(&b, "  %-7s %s %s  suppressed: %s\n", pos, fd.Rule, fd.Name, fd.Suppressed)
			continue
		}
		fmt.Fprintf(&b, "  %-7s %s %s\n", pos, fd.Rule, fd.Name)
		indent := "          "
		fmt.Fprintf(&b, "%s%s\n", indent, fd.Statement)
		fmt.Fprintf(&b, "%s%s\n", indent, fd.Reason)
		fmt.Fprintf(&b, "%sInstead: %s\n", indent, fd.Alternative)
		switch {
		case fd.PlanFile != "":
			fmt.Fprintf(&b, "%sSafe plan: %s\n", indent, fd.PlanFile)
		case fd.PlanError != "" && fd.Plan == nil:
			fmt.Fprintf(&b, "%sNo safe plan: %s\n", indent, fd.PlanError)
		}
	}
	if len(all) > 0 {
		b.WriteString("\n")
	}
	if len(rep.Findings) == 0 {
		b.WriteString("Nothing unsafe. ")
	} else {
		fmt.Fprintf(&b, "%s. ", count(len(rep.Findings), "unsafe finding"))
	}
	b.WriteString(sentenceCase(summary(rep)) + ".\n")
	return b.Bytes()
}

// summary says what was checked.
func summary(rep *checkReport) string {
	parts := []string{fmt.Sprintf("%s in %s checked", count(rep.Statements, "statement"), count(rep.Files, "file"))}
	if n := len(rep.Suppressed); n > 0 {
		parts = append(parts, count(n, "finding")+" suppressed")
	}
	if n := rep.Unjudged; n > 0 {
		parts = append(parts, fmt.Sprintf("%s not judged (cutover has no rule about %s)", count(n, "statement"), map[bool]string{true: "its kind", false: "their kinds"}[n == 1]))
	}
	return strings.Join(parts, ", ")
}

func sentenceCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func sortFindings(fs []checkedFinding) {
	// Stable: the report lists files in the order they were checked.
	order := map[string]int{}
	for _, fd := range fs {
		if _, ok := order[fd.File]; !ok {
			order[fd.File] = len(order)
		}
	}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if order[a.File] != order[b.File] {
			return order[a.File] < order[b.File]
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Rule < b.Rule
	})
}

// githubAnnotations is the output for GitHub Actions: one ::error
// workflow command per finding, then the summary.
func githubAnnotations(rep *checkReport) []byte {
	var b bytes.Buffer
	prop := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
	data := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	for _, fd := range rep.Findings {
		fmt.Fprintf(&b, "::error file=%s,line=%d,col=%d,title=%s::%s\n",
			prop.Replace(filepath.ToSlash(fd.File)), fd.Line, fd.Column, prop.Replace(fd.Rule+" "+fd.Name),
			data.Replace(fmt.Sprintf("%s %s: %s Instead: %s", fd.Rule, fd.Statement, fd.Reason, fd.Alternative)))
	}
	if len(rep.Findings) == 0 {
		fmt.Fprintf(&b, "cutover check: nothing unsafe (%s).\n", summary(rep))
	} else {
		fmt.Fprintf(&b, "cutover check: %s (%s).\n", count(len(rep.Findings), "unsafe finding"), summary(rep))
	}
	return b.Bytes()
}
