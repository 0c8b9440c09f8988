package db

// The backfill's throttle controller: a pure function from what the last
// batch did and what the application feels (signals) to the size of the
// next batch and the pause before it (a decision). It has no clock and no
// connection, so every policy below is unit-tested as a table of signals.
//
// Policy, in order:
//  1. Application suffers, hard: sessions wait for a lock cutover holds
//     (more than MaxLockWaiters, longer than MaxLockWait), the canary probe timed out, or a replica
//     lags more than MaxReplicaLag / MaxReplicaLagBytes. The batch size is
//     halved and the engine pauses, the pause doubling while it lasts
//     (PauseStep, 2x, 4x ... up to MaxPause), so a replica can catch up and
//     a blocked session gets through.
//  2. Application suffers, soft: the probe latency is over LatencyBudget.
//     The batch size is halved and the engine leaves the database idle for
//     as long as the last batch took (a 50% duty cycle) before the next.
//  3. Otherwise the batch size moves towards the one that takes
//     TargetBatch: size x target/last duration, at most doubling and at
//     least halving per batch, within [MinBatch, MaxBatch]. A batch that
//     took more than twice the target halves the size at once.
//
// A batch holds row locks for its whole duration: a workload transaction
// that updates a row of the current batch waits up to TargetBatch; and a
// batch is a burst of CPU the application's queries may wait behind on a
// busy server. That is why TargetBatch is short (10 ms by default, a few
// hundred keys): the benchmark (docs/benchmarks.md) saw lock waits over
// 100 ms at 50 ms, none at 25 ms or less; 5 ms batches were slower and
// not kinder to the workload's p99 than 10 ms ones.

import (
	"fmt"
	"strings"
	"time"
)

// Defaults of the throttle (flags of cutover apply).
const (
	DefaultBatchTarget        = 10 * time.Millisecond
	DefaultLatencyBudget      = 50 * time.Millisecond
	DefaultMaxLockWaiters     = 0
	DefaultMaxLockWait        = 25 * time.Millisecond
	DefaultMaxReplicaLag      = 10 * time.Second
	DefaultMaxReplicaLagBytes = 256 << 20
	DefaultMinBatch           = 100
	DefaultMaxBatch           = 50000
	DefaultPauseStep          = 250 * time.Millisecond
	DefaultMaxPause           = 10 * time.Second
)

// ThrottleConfig are the thresholds of the adaptive backfill.
type ThrottleConfig struct {
	// TargetBatch is the duration each batch should take.
	TargetBatch time.Duration
	// LatencyBudget: the canary probe's latency over it slows the backfill
	// down (0 disables the check).
	LatencyBudget time.Duration
	// MaxLockWaiters: more application sessions than this waiting longer
	// than MaxLockWait for a lock cutover holds pause the backfill
	// (negative disables the check). A batch's row locks make the odd
	// application UPDATE wait a few milliseconds: that is the price of
	// any write, so only waits longer than MaxLockWait count.
	MaxLockWaiters int
	MaxLockWait    time.Duration
	// MaxReplicaLag / MaxReplicaLagBytes: a replica further behind pauses
	// the backfill (0 disables the check).
	MaxReplicaLag      time.Duration
	MaxReplicaLagBytes int64
	// InitialBatch, MinBatch, MaxBatch bound the batch size (keys).
	InitialBatch, MinBatch, MaxBatch int
	// PauseStep is the first pause when the application suffers;
	// MaxPause the longest.
	PauseStep, MaxPause time.Duration
}

// DefaultThrottle returns the default thresholds.
func DefaultThrottle() ThrottleConfig {
	return ThrottleConfig{
		TargetBatch:        DefaultBatchTarget,
		LatencyBudget:      DefaultLatencyBudget,
		MaxLockWaiters:     DefaultMaxLockWaiters,
		MaxLockWait:        DefaultMaxLockWait,
		MaxReplicaLag:      DefaultMaxReplicaLag,
		MaxReplicaLagBytes: DefaultMaxReplicaLagBytes,
		InitialBatch:       DefaultBatchSize,
		MinBatch:           DefaultMinBatch,
		MaxBatch:           DefaultMaxBatch,
		PauseStep:          DefaultPauseStep,
		MaxPause:           DefaultMaxPause,
	}
}

