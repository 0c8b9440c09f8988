package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/monitor"
	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// Runner is what the run screen needs from a backend besides planning:
// the state of a plan's run and the apply engine. A Backend that is also
// a Runner (LiveBackend) gets the run screen.
type Runner interface {
	// ReadRun reads the state of p's run (nil Run when never applied).
	ReadRun(ctx context.Context, p *plans.Plan) (*db.RunReport, error)
	// Apply opens the engine on p, applies it as req says and closes it.
	// It blocks until the engine stops: call it off the UI loop.
	Apply(ctx context.Context, p *plans.Plan, req RunRequest) (*db.Outcome, error)
}

// RunLister is what a backend that runs plans offers the compose screen:
// the runs in progress on its database, each with the plan stored with it
// (LiveBackend). Call it off the UI loop.
type RunLister interface {
	RunsInProgress(ctx context.Context) ([]db.RunInProgress, error)
}

// RunRequest is what one key press on the run screen asks the engine.
type RunRequest struct {
	// ThroughDeploy stops after this 1-based deploy.
	ThroughDeploy int
	// ConfirmApp confirms this application release (its checklist was
	// acknowledged); 0 for none.
	ConfirmApp int
	// ConfirmIrreversible names the tables (or step ids) whose
	// irreversible steps the operator confirmed by typing their name.
	ConfirmIrreversible []string
	// Pause pauses and resumes backfills.
	Pause *db.PauseSwitch
	// OnEvent receives the engine's events, from the engine's goroutine.
	OnEvent func(db.ApplyEvent)
}

// LiveBackend plans against a live database (db.Introspect, cached until
// a run changes the schema) and applies plans with the engine (db.Open).
// It holds no connection between calls.
type LiveBackend struct {
	url    string
	source string

	// Options are the engine's settings (lock timeout, retries, usage
	// check, batch size); the run screen adds OnEvent, Pause and what the
	// operator confirmed. Set them before the TUI starts.
	Options db.ApplyOptions
	// Throttle configures the adaptive backfill; NoThrottle runs batches
	// of Options.BatchSize back to back without a monitor.
	Throttle   db.ThrottleConfig
	NoThrottle bool

	mu     sync.Mutex
	schema *schema.Schema
}

// NewLiveBackend connects to the database at url (as for db.Connect: ""
// means DATABASE_URL, else the PG* variables) and reads its schema, so a
// bad URL or an unreachable server is an error now, before the screen is
// taken. Connection errors are *db.ConnectError: one line, no password.
func NewLiveBackend(ctx context.Context, url string) (*LiveBackend, error) {
	b := &LiveBackend{url: url, Throttle: db.DefaultThrottle()}
	b.Options.Observe = db.DefaultObserve
	conn, err := db.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	connString, _ := db.ConnString(url)
	b.source = db.Redact(connString)
	if connString == "" || len(b.source) > 60 {
		b.source = db.Describe(&conn.Config().Config)
	}
	s, err := db.Introspect(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("cannot read the schema of %s: %w", db.Describe(&conn.Config().Config), err)
	}
	b.schema = s
	return b, nil
}

// Source implements Backend: the connection string, password redacted.
func (b *LiveBackend) Source() string { return b.source }

// Connected implements Backend.
func (b *LiveBackend) Connected() bool { return true }

// URL is the connection string the backend was made with (it may hold a
// password: never show it; Source is for display).
func (b *LiveBackend) URL() string { return b.url }

