package db

import "context"

// WithHook returns opts with the kill switch set: h is called at named
// points of the engine (step-start, step-running, in-tx, step-committed,
// gate-done, batch-in-tx, batch-committed, statement-running (from its own
// goroutine, ctx done when the statement ends), app-start, app-confirmed,
// rollback-in-tx, rollback-committed); returning ErrKillNow closes the
// engine's connections abruptly, as if the process had died there.
func WithHook(opts ApplyOptions, h func(ctx context.Context, point, stepID string, n int) error) ApplyOptions {
	opts.hook = h
	return opts
}

// WithClientBatches makes keyed backfills send each batch from the client
// (one hook point per batch) instead of running the server-side loop.
func WithClientBatches(opts ApplyOptions) ApplyOptions {
	opts.clientBatches = true
	return opts
}

// KillEngine kills e as its hook's ErrKillNow would, from any goroutine:
// every session's socket is closed without a goodbye.
func KillEngine(e *Engine) { e.kill() }

// ErrKillNow, returned by a hook, kills the engine; ErrKilled is what the
// engine then returns.
var (
	ErrKillNow = errKillNow
	ErrKilled  = errKilled
)
