// Package dbtest gives tests a real PostgreSQL server: one throwaway cluster
// per test binary (or the server CUTOVER_TEST_DATABASE_URL points at), and a
// fresh database per test, cloned from a template so it is fast.
//
// Use it from a package's TestMain:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		url := dbtest.NewDatabase(t) // or dbtest.Pagila(t)
//		...
//	}
//
// The cluster starts on first use and is stopped when the tests end. When
// the PostgreSQL server binaries are missing, every test that needs a
// database fails with one line saying what to install; none is skipped.
package dbtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/db"
	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points the tests at an existing server
// instead of a throwaway cluster, e.g.
// postgres://postgres@db.test:5432/postgres. The role should be a superuser
// (pagila's schema assigns ownership to a role named postgres, which must
// exist). The tests create databases with names unique to the test binary
// there, drop them at the end, and touch nothing else.
const EnvURL = "CUTOVER_TEST_DATABASE_URL"

var (
	mu       sync.Mutex // guards admin and the state below
	started  bool
	setupErr error
	cluster  *db.Cluster
	baseURL  *url.URL // the server, with the database path replaced per use
	admin    *pgx.Conn
	prefix   string // prefix of every database this test binary creates
	counter  atomic.Int64
	created  = map[string]bool{} // databases to drop at the end

	templateDB    string
	serverVersion int
	pagilaOnce    sync.Once
	pagilaDB      string
	pagilaErr     error
	mainRunning   bool
)

// Main runs the tests and then drops every database they created and stops
// the cluster. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main for a TestMain that has its own clean-up to do after the
// tests: it runs them, drops the databases, stops the cluster and returns
// the exit code instead of exiting.
func Run(m *testing.M) int {
	mainRunning = true
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// setup starts the cluster (or connects to CUTOVER_TEST_DATABASE_URL) and
// creates the template database, once. Callers hold mu.
func setup() error {
	if started {
		return setupErr
	}
	started = true
	setupErr = doSetup()
	return setupErr
}

func doSetup() error {
	if !mainRunning {
		return errors.New("dbtest: call dbtest.Main(m) from the package's TestMain")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// On a shared server every name carries this binary's own prefix.
	prefix = fmt.Sprintf("cutover_test_%d_%d_", os.Getpid(), time.Now().UnixNano()%1000000)
	if ext := os.Getenv(EnvURL); ext != "" {
		u, err := url.Parse(ext)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return fmt.Errorf("%s must be a postgres:// URL: %s", EnvURL, db.Redact(ext))
		}
		baseURL = u
	} else {
		c, err := db.StartCluster(ctx, db.ClusterOptions{})
		if err != nil {
			return err
		}
		cluster = c
		baseURL, _ = url.Parse(c.URL("postgres"))
		prefix = "" // the cluster is ours alone: plain names read better
	}
	adminDB := strings.TrimPrefix(baseURL.Path, "/")
	if adminDB == "" {
		adminDB = "postgres"
	}
	conn, err := pgx.Connect(ctx, urlFor(adminDB))
	if err != nil {
		return fmt.Errorf("connecting to the test server %s: %w", db.Redact(urlFor(adminDB)), err)
	}
	admin = conn
	if err := admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&serverVersion); err != nil {
		return fmt.Errorf("reading the test server's version: %w", err)
	}
	templateDB = prefix + "cutover_template"
	if err := createDatabase(ctx, templateDB, "template0"); err != nil {
		return err
	}
	return nil
}

// shutdown drops what the tests created and stops the cluster.
func shutdown() error {
	mu.Lock()
	defer mu.Unlock()
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if admin != nil {
		if cluster == nil {
			// Someone else's server: drop exactly what we created.
			for name := range created {
				if err := dropDatabase(ctx, name); err != nil {
					errs = append(errs, err)
				}
			}
		}
		admin.Close(ctx)
		admin = nil
	}
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			errs = append(errs, err)
		}
		cluster = nil
	}
	return errors.Join(errs...)
}

// urlFor returns the server URL with database dbname.
func urlFor(dbname string) string {
	u := *baseURL
	u.Path = "/" + dbname
	u.RawPath = ""
	return u.String()
}

func createDatabase(ctx context.Context, name, template string) error {
	sql := fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize())
	if template == "template0" {
		sql += " ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if _, err = admin.Exec(ctx, sql); err == nil {
			created[name] = true
			return nil
		}
		// A template cannot be copied while someone is connected to it;
		// the loader's session may be closing. Retry briefly.
		if !strings.Contains(err.Error(), "is being accessed by other users") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("creating test database %s: %w", name, err)
}

func dropDatabase(ctx context.Context, name string) error {
	sql := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize()
	if serverVersion >= 130000 {
		sql += " WITH (FORCE)"
	}
	if _, err := admin.Exec(ctx, sql); err != nil {
		return fmt.Errorf("dropping test database %s: %w", name, err)
	}
	delete(created, name)
	return nil
}

// newDatabase clones template into a fresh database and returns its name.
func newDatabase(t testing.TB, template string) string {
	t.Helper()
	name := fmt.Sprintf("%stest_%d", prefix, counter.Add(1))
	ctx := context.Background()
	mu.Lock()
	err := createDatabase(ctx, name, template)
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if admin == nil {
			return
		}
		if err := dropDatabase(context.Background(), name); err != nil {
			t.Error(err)
		}
	})
	return urlFor(name)
}

// NewDatabase returns the URL of a fresh, empty database (UTF8, C locale)
// owned by a superuser; it is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	mu.Lock()
	err := setup()
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	return newDatabase(t, templateDB)
}

// Pagila returns the URL of a fresh database holding the pagila sample
// (testdata/pagila: schema and data, analyzed); it is dropped when the test
// ends. Pagila is loaded once per test binary into a template and cloned.
func Pagila(t testing.TB) string {
	t.Helper()
	mu.Lock()
	err := setup()
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	pagilaOnce.Do(func() { pagilaErr = loadPagilaTemplate() })
	if pagilaErr != nil {
		t.Fatal(pagilaErr)
	}
	return newDatabase(t, pagilaDB)
}

func loadPagilaTemplate() error {
	dir, err := PagilaDir()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := prefix + "pagila_template"
	mu.Lock()
	err = createDatabase(ctx, name, templateDB)
	mu.Unlock()
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, urlFor(name))
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", name, err)
	}
	defer conn.Close(ctx)
	for _, f := range []string{"schema.sql", "data.sql"} {
		script, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		if err := db.ExecScript(ctx, conn, string(script)); err != nil {
			return fmt.Errorf("loading pagila %s: %w", f, err)
		}
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return fmt.Errorf("analyzing pagila: %w", err)
	}
	if err := conn.Close(ctx); err != nil {
		return err
	}
	pagilaDB = name
	return nil
}

// LoadSQL runs a SQL script (see db.ExecScript) in the database at url.
func LoadSQL(t testing.TB, dbURL, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connecting to %s: %v", db.Redact(dbURL), err)
	}
	defer conn.Close(ctx)
	if err := db.ExecScript(ctx, conn, sql); err != nil {
		t.Fatal(err)
	}
}

// Connect opens a connection to the database at url, closed when the test
// ends.
func Connect(t testing.TB, dbURL string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connecting to %s: %v", db.Redact(dbURL), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// PagilaDir returns the testdata/pagila directory of the repository, found
// by walking up from the working directory to go.mod.
func PagilaDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "testdata", "pagila"), nil
}

// RepoRoot returns the directory holding go.mod, walking up from the working
// directory (a test's working directory is its package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("dbtest: no go.mod above the working directory")
		}
		dir = parent
	}
}
