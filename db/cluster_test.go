package db_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestNewDatabaseIsFreshAndIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := dbtest.NewDatabase(t), dbtest.NewDatabase(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	ca, cb := dbtest.Connect(t, a), dbtest.Connect(t, b)
	if _, err := ca.Exec(ctx, "CREATE TABLE only_in_a (id int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relname = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a table created in one test database is visible in another")
	}
	var enc, collate string
	if err := ca.QueryRow(ctx, "SELECT pg_encoding_to_char(encoding), datcollate FROM pg_database WHERE datname = current_database()").Scan(&enc, &collate); err != nil {
		t.Fatal(err)
	}
	if enc != "UTF8" || collate != "C" {
		t.Errorf("test database has encoding %s, collation %s; want UTF8, C", enc, collate)
	}
}

func TestHarnessPreloadsPgStatStatements(t *testing.T) {
	if os.Getenv(dbtest.EnvURL) != "" {
		t.Skipf("%s is set: the server's configuration is its own, not the harness's", dbtest.EnvURL)
	}
	conn := dbtest.Connect(t, dbtest.NewDatabase(t))
	var libs string
	if err := conn.QueryRow(context.Background(), "SHOW shared_preload_libraries").Scan(&libs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(libs, "pg_stat_statements") {
		t.Errorf("shared_preload_libraries = %q, want pg_stat_statements", libs)
	}
	if _, err := conn.Exec(context.Background(), "CREATE EXTENSION pg_stat_statements"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), "SELECT count(*) FROM pg_stat_statements"); err != nil {
		t.Errorf("pg_stat_statements is not usable: %v", err)
	}
}

func TestPagilaLoaded(t *testing.T) {
	conn := dbtest.Connect(t, dbtest.Pagila(t))
	counts := map[string]int{"public.rental": 16044, "public.payment": 16049, "public.film": 1000}
	for table, want := range counts {
		var got int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s has %d rows, want %d", table, got, want)
		}
	}
}

// TestClusterStopRemovesEverything starts a second cluster of its own and
// checks that Stop shuts the server down and leaves no file behind.
func TestClusterStopRemovesEverything(t *testing.T) {
	ctx := context.Background()
	c, err := db.StartCluster(ctx, db.ClusterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	var dataDir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dataDir, c.Dir+string(filepath.Separator)) {
		t.Errorf("server's data_directory %s is not inside the cluster directory %s", dataDir, c.Dir)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still exists after Stop (stat: %v)", c.Dir, err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Errorf("server still answers after Stop")
	}
	if _, err := pgx.Connect(ctx, c.URL("postgres")); err == nil {
		t.Errorf("a new connection succeeded after Stop")
	}
}

func TestStartClusterWithoutBinaries(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	defer db.SetServerBinGlob(filepath.Join(t.TempDir(), "*", "bin"))()
	_, err := db.StartCluster(context.Background(), db.ClusterOptions{})
	if err == nil {
		t.Fatal("StartCluster succeeded without server binaries")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "install the PostgreSQL server package (e.g. `apt-get install postgresql`)") {
		t.Errorf("error should be one line saying what to install, got %q", msg)
	}
}
