package monitor

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestComputeDBRates(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	reset0 := t0.Add(-time.Hour)
	base := dbCounters{At: t0, Commits: 1000, Rollbacks: 10, Written: 5000, Reset: reset0, OwnCommits: 50, OwnRollbacks: 2}
	tests := []struct {
		name   string
		prev   *dbCounters
		cur    dbCounters
		status string
		want   dbRates
	}{
		{"first reading", nil, base, "first", dbRates{}},
		{
			// Over the measured 1.25 s, not the nominal second: 250
			// commits of which 3 the monitor's.
			"steady", &base,
			dbCounters{At: t0.Add(1250 * time.Millisecond), Commits: 1250, Rollbacks: 15, Written: 5500, Reset: reset0, OwnCommits: 53, OwnRollbacks: 2},
			"ok", dbRates{Elapsed: 1250 * time.Millisecond, Commits: 247 / 1.25, Rollbacks: 5 / 1.25, RowsWritten: 500 / 1.25, TPS: 252 / 1.25},
		},
		{
			// The monitor's count runs ahead of the server's (its own
			// statistics are flushed up to a second late): clamped.
			"own correction overshoots", &base,
			dbCounters{At: t0.Add(time.Second), Commits: 1002, Rollbacks: 10, Written: 5000, Reset: reset0, OwnCommits: 54, OwnRollbacks: 3},
			"ok", dbRates{Elapsed: time.Second},
		},
		{
			"pg_stat_reset: stats_reset moves, counters drop", &base,
			dbCounters{At: t0.Add(time.Second), Commits: 3, Rollbacks: 0, Written: 1, Reset: t0.Add(500 * time.Millisecond), OwnCommits: 52, OwnRollbacks: 2},
			"reset", dbRates{},
		},
		{
			// A reset that happened while the counters had grown
			// beyond the old values again.
			"reset with larger counters", &base,
			dbCounters{At: t0.Add(time.Second), Commits: 9000, Rollbacks: 90, Written: 9000, Reset: t0.Add(100 * time.Millisecond)},
			"reset", dbRates{},
		},
		{
			"first reset ever (stats_reset was null)", &dbCounters{At: t0, Commits: 1000},
			dbCounters{At: t0.Add(time.Second), Commits: 1001, Reset: t0},
			"reset", dbRates{},
		},
		{
			"a counter goes down without a new stats_reset", &base,
			dbCounters{At: t0.Add(time.Second), Commits: 1100, Rollbacks: 10, Written: 4000, Reset: reset0},
			"reset", dbRates{},
		},
		{
			"no newer snapshot", &base,
			dbCounters{At: t0, Commits: 1000, Rollbacks: 10, Written: 5000, Reset: reset0},
			"stale", dbRates{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cur := tc.cur
			got, status := computeDBRates(tc.prev, &cur)
			if status != tc.status {
				t.Fatalf("status %q, want %q", status, tc.status)
			}
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"tps", got.TPS, tc.want.TPS}, {"commits", got.Commits, tc.want.Commits},
				{"rollbacks", got.Rollbacks, tc.want.Rollbacks}, {"rows", got.RowsWritten, tc.want.RowsWritten},
			} {
				if math.Abs(f.got-f.want) > 1e-9 || f.got < 0 {
					t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
				}
			}
			if got.Elapsed != tc.want.Elapsed {
				t.Errorf("elapsed %v, want %v", got.Elapsed, tc.want.Elapsed)
			}
		})
	}
}