// Check says what is wrong with the thresholds, in flag terms.
func (c ThrottleConfig) Check() error {
	switch {
	case c.TargetBatch <= 0:
		return fmt.Errorf("--batch-target must be positive (e.g. 50ms)")
	case c.LatencyBudget < 0:
		return fmt.Errorf("--latency-budget must not be negative (0 disables it)")
	case c.MinBatch < 1 || c.MaxBatch < c.MinBatch:
		return fmt.Errorf("batch bounds must satisfy 1 <= min (%d) <= max (%d)", c.MinBatch, c.MaxBatch)
	case c.MaxLockWait < 0:
		return fmt.Errorf("--max-lock-wait must not be negative")
	case c.MaxReplicaLag < 0 || c.MaxReplicaLagBytes < 0:
		return fmt.Errorf("--max-replica-lag and --max-replica-lag-bytes must not be negative (0 disables them)")
	case c.PauseStep <= 0 || c.MaxPause < c.PauseStep:
		return fmt.Errorf("pauses must satisfy 0 < step (%s) <= max (%s)", c.PauseStep, c.MaxPause)
	}
	return nil
}

// Signals are what the controller decides from: the last batch, and the
// application's state as the monitor saw it since.
type Signals struct {
	// Last is the batch that just committed (nil before the first).
	Last *BatchResult
	// Known is false when no monitor sample is available (the checks on
	// the application are skipped; only the batch duration counts).
	Known bool
	// LockWaiters counts application sessions waiting for a lock held by
	// cutover (directly or queued behind one of its statements), LockWait
	// how long the oldest of them has waited.
	LockWaiters int
	LockWait    time.Duration
	// Probe is the canary probe's latency on the table; ProbeTimedOut is
	// set when it hit its timeout.
	Probe         time.Duration
	ProbeTimedOut bool
	// ReplicaLag and ReplicaLagBytes are the largest lag over the
	// replicas (0 without replicas).
	ReplicaLag      time.Duration
	ReplicaLagBytes int64
}

// ThrottleState is what the controller carries from one decision to the
// next.
type ThrottleState struct {
	// Size is the current batch size (0 before the first decision).
	Size int
	// Suffering counts consecutive decisions that paused for the
	// application (it grows the pause).
	Suffering int
}

// Decision is what to do before the next batch.
type Decision struct {
	Size  int
	Pause time.Duration
	// Reason says why the backfill is throttled ("" when it runs at the
	// speed its batch target allows).
	Reason string
	// Suffering is set when the application's signals (not the batch
	// duration) throttle the backfill; Hard when they pause it: a
	// parallel backfill then holds every worker for Pause and runs fewer
	// workers at once.
	Suffering, Hard bool
}

