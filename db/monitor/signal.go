package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SignalResult says what Cancel or Terminate did.
type SignalResult struct {
	PID int `json:"pid"`
	// Action is "cancel" or "terminate".
	Action string `json:"action"`
	// Signalled: PostgreSQL sent the signal.
	Signalled bool `json:"signalled"`
	// Exited (terminate, PostgreSQL 14+): the backend was seen to exit
	// within TerminateWait.
	Exited bool `json:"exited"`
	// What the session was when signalled.
	Application string `json:"application"`
	User        string `json:"user"`
	State       string `json:"state"`
	Query       string `json:"query"`
	// Message is one line for the operator.
	Message string `json:"message"`
}

// TerminateWait is how long Terminate waits to see the backend exit
// (PostgreSQL 14+; before, it only sends the signal).
const TerminateWait = 3 * time.Second

// ErrOwnSession is wrapped by the error of a request to signal one of the
// monitor's own connections.
var ErrOwnSession = errors.New("refusing to signal the monitor's own connection")

// ErrNoSession is wrapped by the error of a request to signal a pid that is
// no PostgreSQL session.
var ErrNoSession = errors.New("no such session")

// Cancel cancels the current query of the backend pid (pg_cancel_backend).
// Its transaction stays open if it was idle in one: Terminate ends that.
func (m *Monitor) Cancel(ctx context.Context, pid int) (SignalResult, error) {
	return m.signal(ctx, pid, false)
}

// Terminate ends the backend pid (pg_terminate_backend): its transaction
// rolls back and its client is disconnected.
func (m *Monitor) Terminate(ctx context.Context, pid int) (SignalResult, error) {
	return m.signal(ctx, pid, true)
}

func (m *Monitor) signal(ctx context.Context, pid int, terminate bool) (SignalResult, error) {
	res := SignalResult{PID: pid, Action: "cancel"}
	if terminate {
		res.Action = "terminate"
	}
	if pid <= 0 {
		return res, fmt.Errorf("%w: pid %d (a prepared transaction, pid 0, is ended with COMMIT PREPARED or ROLLBACK PREPARED)", ErrNoSession, pid)
	}
	if slices.Contains(m.ownPIDs(), int32(pid)) {
		return res, fmt.Errorf("%w: pid %d is cutover's monitor", ErrOwnSession, pid)
	}
	m.lockS.mu.Lock()
	defer m.lockS.mu.Unlock()
	conn, err := m.lockS.acquire(ctx)
	if err != nil {
		return res, err
	}
	fn := "pg_catalog.pg_cancel_backend(a.pid)"
	if terminate {
		fn = "pg_catalog.pg_terminate_backend(a.pid)"
		if m.lockS.version >= 140000 {
			fn = fmt.Sprintf("pg_catalog.pg_terminate_backend(a.pid, %d)", TerminateWait.Milliseconds())
		}
	}
	q := `SELECT coalesce(a.application_name, ''), coalesce(a.usename::text, ''), coalesce(a.state, ''),
		coalesce(a.backend_type, ''), coalesce(left(a.query, $2), ''), ` + fn + `
		FROM pg_catalog.pg_stat_activity a WHERE a.pid = $1`
	var ok bool
	var backendType string
	// In a transaction of its own, so that the wait for the exit is not cut
	// short by the session's statement_timeout.
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '10s'"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, q, pid, 2*m.opts.QueryChars+1).Scan(&res.Application, &res.User, &res.State, &backendType, &res.Query, &ok)
	})
	m.lockS.counters.count(err)
	res.Query = shorten(res.Query, m.opts.QueryChars)
	who := fmt.Sprintf("pid %d (%s, user %s, %s)", pid, orDash(res.Application), orDash(res.User), orDash(res.State))
	if backendType != "client backend" {
		who = fmt.Sprintf("pid %d (%s)", pid, orDash(backendType))
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return res, fmt.Errorf("%w: no session has pid %d (it may have ended)", ErrNoSession, pid)
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		return res, fmt.Errorf("not allowed to %s %s: %s", res.Action, who, pgErr.Message)
	case err != nil:
		return res, fmt.Errorf("cannot %s pid %d: %w", res.Action, pid, err)
	case !ok && (!terminate || m.lockS.version < 140000):
		return res, fmt.Errorf("PostgreSQL did not signal %s: it is not a backend it can %s", who, res.Action)
	}
	res.Signalled = true
	switch {
	case !terminate && (res.State == "idle in transaction" || res.State == "idle in transaction (aborted)"):
		res.Message = fmt.Sprintf("sent cancel to %s: it runs no query, so nothing was cancelled and its transaction stays open; terminate it to release its locks", who)
	case !terminate:
		res.Message = fmt.Sprintf("sent cancel to %s: its current query is cancelled; the session stays connected", who)
	case m.lockS.version >= 140000 && ok:
		res.Exited = true
		res.Message = fmt.Sprintf("terminated %s: its transaction was rolled back and the session has exited", who)
	case m.lockS.version >= 140000:
		res.Message = fmt.Sprintf("sent terminate to %s, but it had not exited after %s", who, TerminateWait)
	default:
		res.Message = fmt.Sprintf("sent terminate to %s: its transaction rolls back and the session exits", who)
	}
	return res, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
