package monitor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cutover/cutover/db"
)

// session is one dedicated monitor connection, reconnected on the next use
// after it broke. Its settings are applied once per connection, in the
// same round trip that reads its backend pid: application_name (so it can
// be recognised, and left out of what the monitor shows), lock_timeout and
// statement_timeout (so it never waits or runs long), and jit off (a JIT
// compilation would cost more than the monitor's queries themselves).
type session struct {
	url      string
	app      string
	stmt     time.Duration // statement_timeout
	lock     time.Duration // lock_timeout
	counters *xactCounter  // where its transactions are counted

	mu      sync.Mutex // held while the connection is in use
	conn    *pgx.Conn
	pid     atomic.Int32
	version int
}

// xactCounter counts the transactions the monitor's own sessions end, so
// that the database's rates can leave them out.
type xactCounter struct {
	commits, rollbacks atomic.Int64
}

// count records the outcome of one implicit transaction (a statement or a
// pipelined batch).
func (c *xactCounter) count(err error) {
	if c == nil {
		return
	}
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		c.commits.Add(1)
	case errors.As(err, &pgErr):
		c.rollbacks.Add(1)
	}
	// Any other error never reached the server, or broke the connection:
	// whether a transaction ended is unknown, and at worst one is missed.
}

// setupSQL configures a new connection and reads its pid and the server
// version. $1 application_name, $2 statement_timeout, $3 lock_timeout.
const setupSQL = `SELECT pg_catalog.pg_backend_pid(),
	pg_catalog.current_setting('server_version_num')::int,
	pg_catalog.set_config('application_name', $1, false),
	pg_catalog.set_config('statement_timeout', $2, false),
	pg_catalog.set_config('lock_timeout', $3, false),
	pg_catalog.set_config('jit', 'off', false)`

// acquire returns the connection, opening it when there is none or it
// broke. The caller holds s.mu.
func (s *session) acquire(ctx context.Context) (*pgx.Conn, error) {
	if s.conn != nil && !s.conn.IsClosed() {
		return s.conn, nil
	}
	s.pid.Store(0)
	s.conn = nil
	conn, err := db.Connect(ctx, s.url)
	if err != nil {
		return nil, err
	}
	var pid int32
	err = conn.QueryRow(ctx, setupSQL, s.app, pgMillis(s.stmt), pgMillis(s.lock)).Scan(&pid, &s.version, nil, nil, nil, nil)
	s.counters.count(err)
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("setting up the monitor connection: %w", err)
	}
	s.conn = conn
	s.pid.Store(pid)
	return conn, nil
}

// close closes the connection.
func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.conn.Close(ctx)
		s.conn = nil
	}
	s.pid.Store(0)
}

// pgMillis formats a duration as a PostgreSQL setting in milliseconds.
func pgMillis(d time.Duration) string {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return strconv.FormatInt(ms, 10) + "ms"
}
