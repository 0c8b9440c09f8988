package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// planFlags are the flags of cutover plan.
type planFlags struct {
	sql        string
	file       string
	schemaFile string
	dbURL      string
	format     string
	output     string
}

func newPlanCmd() *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   `plan (--sql "..." | -f FILE | -) [--schema FILE | --db URL] [--format text|md|json] [-o FILE]`,
		Short: "Plan a schema change as expand / migrate / contract deploys",
		Long: `Plan reads naive SQL (DDL or large UPDATE/DELETE statements) and prints the
zero-downtime plan that reaches the same end state.

The SQL comes from --sql, from a file (-f FILE), or from standard input (-).
With --schema FILE (pg_dump --schema-only output) the change is checked
against the schema and planned with its facts: dependent views, indexes,
foreign keys, triggers. Only the statements of FILE about the objects the
change touches and their neighbours are parsed; the rest is only split
into statements by PostgreSQL's scanner, which finds unterminated quotes
and comments but not a syntax error inside an unrelated statement.
With --db URL the schema is read live from the database instead, with
each table's estimated rows and size, and the plan estimates backfill
times (--db "" takes the connection from DATABASE_URL or the PG*
variables and ~/.pgpass). Without either, the plan lists what it assumed.

Exit codes: 0 planned; 2 bad input (one line on stderr, nothing on stdout).`,
		Example: `  cutover plan --schema schema.sql --sql "ALTER TABLE customer RENAME COLUMN email TO email_address"
  cutover plan --schema schema.sql -f migration.sql --format md -o PLAN.md
  pg_dump --schema-only mydb > schema.sql
  cutover plan --schema schema.sql - < change.sql
  cutover plan --db postgres://app@db.internal/shop --sql "ALTER TABLE orders ALTER COLUMN id TYPE bigint"`,
		Args:                  cobra.ArbitraryArgs,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.sql, "sql", "", "the `SQL` to plan")
	fl.StringVarP(&f.file, "file", "f", "", "read the SQL to plan from `FILE` (- for standard input)")
	fl.StringVar(&f.schemaFile, "schema", "", "plan against the schema dump in `FILE` (pg_dump --schema-only output)")
	fl.StringVar(&f.dbURL, "db", "", "plan against the live database at `URL` (\"\" for DATABASE_URL or the PG* variables)")
	fl.StringVar(&f.format, "format", "text", "output `FORMAT`: text, md (a Markdown runbook) or json")
	fl.StringVarP(&f.output, "output", "o", "", "write the plan to `FILE` (atomically) instead of standard output")
	return cmd
}

func runPlan(cmd *cobra.Command, f *planFlags, args []string) error {
	// Check everything that needs no work first, so a bad flag never
	// costs a schema parse.
	render, err := renderer(f.format)
	if err != nil {
		return err
	}
	if f.output != "" {
		if err := checkOutputPath(f.output); err != nil {
			return err
		}
	}
	in, err := readInput(cmd, f, args)
	if err != nil {
		return err
	}
	s, err := loadSchema(cmd, f, in)
	if err != nil {
		return err
	}
	p, err := planner.Plan(in.sql, planner.Options{Schema: s})
	if err != nil {
		return in.located(err)
	}
	out, err := render(p)
	if err != nil {
		return fmt.Errorf("cannot encode the plan: %w", err)
	}
	if f.output != "" {
		return writeFileAtomic(f.output, out)
	}
	_, err = cmd.OutOrStdout().Write(out)
	return err
}

// renderer returns the function writing a plan in the named format.
func renderer(format string) (func(*plans.Plan) ([]byte, error), error) {
	switch format {
	case "text":
		return func(p *plans.Plan) ([]byte, error) { return []byte(plans.Text(p)), nil }, nil
	case "md":
		return func(p *plans.Plan) ([]byte, error) { return []byte(plans.Markdown(p)), nil }, nil
	case "json":
		return plans.Encode, nil
	}
	return nil, fmt.Errorf("unknown --format %q: use text, md or json", format)
}

// input is the SQL to plan and where it came from.
type input struct {
	sql string
	// origin names the file ("stdin" for -), "" for --sql.
	origin string
}

// located prefixes a planning error with the file it is about, so that
// "line 3" can be found.
func (in input) located(err error) error {
	if in.origin == "" {
		return err
	}
	return fmt.Errorf("%s: %w", in.origin, err)
}

// readInput takes the SQL from exactly one of --sql, -f FILE and -.
func readInput(cmd *cobra.Command, f *planFlags, args []string) (input, error) {
	stdinArg := false
	for _, a := range args {
		if a != "-" {
			return input{}, fmt.Errorf("unexpected argument %q: give the SQL with --sql, -f FILE or - (standard input)", a)
		}
		if stdinArg {
			return input{}, errors.New("- (standard input) is given twice")
		}
		stdinArg = true
	}
	sources := 0
	for _, given := range []bool{cmd.Flags().Changed("sql"), cmd.Flags().Changed("file"), stdinArg} {
		if given {
			sources++
		}
	}
	switch {
	case sources == 0:
		return input{}, errors.New("no SQL to plan: give it with --sql \"...\", -f FILE or - (standard input)")
	case sources > 1:
		return input{}, errors.New("give the SQL in one way only: --sql, -f FILE or - (standard input)")
	}
	switch {
	case cmd.Flags().Changed("sql"):
		return input{sql: f.sql}, nil
	case stdinArg || f.file == "-":
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return input{}, fmt.Errorf("cannot read standard input: %w", err)
		}
		return input{sql: string(b), origin: "stdin"}, nil
	}
	b, err := os.ReadFile(f.file)
	if err != nil {
		return input{}, fmt.Errorf("cannot read -f %s: %w", f.file, pathErr(err))
	}
	return input{sql: string(b), origin: f.file}, nil
}

// loadSchema returns the schema to plan against, nil for none: the part of
// the --schema FILE dump the input's statements need (planner.Relations
// names the objects, schema.ParseDumpFor loads them with their
// neighbours), or the whole schema read live from --db URL (both fill the
// same model).
func loadSchema(cmd *cobra.Command, f *planFlags, in input) (*schema.Schema, error) {
	live := cmd.Flags().Changed("db")
	if live && f.schemaFile != "" {
		return nil, errors.New("give the schema in one way only: --schema FILE or --db URL")
	}
	if live {
		return introspect(cmd.Context(), f.dbURL)
	}
	if f.schemaFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(f.schemaFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read --schema %s: %w", f.schemaFile, pathErr(err))
	}
	targets, err := planner.Relations(in.sql)
	if err != nil {
		// The syntax error planning would report.
		return nil, in.located(err)
	}
	// ParseDumpFor's errors start with "FILE:line:column:".
	s, err := schema.ParseDumpFor(f.schemaFile, string(b), targets.Relations, targets.Types)
	if err != nil {
		return nil, fmt.Errorf("--schema %w", err)
	}
	s.Source = "schema file " + f.schemaFile
	return s, nil
}

// introspect reads the schema of the live database. Connection errors are
// one line without the password (db.ConnectError).
func introspect(ctx context.Context, dbURL string) (*schema.Schema, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	conn, err := db.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	s, err := db.Introspect(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("cannot read the schema of %s: %w", db.Describe(&conn.Config().Config), err)
	}
	return s, nil
}

// pathErr drops the path from an *os.PathError, which the message already
// names.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
