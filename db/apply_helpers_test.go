package db_test

// Helpers of the apply engine's tests: run a plan to its end through the
// engine (confirming application releases), read the audit trail, and a
// concurrent workload that times every query.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/plans"
)

// events collects an engine's events and logs them.
type events struct {
	t   testing.TB
	mu  sync.Mutex
	all []db.ApplyEvent
}

func newEvents(t testing.TB) *events { return &events{t: t} }

func (ev *events) on(e db.ApplyEvent) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.all = append(ev.all, e)
	ev.t.Log(e.String())
}

func (ev *events) kind(k db.EventKind) []db.ApplyEvent {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var out []db.ApplyEvent
	for _, e := range ev.all {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// said reports whether an event of kind k has a message containing sub.
func (ev *events) said(k db.EventKind, sub string) bool {
	for _, e := range ev.kind(k) {
		if strings.Contains(e.Message, sub) {
			return true
		}
	}
	return false
}

// confirmAll returns options that go through the whole plan unattended:
// application releases confirmed, irreversible steps allowed, the usage
// check done once, triggers skipped (so that data is deterministic).
func confirmAll(p *plans.Plan, ev *events) db.ApplyOptions {
	return db.ApplyOptions{
		ConfirmApps:         true,
		ConfirmIrreversible: planTables(p),
		Observe:             0,
		SkipTriggers:        true,
		OnEvent:             ev.on,
	}
}

func planTables(p *plans.Plan) []string {
	var out []string
	for _, r := range p.Steps() {
		out = append(out, r.Step.ID)
		if r.Step.Table != "" {
			out = append(out, r.Step.Table)
		}
	}
	return out
}

// openEngine opens an engine, retrying while a killed engine's session
// still holds the locks (the server notices a dead client within a second).
func openEngine(t testing.TB, url string, p *plans.Plan, opts db.ApplyOptions) *db.Engine {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		e, err := db.Open(context.Background(), url, p, opts)
		var ae *db.ApplyError
		if errors.As(err, &ae) && ae.Kind == db.Busy && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return e
	}
}

// applyOnce runs Apply once.
func applyOnce(t testing.TB, url string, p *plans.Plan, opts db.ApplyOptions) (*db.Outcome, error) {
	t.Helper()
	e := openEngine(t, url, p, opts)
	defer e.Close()
	return e.Apply(context.Background())
}

// applyToEnd applies the plan until it is done.
func applyToEnd(t testing.TB, url string, p *plans.Plan, opts db.ApplyOptions) {
	t.Helper()
	for i := 0; i < 10; i++ {
		out, err := applyOnce(t, url, p, opts)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		if out.Status == "done" {
			return
		}
	}
	t.Fatal("apply did not finish in 10 runs")
}

func rollback(t testing.TB, url string, p *plans.Plan, opts db.ApplyOptions) (*db.Outcome, error) {
	t.Helper()
	e := openEngine(t, url, p, opts)
	defer e.Close()
	return e.Rollback(context.Background())
}

func withStatements(t testing.TB, conn *pgx.Conn) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		t.Fatal(err)
	}
}

// auditRow is a row of cutover.statements.
type auditRow struct {
	step, action, statement, outcome, sqlstate string
	attempt                                    int
	args                                       []string
	rows                                       *int64
	lockWait, duration                         *float64
	blockedBy                                  *string
}

func audit(t testing.TB, conn *pgx.Conn, planID string) []auditRow {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT coalesce(step_id, ''), action, statement, outcome, coalesce(sqlstate, ''), attempt,
		coalesce(args, '{}'), rows, lock_wait_ms, duration_ms, blocked_by FROM cutover.statements WHERE plan_id = $1 ORDER BY id`, planID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var a auditRow
		if err := rows.Scan(&a.step, &a.action, &a.statement, &a.outcome, &a.sqlstate, &a.attempt, &a.args, &a.rows, &a.lockWait, &a.duration, &a.blockedBy); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func stepStatus(t testing.TB, conn *pgx.Conn, planID, step string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), `SELECT status FROM cutover.steps WHERE plan_id = $1 AND step_id = $2`, planID, step).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// workload runs goroutines that read and write a table while a plan is
// applied. Every query is timed; errors are kept.
type workload struct {
	t     testing.TB
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	errs  []error
	max   time.Duration
	maxAt time.Time
	ops   int
	// lat records every query's latency with its start, for windows.
	lat []latency
}

type latency struct {
	start time.Time
	d     time.Duration
}

func newWorkload(t testing.TB) *workload {
	return &workload{t: t, stop: make(chan struct{})}
}

// run starts n goroutines calling op(ctx, conn, goroutine, iteration)
// until stopped; conn is each goroutine's own connection.
func (w *workload) run(url string, n int, mode pgx.QueryExecMode, op func(conn *pgx.Conn, g, i int) error) {
	for g := 0; g < n; g++ {
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			w.t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = mode
		cfg.RuntimeParams["application_name"] = fmt.Sprintf("workload-%d", g)
		conn, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			w.t.Fatal(err)
		}
		w.wg.Add(1)
		go func(g int) {
			defer w.wg.Done()
			defer conn.Close(context.Background())
			for i := 0; ; i++ {
				select {
				case <-w.stop:
					return
				default:
				}
				start := time.Now()
				err := op(conn, g, i)
				d := time.Since(start)
				w.mu.Lock()
				w.ops++
				w.lat = append(w.lat, latency{start, d})
				if d > w.max {
					w.max, w.maxAt = d, start
				}
				if err != nil {
					w.errs = append(w.errs, fmt.Errorf("goroutine %d op %d: %w", g, i, err))
				}
				w.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}(g)
	}
}

// finish stops the goroutines and fails the test on any workload error.
func (w *workload) finish() {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, err := range w.errs {
		if i == 10 {
			w.t.Errorf("... and %d more workload errors", len(w.errs)-10)
			break
		}
		w.t.Errorf("workload error: %v", err)
	}
	w.t.Logf("workload: %d queries, max latency %s at %s", w.ops, w.max, w.maxAt.Format("15:04:05.000"))
}
