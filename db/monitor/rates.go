package monitor

import "time"

// This file turns cumulative counters into per-interval figures. Counters
// are cumulative since the last statistics reset, so a delta is only
// meaningful when no reset happened in between: a reset (the stats_reset
// time changed, or any counter went down) makes the tick report "reset"
// rather than a negative or absurd rate.

// dbCounters is one reading of pg_stat_database for the database.
type dbCounters struct {
	// At is when the counters were read (server clock, or the statistics
	// snapshot's time before PostgreSQL 15).
	At                          time.Time
	Commits, Rollbacks, Written int64
	// Reset is pg_stat_database.stats_reset (zero when never reset).
	Reset time.Time
	// OwnCommits and OwnRollbacks are the monitor's own transactions
	// counted so far (client side).
	OwnCommits, OwnRollbacks int64
	// OwnCommitsAhead and OwnRollbacksAhead are the monitor's own
	// transactions of the interval ending at this reading that the
	// server's counters did not show yet, set by computeDBRates.
	OwnCommitsAhead, OwnRollbacksAhead int64
}

// dbRates are the database's rates over an interval.
type dbRates struct {
	Elapsed                              time.Duration
	TPS, Commits, Rollbacks, RowsWritten float64
}

// computeDBRates returns the rates between two readings and "ok", or a
// status saying why there are none: "first", "reset" or "stale".
//
// The monitor's own transactions are taken out. A backend publishes its
// counts up to a second late, so the monitor's count of its own can run
// ahead of the server's: the part of it the server did not show yet is
// carried into the next interval (once; then it is dropped, so that counts
// a server never publishes cannot hide the application's), and the result
// is clamped at zero. It sets cur's Own*Ahead.
func computeDBRates(prev *dbCounters, cur *dbCounters) (dbRates, string) {
	if prev == nil {
		return dbRates{}, "first"
	}
	if !cur.Reset.Equal(prev.Reset) || cur.Commits < prev.Commits || cur.Rollbacks < prev.Rollbacks || cur.Written < prev.Written {
		return dbRates{}, "reset"
	}
	el := cur.At.Sub(prev.At)
	if el <= 0 {
		return dbRates{}, "stale"
	}
	sec := el.Seconds()
	commits, ahead := withoutOwn(cur.Commits-prev.Commits, cur.OwnCommits-prev.OwnCommits+prev.OwnCommitsAhead)
	cur.OwnCommitsAhead = min(ahead, cur.OwnCommits-prev.OwnCommits)
	rollbacks, ahead := withoutOwn(cur.Rollbacks-prev.Rollbacks, cur.OwnRollbacks-prev.OwnRollbacks+prev.OwnRollbacksAhead)
	cur.OwnRollbacksAhead = min(ahead, cur.OwnRollbacks-prev.OwnRollbacks)
	r := dbRates{
		Elapsed:     el,
		Commits:     float64(commits) / sec,
		Rollbacks:   float64(rollbacks) / sec,
		RowsWritten: float64(cur.Written-prev.Written) / sec,
	}
	r.TPS = r.Commits + r.Rollbacks
	return r, "ok"
}

// withoutOwn subtracts own from the server's count, never below zero, and
// returns what is left of own.
func withoutOwn(server, own int64) (rest, ahead int64) {
	if own > server {
		return 0, own - server
	}
	return server - own, 0
}

// stmtKey identifies a pg_stat_statements entry.
type stmtKey struct {
	user     uint32
	queryID  int64
	toplevel bool
}

// stmtCounters are an entry's cumulative calls and execution time.
type stmtCounters struct {
	calls int64
	ms    float64
}

// stmtReading is one reading of pg_stat_statements for the database.
type stmtReading struct {
	entries map[stmtKey]stmtCounters
	// dealloc and reset are pg_stat_statements_info (1.9+; zero before).
	dealloc int64
	reset   time.Time
}

// computeMeanExec returns the statements completed between two readings,
// their mean execution time, and "ok", or a status: "first", "reset"
// (pg_stat_statements was reset), "idle" (no call). evicted reports that
// entries were evicted in between.
//
// Each entry's delta is taken on its own: an entry seen both times adds
// its growth; an entry that is new, or whose calls went down (evicted and
// added again since the previous reading), accrued all of its counts since
// then and adds them whole; an entry that disappeared adds nothing. So an
// eviction loses only the calls of statements evicted in between, and
// never makes the mean negative.
func computeMeanExec(prev *stmtReading, cur stmtReading) (calls int64, mean time.Duration, status string, evicted bool) {
	if prev == nil {
		return 0, 0, "first", false
	}
	evicted = cur.dealloc != prev.dealloc
	if !cur.reset.Equal(prev.reset) {
		return 0, 0, "reset", evicted
	}
	var ms float64
	for k, c := range cur.entries {
		p, ok := prev.entries[k]
		if !ok || c.calls < p.calls || c.ms < p.ms {
			p = stmtCounters{}
		}
		calls += c.calls - p.calls
		ms += c.ms - p.ms
	}
	if calls <= 0 {
		return 0, 0, "idle", evicted
	}
	return calls, time.Duration(ms / float64(calls) * float64(time.Millisecond)), "ok", evicted
}