// The monitor's own transactions that the server publishes a tick late
// are taken out of the next tick instead: over the two ticks nothing of
// the monitor's shows, and the application's count is exact.
func TestOwnTransactionsCarried(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	r0 := &dbCounters{At: t0, Commits: 100, Rollbacks: 10}
	// Tick 1: the application is blocked; the monitor ran 3 commits and 2
	// rollbacks (timed-out probes), none published yet.
	r1 := &dbCounters{At: at(1), Commits: 100, Rollbacks: 10, OwnCommits: 3, OwnRollbacks: 2}
	got, _ := computeDBRates(r0, r1)
	if got.TPS != 0 || r1.OwnCommitsAhead != 3 || r1.OwnRollbacksAhead != 2 {
		t.Errorf("tick 1: %+v, ahead %d/%d; want 0 tps, 3 and 2 ahead", got, r1.OwnCommitsAhead, r1.OwnRollbacksAhead)
	}
	// Tick 2: the application committed 5; the server now shows the
	// monitor's 2 rollbacks and 3+3 commits.
	r2 := &dbCounters{At: at(2), Commits: 100 + 3 + 5 + 3, Rollbacks: 12, OwnCommits: 6, OwnRollbacks: 2}
	got, _ = computeDBRates(r1, r2)
	if got.Commits != 5 || got.Rollbacks != 0 || r2.OwnCommitsAhead != 0 || r2.OwnRollbacksAhead != 0 {
		t.Errorf("tick 2: %+v, ahead %d/%d; want 5 commits/s, 0 rollbacks, nothing ahead", got, r2.OwnCommitsAhead, r2.OwnRollbacksAhead)
	}
	// A count the server never publishes (a connection that broke) is
	// carried into one tick only.
	r3 := &dbCounters{At: at(3), Commits: 111, Rollbacks: 12, OwnCommits: 9, OwnRollbacks: 2}
	computeDBRates(r2, r3)
	r4 := &dbCounters{At: at(4), Commits: 121, Rollbacks: 12, OwnCommits: 9, OwnRollbacks: 2}
	if got, _ := computeDBRates(r3, r4); got.Commits != 7 {
		t.Errorf("tick 4: %+v; want 10 minus the 3 carried", got)
	}
	r5 := &dbCounters{At: at(5), Commits: 131, Rollbacks: 12, OwnCommits: 9, OwnRollbacks: 2}
	if got, _ := computeDBRates(r4, r5); got.Commits != 10 {
		t.Errorf("tick 5: %+v; the carry must not outlive one tick", got)
	}
}

func TestComputeMeanExec(t *testing.T) {
	k := func(id int64) stmtKey { return stmtKey{user: 10, queryID: id, toplevel: true} }
	reset0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := &stmtReading{reset: reset0, dealloc: 3, entries: map[stmtKey]stmtCounters{
		k(1): {calls: 100, ms: 50},
		k(2): {calls: 10, ms: 100},
		k(3): {calls: 500, ms: 1000},
	}}
	tests := []struct {
		name     string
		prev     *stmtReading
		cur      stmtReading
		calls    int64
		mean     time.Duration
		status   string
		evictedW bool
	}{
		{"first", nil, *prev, 0, 0, "first", false},
		{"no change", prev, *prev, 0, 0, "idle", false},
		{
			"growth", prev,
			stmtReading{reset: reset0, dealloc: 3, entries: map[stmtKey]stmtCounters{
				k(1): {calls: 110, ms: 55}, // +10 calls, +5 ms
				k(2): {calls: 10, ms: 100},
				k(3): {calls: 530, ms: 1015}, // +30, +15
			}},
			40, 500 * time.Microsecond, "ok", false,
		},
		{
			// k(3) was evicted (gone), k(2) evicted and added again
			// (calls went down: its 4 calls are all new), k(4) is new.
			"eviction", prev,
			stmtReading{reset: reset0, dealloc: 5, entries: map[stmtKey]stmtCounters{
				k(1): {calls: 110, ms: 60}, // +10, +10
				k(2): {calls: 4, ms: 8},    // +4, +8
				k(4): {calls: 6, ms: 12},   // +6, +12
			}},
			20, 1500 * time.Microsecond, "ok", true,
		},
		{
			"pg_stat_statements_reset", prev,
			stmtReading{reset: reset0.Add(time.Hour), dealloc: 0, entries: map[stmtKey]stmtCounters{k(1): {calls: 2, ms: 1}}},
			0, 0, "reset", true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls, mean, status, evicted := computeMeanExec(tc.prev, tc.cur)
			if calls != tc.calls || mean != tc.mean || status != tc.status || evicted != tc.evictedW {
				t.Errorf("got %d calls, mean %v, %q, evicted %v; want %d, %v, %q, %v",
					calls, mean, status, evicted, tc.calls, tc.mean, tc.status, tc.evictedW)
			}
		})
	}
}

func TestMillisJSON(t *testing.T) {
	b, err := json.Marshal(struct {
		A Millis  `json:"a_ms"`
		B *Millis `json:"b_ms"`
	}{A: Millis(1234567 * time.Nanosecond)})
	if err != nil || string(b) != `{"a_ms":1.235,"b_ms":null}` {
		t.Fatalf("got %s, %v", b, err)
	}
	var back struct {
		A Millis `json:"a_ms"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.A != Millis(1235*time.Microsecond) {
		t.Errorf("round trip: %v, %v", back.A, err)
	}
}

func TestShorten(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"SELECT 1", 20, "SELECT 1"},
		{"SELECT\n\t  *\n  FROM film", 20, "SELECT * FROM film"},
		{"SELECT * FROM film WHERE title = 'ÄÖÜ'", 20, "SELECT * FROM film …"},
		{"ÄÖÜÄÖÜ", 3, "ÄÖ…"},
	}
	for _, tc := range tests {
		if got := shorten(tc.in, tc.n); got != tc.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