// Decide is the controller: a pure function of its configuration, its
// state and the signals.
func Decide(c ThrottleConfig, st ThrottleState, s Signals) (Decision, ThrottleState) {
	size := st.Size
	if size <= 0 {
		size = c.InitialBatch
		if size <= 0 {
			size = c.MinBatch
		}
	}
	size = clamp(size, c.MinBatch, c.MaxBatch)

	var hard, soft []string
	if s.Known {
		if c.MaxLockWaiters >= 0 && s.LockWaiters > c.MaxLockWaiters && s.LockWait > c.MaxLockWait {
			hard = append(hard, fmt.Sprintf("%s waiting for a lock cutover holds (the oldest for %s)", plural(int64(s.LockWaiters), "session"), roundMs(s.LockWait)))
		}
		if s.ProbeTimedOut {
			hard = append(hard, fmt.Sprintf("the canary probe timed out (%s)", roundMs(s.Probe)))
		} else if c.LatencyBudget > 0 && s.Probe > c.LatencyBudget {
			soft = append(soft, fmt.Sprintf("probe latency %s over the %s budget", roundMs(s.Probe), c.LatencyBudget))
		}
		if c.MaxReplicaLag > 0 && s.ReplicaLag > c.MaxReplicaLag {
			hard = append(hard, fmt.Sprintf("replica lag %s over %s", roundMs(s.ReplicaLag), c.MaxReplicaLag))
		}
		if c.MaxReplicaLagBytes > 0 && s.ReplicaLagBytes > c.MaxReplicaLagBytes {
			hard = append(hard, fmt.Sprintf("replica lag %s over %s", bytesText(s.ReplicaLagBytes), bytesText(c.MaxReplicaLagBytes)))
		}
	}
	switch {
	case len(hard) > 0:
		n := st.Suffering + 1
		pause := c.PauseStep
		for i := 1; i < n && pause < c.MaxPause; i++ {
			pause *= 2
		}
		pause = min(pause, c.MaxPause)
		size = clamp(size/2, c.MinBatch, c.MaxBatch)
		return Decision{Size: size, Pause: pause, Reason: "paused: " + strings.Join(append(hard, soft...), "; "), Suffering: true, Hard: true},
			ThrottleState{Size: size, Suffering: n}
	case len(soft) > 0:
		var pause time.Duration
		if s.Last != nil {
			pause = min(s.Last.Duration, c.MaxPause)
		}
		size = clamp(size/2, c.MinBatch, c.MaxBatch)
		return Decision{Size: size, Pause: pause, Reason: "slowed: " + strings.Join(soft, "; "), Suffering: true},
			ThrottleState{Size: size}
	}
	reason := ""
	if l := s.Last; l != nil && l.Duration > 0 {
		switch {
		case l.Duration > 2*c.TargetBatch:
			size /= 2
		case l.Size >= size:
			// Only a batch of the current size tells how long that size
			// takes; the ratio is bounded to [1/2, 2] per batch.
			ratio := float64(c.TargetBatch) / float64(l.Duration)
			ratio = max(0.5, min(2, ratio))
			size = int(float64(size) * ratio)
		}
	}
	size = clamp(size, c.MinBatch, c.MaxBatch)
	if size == c.MinBatch && s.Last != nil && s.Last.Duration > c.TargetBatch {
		reason = fmt.Sprintf("at the minimum batch size (%d): a batch takes %s, over the %s target", c.MinBatch, roundMs(s.Last.Duration), c.TargetBatch)
	}
	return Decision{Size: size, Reason: reason}, ThrottleState{Size: size}
}

// AdaptivePacer is the Pacer of the adaptive backfill: Decide fed with
// the signals Source returns (nil: batch durations only).
type AdaptivePacer struct {
	Config ThrottleConfig
	Source func() Signals
	state  ThrottleState
	last   Decision
}

// NewAdaptivePacer returns a pacer with the given thresholds.
func NewAdaptivePacer(c ThrottleConfig, source func() Signals) *AdaptivePacer {
	return &AdaptivePacer{Config: c, Source: source}
}

// Next implements Pacer.
func (p *AdaptivePacer) Next(prev *BatchResult) (int, time.Duration) {
	var s Signals
	if p.Source != nil {
		s = p.Source()
	}
	s.Last = prev
	p.last, p.state = Decide(p.Config, p.state, s)
	return p.last.Size, p.last.Pause
}

// Throttled says why the last decision throttled the backfill ("" when it
// did not).
func (p *AdaptivePacer) Throttled() string { return p.last.Reason }

// Last returns the last decision.
func (p *AdaptivePacer) Last() Decision { return p.last }

func clamp(v, lo, hi int) int { return max(lo, min(hi, v)) }

func roundMs(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