// Schema implements Backend: the live schema, read again after a run.
func (b *LiveBackend) Schema(ctx context.Context) (*schema.Schema, error) {
	b.mu.Lock()
	s := b.schema
	b.mu.Unlock()
	if s != nil {
		return s, nil
	}
	conn, err := db.Connect(ctx, b.url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	s, err = db.Introspect(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("cannot read the schema of %s: %w", db.Describe(&conn.Config().Config), err)
	}
	b.mu.Lock()
	b.schema = s
	b.mu.Unlock()
	return s, nil
}

// Plan implements Backend: planned against the live schema, with its
// tables' sizes.
func (b *LiveBackend) Plan(ctx context.Context, sql string) (*plans.Plan, error) {
	s, err := b.Schema(ctx)
	if err != nil {
		return nil, err
	}
	p, err := planner.Plan(sql, planner.Options{Schema: s})
	if err != nil {
		return nil, b.inProgress(ctx, sql, err)
	}
	return p, nil
}

// inProgress explains a planning error of SQL whose run is in progress
// on the database: its first steps changed the schema, so the same SQL
// now plans differently; the run resumes from the plan stored with it.
func (b *LiveBackend) inProgress(ctx context.Context, sql string, err error) error {
	id := db.PlanID(&plans.Plan{Input: sql})
	runs, rerr := b.RunsInProgress(ctx)
	if rerr != nil {
		return err
	}
	for _, r := range runs {
		if r.PlanID != id {
			continue
		}
		how := "resume it from the plan stored with the run: ctrl+o on the compose screen"
		if r.Plan == nil {
			how = "no plan is stored with the run (started by an earlier cutover): open the plan file it was made from: cutover --db URL --plan FILE"
		}
		return fmt.Errorf("%w (this change has a run in progress here, status %s since %s: the schema changed under it, so %s)",
			err, r.Status, r.StartedAt.Format("2006-01-02 15:04"), how)
	}
	return err
}

// RunsInProgress implements RunLister: the runs on the database not done
// nor rolled back, with their stored plans.
func (b *LiveBackend) RunsInProgress(ctx context.Context) ([]db.RunInProgress, error) {
	return db.RunsInProgress(ctx, b.url)
}

// ReadRun implements Runner.
func (b *LiveBackend) ReadRun(ctx context.Context, p *plans.Plan) (*db.RunReport, error) {
	return db.ReadRun(ctx, b.url, p)
}

// Apply implements Runner. Backfills adapt to the application's lock
// waits, probe latency and replica lag (a db/monitor signal feed on their
// tables), as headless cutover apply does. The cached schema is dropped:
// the run changed it.
func (b *LiveBackend) Apply(ctx context.Context, p *plans.Plan, req RunRequest) (*db.Outcome, error) {
	defer func() {
		b.mu.Lock()
		b.schema = nil
		b.mu.Unlock()
	}()
	opts := b.Options
	opts.ThroughDeploy = req.ThroughDeploy
	opts.ConfirmApp = req.ConfirmApp
	opts.ConfirmIrreversible = append(slices.Clip(opts.ConfirmIrreversible), req.ConfirmIrreversible...)
	opts.Pause = req.Pause
	opts.OnEvent = req.OnEvent
	if tables := deployBackfillTables(p, req.ThroughDeploy); len(tables) > 0 && !b.NoThrottle && opts.Pacer == nil {
		cfg := b.Throttle
		if opts.BatchSize > 0 {
			cfg.InitialBatch = opts.BatchSize
		}
		feed, stop, err := monitor.StartSignalFeed(ctx, b.url, tables, monitor.Options{Interval: 250 * time.Millisecond})
		switch {
		case err == nil:
			defer stop()
			opts.Pacer = db.NewAdaptivePacer(cfg, feed.Signals)
		case errors.Is(err, monitor.ErrUnknownTable):
			opts.Pacer = db.NewAdaptivePacer(cfg, nil)
		default:
			return nil, err
		}
	}
	e, err := db.Open(ctx, b.url, p, opts)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	return e.Apply(ctx)
}

// deployBackfillTables lists the tables of the backfills in deploys up to
// through (all when 0).
func deployBackfillTables(p *plans.Plan, through int) []string {
	var out []string
	n := 0
	for _, ph := range p.Phases {
		for _, d := range ph.Deploys {
			n++
			if through > 0 && n > through {
				return out
			}
			for _, s := range d.Steps {
				if s.Backfill != nil && !slices.Contains(out, s.Backfill.Table) {
					out = append(out, s.Backfill.Table)
				}
			}
		}
	}
	return out
}
