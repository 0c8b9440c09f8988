package db

// Lock safety. Every statement cutover runs has a lock_timeout: a DDL that
// waits for its lock makes every later query on the table queue behind it
// (the lock-queue trap), so it must give up quickly instead, let the queue
// drain, and try again later. Only lock conflicts are retried: SQLSTATE
// 55P03 (lock_not_available, raised by lock_timeout) and 40P01 (deadlock
// detected). Waits grow exponentially with full jitter (a random wait
// between zero and the exponential bound), so that retries of several
// operators or steps do not synchronize, bounded in attempts and in total
// time.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cutover/cutover/plans"
)

// Defaults of the lock-safety flags.
const (
	DefaultLockTimeout  = 250 * time.Millisecond
	DefaultMaxAttempts  = 30
	DefaultMaxRetryTime = 10 * time.Minute
	// retryBase is the first backoff bound; it doubles per attempt up to
	// retryCap.
	retryBase = 250 * time.Millisecond
	retryCap  = 30 * time.Second
)

// Statement timeouts per class of statement. A statement that exceeds its
// timeout fails (it is not retried): something is wrong with the plan or
// the database, and a person must look.
const (
	// CatalogStatementTimeout bounds catalog-only statements (ADD COLUMN
	// without a default, CREATE TRIGGER, renames, swaps): once their lock
	// is granted they take milliseconds.
	CatalogStatementTimeout = 5 * time.Second
	// BatchStatementTimeout bounds each statement of a backfill batch.
	BatchStatementTimeout = 5 * time.Second
	// Scans (index builds, VALIDATE CONSTRAINT, materialized views,
	// rewrites) and gates have no statement timeout: they take as long as
	// the table is big, and their locks do not block the application (or
	// the plan says so and why).
)

// retryableCode returns the SQLSTATE of a lock conflict worth retrying.
func retryableCode(err error) (string, bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "40P01") {
		return pgErr.Code, true
	}
	return "", false
}

// sqlState returns err's SQLSTATE, "" when it has none.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// backoff returns the wait before retry number n (1-based): a uniformly
// random duration in [0, min(retryCap, retryBase*2^(n-1))].
func backoff(n int) time.Duration {
	bound := retryCap
	if n < 20 {
		if b := retryBase << (n - 1); b < bound {
			bound = b
		}
	}
	return rand.N(bound + 1)
}

// attemptFunc runs one attempt; n is the attempt number within this
// invocation, from 1.
type attemptFunc func(ctx context.Context, n int) error

// retrySubject names what is retried, for events and messages.
type retrySubject struct {
	stepID   string
	phase    plans.PhaseName
	deploy   int
	rollback bool
	what     string // "step", "batch 12", "gate"
	// whatNow, when set, says what instead, at the time of each attempt
	// (a backfill range's next batch moves when a failed call of the
	// server-side loop had committed batches).
	whatNow func() string
}

// desc is what is retried.
func (s retrySubject) desc() string {
	if s.whatNow != nil {
		return s.whatNow()
	}
	return s.what
}

// withRetry runs attempt until it succeeds, fails with anything but a lock
// conflict, or the attempt and time bounds are reached. Each retry is
// reported as an EventStepRetry, naming the sessions that blocked the
// attempt when the engine saw them.
func (e *Engine) withRetry(ctx context.Context, subj retrySubject, attempt attemptFunc) error {
	return e.retryLoop(ctx, subj, func(ctx context.Context, n int) error {
		e.lastBlockers = ""
		return attempt(ctx, n)
	}, e.emit, func() string { return e.lastBlockers })
}

// retryLoop is withRetry's loop: emit reports each retry (the parallel
// backfill's workers serialize their events through it), blockers (nil:
// unknown) names who blocked the last attempt.
func (e *Engine) retryLoop(ctx context.Context, subj retrySubject, attempt attemptFunc, emit func(ApplyEvent), blockers func() string) error {
	start := time.Now()
	for n := 1; ; n++ {
		err := attempt(ctx, n)
		if err == nil {
			return nil
		}
		code, ok := retryableCode(err)
		if !ok || e.killed() {
			return err
		}
		why := "lock not granted within lock_timeout " + e.opts.LockTimeout.String() + " (55P03)"
		if code == "40P01" {
			why = "deadlock detected (40P01), this attempt was cancelled"
		}
		by := ""
		if blockers != nil {
			by = blockers()
		}
		if by != "" {
			why += ", blocked by " + by
		}
		elapsed := time.Since(start)
		if n >= e.opts.MaxAttempts || elapsed >= e.opts.MaxRetryTime {
			return &ApplyError{Kind: Failed, Msg: fmt.Sprintf("%s: gave up after %d attempts in %s: %s; the database is consistent (the failed attempts were rolled back): run apply again to resume, or raise --max-attempts / --max-retry-time",
				subj.label(), n, roundDur(elapsed), why), Err: err}
		}
		wait := backoff(n)
		if rest := e.opts.MaxRetryTime - elapsed; wait > rest {
			wait = rest
		}
		emit(ApplyEvent{Kind: EventStepRetry, StepID: subj.stepID, Phase: subj.phase, Deploy: subj.deploy, Rollback: subj.rollback, Attempt: n,
			Message: fmt.Sprintf("%s attempt %d/%d: %s; retrying in %s", subj.desc(), n, e.opts.MaxAttempts, why, roundDur(wait)),
			Retry:   &RetryInfo{Attempt: n, MaxAttempts: e.opts.MaxAttempts, Wait: wait, SQLState: code, Blockers: by}})
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s retrySubject) label() string {
	l := s.stepID
	if s.rollback {
		l += " (rollback)"
	}
	if w := s.desc(); w != "" && w != "step" {
		l += " " + w
	}
	return l
}
