package db

import (
	"fmt"
	"strings"
	"time"

	"github.com/cutover/cutover/plans"
)

// EventKind says what an ApplyEvent reports.
type EventKind int

const (
	// EventRun: a run starts, resumes, or rolls back (Message says which).
	EventRun EventKind = iota + 1
	// EventStepStarted: a step (or its rollback) starts an attempt.
	EventStepStarted
	// EventStepRetry: an attempt failed on a lock (lock_timeout or
	// deadlock) and will be retried after Retry.Wait.
	EventStepRetry
	// EventStepDone: a step (or its rollback) is done.
	EventStepDone
	// EventStepSkipped: a step found already done (resume) is not run again.
	EventStepSkipped
	// EventStepFailed: a step failed for good; the run stops.
	EventStepFailed
	// EventRepair: resume found work to clean up first (an INVALID index
	// left by an interrupted concurrent build).
	EventRepair
	// EventGate: a step's verification gate ran.
	EventGate
	// EventBackfillProgress: a backfill batch committed.
	EventBackfillProgress
	// EventWaitingForApp: the run stops until an application release is
	// performed.
	EventWaitingForApp
	// EventAppConfirmed: an application release is confirmed done.
	EventAppConfirmed
	// EventUsageCheck: the usage check before a removal ran once.
	EventUsageCheck
	// EventNotice: something the operator should know (triggers firing,
	// an irreversible step confirmed).
	EventNotice
	// EventFinished: the run stopped where it was asked to, or is done.
	EventFinished
)

// ApplyEvent is one thing the engine reports while it works. Headless
// output prints String(), one line per event; the TUI renders the typed
// fields.
type ApplyEvent struct {
	Kind EventKind
	Time time.Time
	// StepID is the step the event is about; "" for run-level events.
	StepID string
	Phase  plans.PhaseName
	// Deploy is the 1-based deploy number (as in the runbook).
	Deploy int
	// Attempt counts from 1.
	Attempt int
	// Rollback is set when the event is about undoing a step.
	Rollback bool
	// Message is the human text after the subject.
	Message string
	// Instructions are what the operator must do (EventWaitingForApp).
	Instructions []string
	// Duration of the finished step or statement, when it applies.
	Duration time.Duration
	Err      error

	Retry    *RetryInfo
	Backfill *BackfillProgress
	Gate     *GateResult
	Usage    *UsageReport
	App      *AppRelease
}

// RetryInfo details a retried attempt.
type RetryInfo struct {
	Attempt     int
	MaxAttempts int
	Wait        time.Duration
	SQLState    string
	// Blockers describes the sessions that held the lock, as seen while
	// waiting; empty when the wait was too short to see them.
	Blockers string
}

// BackfillProgress is a backfill's progress after a batch.
type BackfillProgress struct {
	Table     string
	Batches   int
	Rows      int64 // rows changed so far
	Estimated int64 // rows in the table (estimate), -1 when unknown
	BatchSize int
	LastKey   []string
	Elapsed   time.Duration
	Done      bool
	// RowsPerSec is the rate since the backfill (re)started; ETA the time
	// left at that rate (-1 when the total is unknown).
	RowsPerSec float64
	ETA        time.Duration
	// Throttled says why the next batch is smaller or delayed ("" when the
	// backfill runs at its batch target's speed); Pause is that delay.
	Throttled string
	Pause     time.Duration
	// Paused is set on the event emitted when a manual pause starts.
	Paused bool
	// Workers is how many workers may run batches at once (a keyed
	// backfill: --backfill-workers, lowered by the throttle while the
	// application suffers); 0 for the ctid walk of a table without a key.
	Workers int
}

// GateResult is a gate's outcome.
type GateResult struct {
	Description string
	Passed      bool
	Value       string
}

// String is the one line headless mode prints for the event.
func (e ApplyEvent) String() string {
	subject := e.StepID
	if subject == "" {
		subject = "run"
		if e.Deploy > 0 {
			subject = fmt.Sprintf("deploy %d", e.Deploy)
		}
	}
	if e.Rollback {
		subject += " (rollback)"
	}
	return e.Time.Format("15:04:05") + " " + subject + ": " + oneLine(e.Message)
}

// emit stamps and delivers an event.
func (e *Engine) emit(ev ApplyEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if e.opts.OnEvent != nil {
		e.opts.OnEvent(ev)
	}
}

// plural writes "1 row" / "2 rows".
func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "ch") || strings.HasSuffix(word, "s") {
		return fmt.Sprintf("%s %ses", thousands(n), word)
	}
	return fmt.Sprintf("%s %ss", thousands(n), word)
}

// thousands formats 1234567 as 1,234,567.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// roundDur rounds a duration for display.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
