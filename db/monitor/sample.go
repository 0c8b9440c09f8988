package monitor

import (
	"strconv"
	"time"
)

// The types in this file are the monitor's output. Their JSON form is the
// contract of `cutover watch --format json` (one Sample per line): field
// names are stable, durations are milliseconds in fields ending in _ms,
// rates are per second in fields ending in _per_s, and a value that is not
// known for a tick (a rate on the first tick or after a statistics reset)
// is null rather than absent.

// Sample is one tick of the monitor: both panes, sampled concurrently.
type Sample struct {
	// Seq counts ticks from 1.
	Seq int64 `json:"seq"`
	// Time is when the tick started.
	Time time.Time `json:"time"`
	// Locks is the lock pane.
	Locks *LockSample `json:"locks"`
	// Latency is the latency pane.
	Latency *LatencySample `json:"latency"`
	// Dropped counts samples discarded since the previous one the consumer
	// received, because it was not reading fast enough.
	Dropped int64 `json:"dropped"`
}

// LockSample is every session holding or awaiting a lock on the target
// tables, with the blocking tree between them.
type LockSample struct {
	// Took is the round trip of the lock query.
	Took Millis `json:"took_ms"`
	// Skipped: the previous lock query ran longer than the guard, so this
	// tick did not run it (Sessions is empty; keep showing the previous).
	Skipped bool `json:"skipped"`
	// Error is why this tick has no data ("" when it has).
	Error string `json:"error,omitempty"`
	// Sessions are ordered by pid. The monitor's own connections are left
	// out.
	Sessions []Session `json:"sessions"`
	// Waiting counts sessions waiting on a lock; OldestWait is the longest
	// such wait.
	Waiting    int    `json:"waiting"`
	OldestWait Millis `json:"oldest_wait_ms"`
	// Traps are cutover's own DDL statements waiting for a lock on a target
	// table, each with the sessions queued behind it: the lock-queue trap.
	Traps []Trap `json:"traps"`
}

// Session is one backend involved with the target tables.
type Session struct {
	PID         int    `json:"pid"`
	Application string `json:"application"`
	User        string `json:"user"`
	// Client is "address:port", or "local" for a Unix-domain socket.
	Client string `json:"client"`
	// BackendType is pg_stat_activity.backend_type ("client backend",
	// "autovacuum worker", ...).
	BackendType string `json:"backend_type"`
	// State is pg_stat_activity.state ("active", "idle in transaction", ...).
	State         string `json:"state"`
	WaitEventType string `json:"wait_event_type"`
	WaitEvent     string `json:"wait_event"`
	// XactAge is how long its transaction has been open (0: none);
	// QueryAge how long since its current or last query started.
	XactAge  Millis `json:"xact_age_ms"`
	QueryAge Millis `json:"query_age_ms"`
	// Query is the current or last statement, whitespace collapsed,
	// shortened to Options.QueryChars characters.
	Query string `json:"query"`
	// Cutover marks cutover's own sessions (application_name starting
	// with "cutover").
	Cutover bool `json:"cutover"`
	// Locks are the locks it holds or awaits on the target tables.
	Locks []Lock `json:"locks"`
	// WaitingFor is the lock it waits for (on a target table, or another
	// object such as a transaction id for a row lock); nil when not waiting.
	WaitingFor *Lock `json:"waiting_for"`
	// Waiting is how long it has waited for that lock.
	Waiting Millis `json:"waiting_ms"`
	// BlockedBy is pg_blocking_pids() of a waiting session: the sessions
	// holding a conflicting lock or ahead of it in the queue. Pid 0 is a
	// prepared transaction.
	BlockedBy []int `json:"blocked_by"`
	// Blocks lists the sessions that name this one in BlockedBy.
	Blocks []int `json:"blocks"`
	// HeadBlocker: it blocks others and waits for no lock itself; ending
	// its transaction is what unblocks the tree.
	HeadBlocker bool `json:"head_blocker"`
}

// Lock is one pg_locks entry of a session.
type Lock struct {
	// Table is the target table it is on ("" for a lock on another object:
	// a transaction id, a virtual transaction...).
	Table string `json:"table"`
	// Type is pg_locks.locktype: "relation", "tuple", "transactionid"...
	Type string `json:"type"`
	// Mode is the lock mode, e.g. "AccessExclusiveLock".
	Mode    string `json:"mode"`
	Granted bool   `json:"granted"`
}

// Trap is a cutover session waiting for a lock on a target table, and the
// sessions stuck behind it: while it waits, every conflicting request that
// arrives after it waits too, however short it would have been.
type Trap struct {
	PID   int    `json:"pid"`
	Table string `json:"table"`
	Mode  string `json:"mode"`
	// Waiting is how long cutover's statement has waited.
	Waiting Millis `json:"waiting_ms"`
	// BlockedBy is what it waits for.
	BlockedBy []int `json:"blocked_by"`
	// Queue is every session waiting, directly or through others, behind
	// cutover's statement, longest waiting first; OldestQueued is the
	// longest wait among them.
	Queue        []int  `json:"queue"`
	OldestQueued Millis `json:"oldest_queued_ms"`
}

