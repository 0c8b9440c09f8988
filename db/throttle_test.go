package db

import (
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	c := DefaultThrottle() // budget 50ms, waiters 0 over 25ms, min 100, max 50000, pause 250ms..10s
	c.TargetBatch = 50 * time.Millisecond
	batch := func(size int, d time.Duration) *BatchResult {
		return &BatchResult{Size: size, Rows: int64(size), Duration: d}
	}
	ms := time.Millisecond
	tests := []struct {
		name       string
		st         ThrottleState
		s          Signals
		size       int
		pause      time.Duration
		reason     string // substring; "" means no reason
		suffering  int
		wantNoWhy  bool
		configured func(*ThrottleConfig)
	}{
		{name: "first batch uses the initial size", s: Signals{}, size: 1000, wantNoWhy: true},
		{name: "fast batch doubles at most", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 5*ms), Known: true}, size: 2000, wantNoWhy: true},
		{name: "moves to the target", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 40*ms)}, size: 1250, wantNoWhy: true},
		{name: "slow batch shrinks proportionally", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 80*ms)}, size: 625, wantNoWhy: true},
		{name: "very slow batch halves", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 500*ms)}, size: 500, wantNoWhy: true},
		{name: "capped at the maximum", st: ThrottleState{Size: 40000}, s: Signals{Last: batch(40000, ms)}, size: 50000, wantNoWhy: true},
		{name: "floored at the minimum, says why", st: ThrottleState{Size: 100}, s: Signals{Last: batch(100, 90*ms)}, size: 100, reason: "minimum batch size"},
		{name: "smaller last batch (end of table) does not grow the size", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(10, ms)}, size: 1000, wantNoWhy: true},
		{name: "lock waiter pauses and halves", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 10*ms), Known: true, LockWaiters: 1, LockWait: 30 * ms}, size: 500, pause: 250 * ms, reason: "1 session waiting for a lock cutover holds", suffering: 1},
		{name: "pause doubles while it lasts", st: ThrottleState{Size: 1000, Suffering: 2}, s: Signals{Last: batch(1000, 10*ms), Known: true, LockWaiters: 3, LockWait: time.Second}, size: 500, pause: time.Second, reason: "3 sessions", suffering: 3},
		{name: "pause is capped", st: ThrottleState{Size: 1000, Suffering: 20}, s: Signals{Known: true, ProbeTimedOut: true, Probe: 500 * ms}, size: 500, pause: 10 * time.Second, reason: "probe timed out", suffering: 21},
		{name: "short row-lock waits are the price of a write", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 50*ms), Known: true, LockWaiters: 4, LockWait: 5 * ms}, size: 1000, wantNoWhy: true},
		{name: "waiters allowed by the threshold", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 50*ms), Known: true, LockWaiters: 2, LockWait: time.Second}, size: 1000, wantNoWhy: true,
			configured: func(c *ThrottleConfig) { c.MaxLockWaiters = 2 }},
		{name: "waiter check disabled", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 50*ms), Known: true, LockWaiters: 9, LockWait: time.Second}, size: 1000, wantNoWhy: true,
			configured: func(c *ThrottleConfig) { c.MaxLockWaiters = -1 }},
		{name: "probe over budget: half size, 50% duty cycle", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 40*ms), Known: true, Probe: 80 * ms}, size: 500, pause: 40 * ms, reason: "slowed: probe latency 80ms over the 50ms budget"},
		{name: "probe within budget", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 50*ms), Known: true, Probe: 20 * ms}, size: 1000, wantNoWhy: true},
		{name: "unknown signals are ignored", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 50*ms), LockWaiters: 5, Probe: time.Second}, size: 1000, wantNoWhy: true},
		{name: "replica lag in time pauses", st: ThrottleState{Size: 1000}, s: Signals{Known: true, ReplicaLag: 11 * time.Second}, size: 500, pause: 250 * ms, reason: "replica lag 11s over 10s", suffering: 1},
		{name: "replica lag in bytes pauses", st: ThrottleState{Size: 1000}, s: Signals{Known: true, ReplicaLagBytes: 300 << 20}, size: 500, pause: 250 * ms, reason: "replica lag 300.0 MB over 256.0 MB", suffering: 1},
		{name: "replica lag check disabled", st: ThrottleState{Size: 1000}, s: Signals{Last: batch(1000, 50*ms), Known: true, ReplicaLag: time.Hour}, size: 1000, wantNoWhy: true,
			configured: func(c *ThrottleConfig) { c.MaxReplicaLag = 0 }},
		{name: "recovery resets the pause and speeds up", st: ThrottleState{Size: 500, Suffering: 4}, s: Signals{Last: batch(500, 10*ms), Known: true}, size: 1000, wantNoWhy: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := c
			if tt.configured != nil {
				tt.configured(&cfg)
			}
			d, st := Decide(cfg, tt.st, tt.s)
			if d.Size != tt.size || d.Pause != tt.pause {
				t.Errorf("size, pause = %d, %s; want %d, %s (reason %q)", d.Size, d.Pause, tt.size, tt.pause, d.Reason)
			}
			if tt.wantNoWhy && d.Reason != "" {
				t.Errorf("reason = %q, want none", d.Reason)
			}
			if !tt.wantNoWhy && !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", d.Reason, tt.reason)
			}
			if st.Size != d.Size || st.Suffering != tt.suffering {
				t.Errorf("state = %+v, want size %d suffering %d", st, d.Size, tt.suffering)
			}
			// The application's signals (not the batch duration) mark the
			// decision for the parallel backfill's governor; a pause holds
			// every worker.
			app := strings.HasPrefix(d.Reason, "paused:") || strings.HasPrefix(d.Reason, "slowed:")
			if d.Suffering != app || d.Hard != (tt.suffering > 0) {
				t.Errorf("suffering %v, hard %v for reason %q", d.Suffering, d.Hard, d.Reason)
			}
		})
	}
}

