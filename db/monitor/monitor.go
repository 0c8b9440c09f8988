// Package monitor holds cutover's lock and latency monitors: what an
// operator watches while a step runs, and what the backfill engine throttles
// on. Every tick it samples, for a set of target tables,
//
//   - the lock pane: every lock held or awaited on the tables, the session
//     behind each, the blocking tree (pg_blocking_pids, asked only for
//     waiting sessions), cutover's own sessions marked, and the queue stuck
//     behind cutover's own waiting DDL (the lock-queue trap);
//   - the latency pane: a canary read per table on its own connection, with
//     short lock and statement timeouts so that it waits in the same lock
//     queue as the application (percentiles over a window), the database's
//     transaction and write rates from pg_stat_database over the measured
//     elapsed time, the mean statement execution time from
//     pg_stat_statements when installed, lock waiters on the tables, and
//     replica lag.
//
// It is built to be cheap and well-behaved: one round trip per pane per
// tick (plus one canary read per table), a dedicated connection per sampler
// with application_name "cutover monitor" whose sessions are left out of
// what it shows, server-side timeouts on everything it runs, a latency
// guard that skips the expensive query on the tick after it ran long, and
// delivery on a channel that never blocks the sampler (a slow consumer gets
// the newest sample; the count of discarded ones is reported). A bounded
// history is kept for charts.
//
// Statistics resets and evicted pg_stat_statements entries never produce
// negative or absurd rates: the tick reports "reset" instead.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Options configure a Monitor. The zero value gives the defaults.
type Options struct {
	// Interval between ticks; default 1 s, at least 100 ms.
	Interval time.Duration
	// ProbeTimeout is the canary probe's lock_timeout and
	// statement_timeout; default the smaller of 500 ms and Interval/2. It
	// must be less than Interval.
	ProbeTimeout time.Duration
	// ProbeWindow is how many ticks of probes the percentiles cover;
	// default 60.
	ProbeWindow int
	// Guard is the latency guard: when a pane's expensive query took
	// longer, the next tick skips it. Default Interval/4.
	Guard time.Duration
	// History is how many samples History keeps; default 900 (15 minutes
	// at 1 s).
	History int
	// QueryChars is how many characters of a session's query are kept;
	// default 120.
	QueryChars int
	// Keys overrides the key columns the canary reads by, per table (as
	// given to Open, or schema.table).
	Keys map[string][]string
	// Application is the application_name of the monitor's connections;
	// default "cutover monitor".
	Application string
}

// DefaultApplication is the application_name of the monitor's connections.
const DefaultApplication = "cutover monitor"

// MinInterval is the shortest tick interval.
const MinInterval = 100 * time.Millisecond

func (o Options) withDefaults() (Options, error) {
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.Interval < MinInterval {
		return o, fmt.Errorf("interval %s is too short: use at least %s", o.Interval, MinInterval)
	}
	if o.ProbeTimeout == 0 {
		o.ProbeTimeout = min(500*time.Millisecond, o.Interval/2)
	}
	if o.ProbeTimeout < time.Millisecond || o.ProbeTimeout >= o.Interval {
		return o, fmt.Errorf("probe timeout %s must be at least 1ms and less than the interval %s", o.ProbeTimeout, o.Interval)
	}
	if o.ProbeWindow <= 0 {
		o.ProbeWindow = 60
	}
	if o.Guard == 0 {
		o.Guard = o.Interval / 4
	}
	if o.History <= 0 {
		o.History = 900
	}
	if o.QueryChars <= 0 {
		o.QueryChars = 120
	}
	if o.Application == "" {
		o.Application = DefaultApplication
	}
	return o, nil
}

// Monitor samples the lock and latency panes of a set of tables.
type Monitor struct {
	opts    Options
	tables  []Table
	lockS   *session
	statS   *session
	probeS  []*session
	counter xactCounter

	locks   *lockSampler
	latency *latencySampler

	samples chan Sample
	runOnce sync.Once

	mu      sync.Mutex
	history *Ring[Sample]
}