// LatencySample is what the application feels: canary probe latencies,
// throughput, statement time, lock waiters and replica lag.
type LatencySample struct {
	// Took is the round trip of the statistics batch.
	Took Millis `json:"took_ms"`
	// Error is why the statistics part of this tick has no data.
	Error string `json:"error,omitempty"`

	// Elapsed is the measured time between this statistics snapshot and
	// the previous one (not the nominal interval); the rates divide by it.
	Elapsed Millis `json:"elapsed_ms"`
	// Rates says whether the rates are known: "ok"; "first" (no previous
	// snapshot); "reset" (statistics were reset, or a counter went down,
	// since the previous snapshot); "stale" (the server had no newer
	// snapshot); "error".
	Rates string `json:"rates"`
	// Transactions (commits + rollbacks), commits, rollbacks and rows
	// written (inserted + updated + deleted) per second in the database,
	// from pg_stat_database, without the monitor's own transactions. Null
	// unless Rates is "ok".
	TPS          *float64 `json:"tps"`
	Commits      *float64 `json:"commits_per_s"`
	Rollbacks    *float64 `json:"rollbacks_per_s"`
	RowsWritten  *float64 `json:"rows_written_per_s"`
	LockWaiters  int      `json:"lock_waiters"`
	OldestWaiter Millis   `json:"oldest_wait_ms"`

	// Statements says whether MeanExec is known: "ok"; "absent" (the
	// pg_stat_statements extension is not installed in the database or
	// not loaded); "skipped" (the guard skipped the query this tick because
	// it ran long the tick before); "first"; "reset" (pg_stat_statements
	// was reset); "idle" (no statement completed); "error".
	Statements string `json:"statements"`
	// MeanExec is the mean execution time of the statements completed in
	// the database since the previous reading (sum of total_exec_time
	// deltas over sum of calls deltas), without the monitor's own.
	MeanExec *Millis `json:"mean_exec_ms"`
	// Calls is the number of statements that mean is over.
	Calls int64 `json:"calls"`
	// Evicted: pg_stat_statements evicted entries since the previous
	// reading; statements only seen in between are missing from the mean.
	Evicted bool `json:"evicted"`

	Probes   []Probe   `json:"probes"`
	Replicas []Replica `json:"replicas"`
}

// Probe is the canary read on one target table.
type Probe struct {
	Table string `json:"table"`
	// Last is this tick's probe latency, timed by the client; a probe that
	// hit its timeout (waiting in the lock queue) counts with the time it
	// took and is flagged TimedOut.
	Last     Millis `json:"last_ms"`
	TimedOut bool   `json:"timed_out"`
	// Error is a probe failure other than a timeout.
	Error string `json:"error,omitempty"`
	// N probes in the window (the last Options.ProbeWindow ticks), of which
	// Timeouts timed out, and their latency percentiles.
	N        int    `json:"n"`
	Timeouts int    `json:"timeouts"`
	P50      Millis `json:"p50_ms"`
	P95      Millis `json:"p95_ms"`
	P99      Millis `json:"p99_ms"`
	Max      Millis `json:"max_ms"`
}

// Replica is one pg_stat_replication row of the server.
type Replica struct {
	Name      string `json:"name"`
	Client    string `json:"client"`
	State     string `json:"state"`
	SyncState string `json:"sync_state"`
	// Lags in time are null when the replica has had nothing to replay
	// lately (PostgreSQL clears them when it is caught up and idle).
	WriteLag  *Millis `json:"write_lag_ms"`
	FlushLag  *Millis `json:"flush_lag_ms"`
	ReplayLag *Millis `json:"replay_lag_ms"`
	// LagBytes is how far its replay position (for a receiver that does
	// not replay, like pg_receivewal: its flush position) is behind the
	// current WAL position; null on a standby, which has no current
	// position, or when the replica reported none yet.
	LagBytes *int64 `json:"lag_bytes"`
}

// Millis is a duration that encodes to JSON as milliseconds (a number with
// microsecond precision).
type Millis time.Duration

// D returns it as a time.Duration.
func (m Millis) D() time.Duration { return time.Duration(m) }

func (m Millis) String() string { return time.Duration(m).String() }

// MarshalJSON encodes the duration as milliseconds.
func (m Millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(m)/float64(time.Millisecond), 'f', 3, 64), nil
}

// UnmarshalJSON decodes milliseconds.
func (m *Millis) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*m = Millis(f * float64(time.Millisecond))
	return nil
}

// seconds converts a duration in seconds (as PostgreSQL's extract(epoch)
// gives it) to Millis; NULL is 0.
func seconds(s *float64) Millis {
	if s == nil || *s < 0 {
		return 0
	}
	return Millis(*s * float64(time.Second))
}