// TestDecideConverges: a batch's duration proportional to its size
// settles on the size that takes the target.
func TestDecideConverges(t *testing.T) {
	c := DefaultThrottle()
	c.TargetBatch = 50 * time.Millisecond
	perRow := 10 * time.Microsecond // 5,000 rows = 50ms
	var st ThrottleState
	var d Decision
	var last *BatchResult
	for i := 0; i < 20; i++ {
		d, st = Decide(c, st, Signals{Last: last})
		last = &BatchResult{Size: d.Size, Rows: int64(d.Size), Duration: time.Duration(d.Size) * perRow}
	}
	if d.Size < 4500 || d.Size > 5500 {
		t.Errorf("converged to %d, want about 5000", d.Size)
	}
}

func TestThrottleCheck(t *testing.T) {
	if err := DefaultThrottle().Check(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultThrottle()
	bad.TargetBatch = 0
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "--batch-target") {
		t.Errorf("Check = %v", err)
	}
	bad = DefaultThrottle()
	bad.MinBatch = 10
	bad.MaxBatch = 5
	if bad.Check() == nil {
		t.Error("min > max accepted")
	}
}

func TestAdaptivePacer(t *testing.T) {
	waiters := 0
	p := NewAdaptivePacer(DefaultThrottle(), func() Signals { return Signals{Known: true, LockWaiters: waiters, LockWait: time.Second} })
	size, pause := p.Next(nil)
	if size != DefaultBatchSize || pause != 0 || p.Throttled() != "" {
		t.Fatalf("first: %d %s %q", size, pause, p.Throttled())
	}
	waiters = 1
	size, pause = p.Next(&BatchResult{Size: size, Rows: int64(size), Duration: 10 * time.Millisecond})
	if size != DefaultBatchSize/2 || pause != DefaultPauseStep || !strings.HasPrefix(p.Throttled(), "paused:") {
		t.Fatalf("waiter: %d %s %q", size, pause, p.Throttled())
	}
	waiters = 0
	_, pause = p.Next(&BatchResult{Size: size, Rows: int64(size), Duration: 10 * time.Millisecond})
	if pause != 0 || p.Throttled() != "" {
		t.Fatalf("recovered: %s %q", pause, p.Throttled())
	}
}

// The worker governor halves the workers allowed at once while the
// application suffers (at most once per workerCut), down to one, and adds
// one back per workerCalm of calm.
func TestWorkerGovernor(t *testing.T) {
	t0 := time.Unix(1000, 0)
	g := workerGovernor{max: 8, limit: 8, changed: t0}
	hurt, calm := Decision{Suffering: true, Reason: "slowed: probe"}, Decision{}
	ms := time.Millisecond
	steps := []struct {
		at   time.Duration
		d    Decision
		want int
	}{
		{10 * ms, calm, 8},
		{100 * ms, hurt, 8},  // too soon after the start (workerCut)
		{600 * ms, hurt, 4},  // halved
		{700 * ms, hurt, 4},  // not again within workerCut
		{1100 * ms, hurt, 2}, // again
		{1700 * ms, hurt, 1}, // down to one
		{2300 * ms, hurt, 1}, // never zero
		{2800 * ms, calm, 1}, // calm, but not for workerCalm yet
		{3400 * ms, calm, 2}, // one back
		{3500 * ms, calm, 2},
		{4500 * ms, calm, 3},
		{4600 * ms, Decision{Reason: "at the minimum batch size"}, 3}, // a slow batch is not the application suffering
		{5600 * ms, calm, 4},
		{20 * time.Second, calm, 5},
		{40 * time.Second, calm, 6},
		{40*time.Second + 500*ms, calm, 6},
	}
	for _, s := range steps {
		if got := g.update(t0.Add(s.at), s.d); got != s.want {
			t.Fatalf("at %s (%q): limit %d, want %d", s.at, s.d.Reason, got, s.want)
		}
	}
	for i := 0; i < 20; i++ {
		g.update(t0.Add(time.Minute+time.Duration(i)*time.Minute), calm)
	}
	if g.limit != 8 {
		t.Errorf("after long calm: limit %d, want the maximum 8", g.limit)
	}
}
