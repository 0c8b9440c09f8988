package monitor

// The backfill's throttle signals (db.Signals) from the monitor's samples:
// the adaptive backfill reuses what the monitor measures rather than
// querying the server again.

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/cutover/cutover/db"
)

// BackfillSignals reduces a sample to the throttle's signals: the
// application sessions waiting for a lock held by cutover (a session whose
// blockers include one of cutover's, or queued behind cutover's DDL), the
// worst probe's latest latency, and the largest replica lag.
func BackfillSignals(s Sample) db.Signals {
	out := db.Signals{}
	if s.Locks != nil && !s.Locks.Skipped && s.Locks.Error == "" {
		out.Known = true
		cut := map[int]bool{}
		for _, se := range s.Locks.Sessions {
			if se.Cutover {
				cut[se.PID] = true
			}
		}
		waiting := map[int]bool{}
		for _, se := range s.Locks.Sessions {
			if se.Cutover || se.WaitingFor == nil {
				continue
			}
			if slices.ContainsFunc(se.BlockedBy, func(p int) bool { return cut[p] }) {
				waiting[se.PID] = true
				out.LockWait = max(out.LockWait, se.Waiting.D())
			}
		}
		for _, t := range s.Locks.Traps {
			for _, p := range t.Queue {
				if !cut[p] {
					waiting[p] = true
				}
			}
			out.LockWait = max(out.LockWait, t.OldestQueued.D())
		}
		out.LockWaiters = len(waiting)
	}
	if l := s.Latency; l != nil {
		for _, p := range l.Probes {
			if p.Error != "" {
				continue
			}
			out.Known = true
			if p.Last.D() > out.Probe {
				out.Probe = p.Last.D()
			}
			out.ProbeTimedOut = out.ProbeTimedOut || p.TimedOut
		}
		for _, r := range l.Replicas {
			for _, lag := range []*Millis{r.WriteLag, r.FlushLag, r.ReplayLag} {
				if lag != nil && lag.D() > out.ReplicaLag {
					out.ReplicaLag = lag.D()
				}
			}
			if r.LagBytes != nil && *r.LagBytes > out.ReplicaLagBytes {
				out.ReplicaLagBytes = *r.LagBytes
			}
		}
	}
	return out
}

// SignalFeed runs a monitor and keeps the signals of its newest sample
// for the adaptive backfill (db.AdaptivePacer's Source). A sample older
// than three intervals counts as unknown.
type SignalFeed struct {
	m      *Monitor
	maxAge time.Duration
	mu     sync.Mutex
	last   db.Signals
	at     time.Time
}

// StartSignalFeed opens a monitor on the tables and runs it until ctx is
// done (stop waits for it and closes its connections).
func StartSignalFeed(ctx context.Context, dbURL string, tables []string, opts Options) (feed *SignalFeed, stop func(), err error) {
	m, err := Open(ctx, dbURL, tables, opts)
	if err != nil {
		return nil, nil, err
	}
	f := &SignalFeed{m: m, maxAge: 3 * m.Options().Interval}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(ctx) })
	wg.Go(func() {
		for s := range m.Samples() {
			sig := BackfillSignals(s)
			f.mu.Lock()
			f.last, f.at = sig, time.Now()
			f.mu.Unlock()
		}
	})
	return f, func() { cancel(); wg.Wait(); m.Close() }, nil
}

// Signals returns the newest sample's signals (Known false when there is
// none recent).
func (f *SignalFeed) Signals() db.Signals {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.at.IsZero() || time.Since(f.at) > f.maxAge {
		return db.Signals{}
	}
	return f.last
}