// Open connects the monitor to the database at dbURL (as db.Connect reads
// it: a connection failure is a *db.ConnectError) and resolves the tables
// (an unknown one is an error wrapping ErrUnknownTable). It opens a
// connection for the lock pane, one for the statistics and one per table
// for the canary probes. Close releases them.
func Open(ctx context.Context, dbURL string, tables []string, opts Options) (*Monitor, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Monitor{opts: opts, samples: make(chan Sample, 1), history: NewRing[Sample](opts.History)}
	newSession := func(app string, stmt, lock time.Duration) *session {
		return &session{url: dbURL, app: app, stmt: stmt, lock: lock, counters: &m.counter}
	}
	// Nothing the monitor runs should take long; a statement that does is
	// cut off by the server.
	stmtTimeout := max(opts.Interval, time.Second)
	m.lockS = newSession(opts.Application, stmtTimeout, opts.ProbeTimeout)
	m.statS = newSession(opts.Application, stmtTimeout, opts.ProbeTimeout)
	fail := func(err error) (*Monitor, error) {
		m.Close()
		return nil, err
	}

	m.lockS.mu.Lock()
	conn, err := m.lockS.acquire(ctx)
	if err == nil {
		m.tables, err = resolveTables(ctx, conn, tables, opts.Keys)
	}
	m.lockS.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	var probes []*probe
	for _, t := range m.tables {
		s := newSession(opts.Application+" probe", opts.ProbeTimeout, opts.ProbeTimeout)
		m.probeS = append(m.probeS, s)
		s.mu.Lock()
		_, err := s.acquire(ctx)
		s.mu.Unlock()
		if err != nil {
			return fail(err)
		}
		probes = append(probes, &probe{table: t, sess: s, window: NewRing[probeResult](opts.ProbeWindow)})
	}
	m.locks = newLockSampler(m.lockS, m.tables, opts, m.ownPIDs)
	m.latency = newLatencySampler(m.statS, m.tables, probes, opts, m.ownPIDs)

	m.statS.mu.Lock()
	conn, err = m.statS.acquire(ctx)
	if err == nil {
		m.latency.setup(ctx, conn, []stmtSQL{
			{sql: lockSQLFor(m.lockS.version), args: []any{m.locks.oids, []int32{}, 0}},
			{sql: setupSQL, args: []any{"", "0", "0"}},
		})
	}
	m.statS.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	return m, nil
}

// Tables returns the resolved target tables.
func (m *Monitor) Tables() []Table { return slices.Clone(m.tables) }

// Options returns the options in effect, defaults filled in.
func (m *Monitor) Options() Options { return m.opts }

// Samples returns the channel Run delivers samples on. It holds at most one
// sample: a consumer that falls behind finds the newest one, whose Dropped
// counts those it missed. Run closes it when it returns.
func (m *Monitor) Samples() <-chan Sample { return m.samples }

// History returns the samples kept so far, oldest first.
func (m *Monitor) History() []Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.history.Slice()
}

// ErrRunning is returned by a second call of Run.
var ErrRunning = errors.New("monitor: Run was already called")

// Run samples every Options.Interval, the first tick at once, until ctx is
// done; it then closes the Samples channel and returns nil. Run may be
// called once. A tick whose work outlasts the interval delays the next
// (ticks are never queued up).
func (m *Monitor) Run(ctx context.Context) error {
	ran := false
	m.runOnce.Do(func() { ran = true })
	if !ran {
		return ErrRunning
	}
	defer close(m.samples)
	ticker := time.NewTicker(m.opts.Interval)
	defer ticker.Stop()
	var seq int64
	for {
		seq++
		s := m.Tick(ctx)
		s.Seq = seq
		if ctx.Err() != nil {
			return nil
		}
		m.mu.Lock()
		m.history.Push(s)
		m.mu.Unlock()
		sendLatest(m.samples, s, func(old, s Sample) Sample {
			s.Dropped += old.Dropped + 1
			return s
		})
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// Tick samples both panes once, concurrently, and returns the sample
// without delivering it (Seq is 0). Run calls it; tests and one-shot
// callers may call it directly, but not while Run runs.
func (m *Monitor) Tick(ctx context.Context) Sample {
	s := Sample{Time: time.Now()}
	var wg sync.WaitGroup
	wg.Go(func() { s.Locks = m.locks.sample(ctx) })
	s.Latency = m.latency.sample(ctx)
	wg.Wait()
	return s
}

// ownPIDs returns the backend pids of the monitor's connections.
func (m *Monitor) ownPIDs() []int32 {
	out := make([]int32, 0, 2+len(m.probeS))
	for _, s := range append([]*session{m.lockS, m.statS}, m.probeS...) {
		if pid := s.pid.Load(); pid != 0 {
			out = append(out, pid)
		}
	}
	return out
}

// Close closes the monitor's connections. Call it after Run returned.
func (m *Monitor) Close() error {
	for _, s := range append([]*session{m.lockS, m.statS}, m.probeS...) {
		if s != nil {
			s.close()
		}
	}
	return nil
}
