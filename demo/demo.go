// Package demo is the database behind `cutover demo`: a throwaway
// PostgreSQL cluster (db.StartCluster, the test harness's own code) holding
// the pagila sample plus a table of about a million rows, and a synthetic
// application workload that reads and writes it while a change is planned
// and applied.
//
// Everything it starts is stopped by Demo.Stop, and by the cluster's
// watchdog if the process dies first: nothing is left behind.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db"
)

// Database is the name of the demo database on the throwaway cluster.
const Database = "pagila"

// DefaultRows is how many rows the big table gets by default.
const DefaultRows = 1_000_000

// Options configure Start.
type Options struct {
	// Schema and Data are the pagila sample's schema and data scripts
	// (pg_dump plain output); required.
	Schema, Data string
	// Rows is the size of the big table (EventTable); 0 means DefaultRows.
	Rows int
	// NoWorkload leaves the database idle.
	NoWorkload bool
	// Workload tunes the workload; the zero value is the default.
	Workload WorkloadOptions
	// Progress, when set, gets one line per stage ("loading pagila... 1.9 s").
	Progress io.Writer
}

// Timings says how long each stage of Start took.
type Timings struct {
	Cluster, Pagila, Events time.Duration
}

// Demo is a running demo database.
type Demo struct {
	// Cluster is the throwaway cluster; Cluster.Dir is its directory.
	Cluster *db.Cluster
	// URL connects to the demo database as the superuser (trust
	// authentication on loopback: it holds no password).
	URL string
	// Rows is the size of the big table.
	Rows int
	// Timings of the stages of Start.
	Timings Timings
	// Workload is the running workload; nil with NoWorkload.
	Workload *Workload
}

// Start starts the cluster, loads the sample and starts the workload. On
// error everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (_ *Demo, err error) {
	if opts.Schema == "" || opts.Data == "" {
		return nil, errors.New("demo: the pagila sample schema and data are required")
	}
	if opts.Rows == 0 {
		opts.Rows = DefaultRows
	}
	if opts.Rows < 1000 || opts.Rows > 100_000_000 {
		return nil, fmt.Errorf("--rows %d is out of range: give between 1000 and 100000000 rows", opts.Rows)
	}
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, format, args...)
		}
	}
	d := &Demo{Rows: opts.Rows}
	defer func() {
		if err != nil {
			d.Stop()
		}
	}()

	t0 := time.Now()
	progress("starting a throwaway PostgreSQL server... ")
	c, err := db.StartCluster(ctx, db.ClusterOptions{})
	if err != nil {
		progress("failed\n")
		return nil, err
	}
	d.Cluster = c
	d.Timings.Cluster = time.Since(t0)
	progress("%s (in %s, port %d)\n", secs(d.Timings.Cluster), c.Dir, c.Port)

	if err := createDatabase(ctx, c); err != nil {
		return nil, err
	}
	d.URL = c.URL(Database)
	conn, err := db.Connect(ctx, d.URL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())

	t0 = time.Now()
	progress("loading the pagila sample... ")
	if err := loadPagila(ctx, conn, opts.Schema, opts.Data); err != nil {
		progress("failed\n")
		return nil, err
	}
	d.Timings.Pagila = time.Since(t0)
	progress("%s\n", secs(d.Timings.Pagila))

	t0 = time.Now()
	progress("generating %d rows in %s... ", opts.Rows, EventTable)
	if err := loadEvents(ctx, conn, opts.Rows); err != nil {
		progress("failed\n")
		return nil, err
	}
	if err := createWorkloadRole(ctx, conn); err != nil {
		return nil, err
	}
	d.Timings.Events = time.Since(t0)
	progress("%s\n", secs(d.Timings.Events))

	if !opts.NoWorkload {
		w := opts.Workload
		if w.Rows == 0 {
			w.Rows = opts.Rows
		}
		if d.Workload, err = StartWorkload(ctx, d.URL, w); err != nil {
			return nil, err
		}
		progress("workload: %d sessions of role %s (application_name %q), about %d transactions a second, one of them holding short transactions open\n",
			d.Workload.opts.Sessions+1, WorkloadRole, WorkloadApplication, d.Workload.opts.Rate)
	}
	return d, nil
}

// Stop stops the workload and the cluster and removes the cluster's
// directory. It is safe to call more than once.
func (d *Demo) Stop() error {
	var errs []error
	if d.Workload != nil {
		d.Workload.Stop()
	}
	if d.Cluster != nil {
		errs = append(errs, d.Cluster.Stop())
	}
	return errors.Join(errs...)
}

func createDatabase(ctx context.Context, c *db.Cluster) error {
	conn, err := db.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{Database}.Sanitize()+" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
	if err != nil {
		return fmt.Errorf("creating the demo database: %w", err)
	}
	return nil
}

func loadPagila(ctx context.Context, conn *pgx.Conn, schema, data string) error {
	if err := db.ExecScript(ctx, conn, schema); err != nil {
		return fmt.Errorf("loading the pagila schema: %w", err)
	}
	if err := db.ExecScript(ctx, conn, data); err != nil {
		return fmt.Errorf("loading the pagila data: %w", err)
	}
	// pg_dump scripts empty the search_path for the session: reset it.
	if _, err := conn.Exec(ctx, "RESET search_path"); err != nil {
		return err
	}
	// The latency pane reads the application's statements from
	// pg_stat_statements (the cluster preloads it).
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return fmt.Errorf("creating pg_stat_statements: %w", err)
	}
	return nil
}

// createWorkloadRole creates the workload's role (no password: the cluster
// trusts loopback connections) with the privileges an application has.
func createWorkloadRole(ctx context.Context, conn *pgx.Conn) error {
	role := pgx.Identifier{WorkloadRole}.Sanitize()
	for _, sql := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"GRANT USAGE ON SCHEMA public TO " + role,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + role,
		"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO " + role,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("creating the workload's role %s: %w", WorkloadRole, err)
		}
	}
	return nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
