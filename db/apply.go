package db

// The apply engine steps a plan through a live database.
//
// Crash safety rests on three rules, each simple enough to prove:
//
//   - A transactional step's statements and the update marking it done run
//     in one transaction (with SET LOCAL lock_timeout and
//     statement_timeout). A committed step is therefore never run twice,
//     and an uncommitted one left nothing behind.
//   - A non-transactional step (CREATE/DROP INDEX CONCURRENTLY, ALTER TYPE
//     ... ADD VALUE) is marked running before it starts; each of its
//     statements first asks the catalog whether its work is already there
//     (pg_index.indisvalid, pg_enum): a valid index is kept, an INVALID one
//     left by an interrupted build is dropped concurrently and built again,
//     an enum label present is not added again.
//   - A backfill's progress is its checkpoint (the last key done), written
//     in each batch's own transaction.
//
// Two operators never run at once: the engine holds session advisory locks
// on the plan and on every table the plan touches for as long as it runs.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/cutover/cutover/plans"
)

// DefaultObserve is the default observation window of the usage check: a
// removed name must have been unused for this long (since the application
// release that stopped using it) before the step that removes it runs. Ten
// minutes covers connection pools recycling, retries and jobs that run every
// few minutes; use more (an hour, a day) when weekly or nightly jobs may
// still use the old name.
const DefaultObserve = 10 * time.Minute

// DefaultBatchSize is the number of keys a backfill batch covers.
const DefaultBatchSize = 1000

// ApplyOptions configure an apply or rollback.
type ApplyOptions struct {
	// Through stops after the last deploy of this phase; "" runs the whole
	// plan.
	Through plans.PhaseName
	// ConfirmApps confirms application releases without stopping (--yes).
	ConfirmApps bool
	// ThroughDeploy, when positive, stops after the deploy with this
	// 1-based number (the TUI runs one deploy per key press); the outcome
	// is "through". Apply only.
	ThroughDeploy int
	// ConfirmApp, when positive, confirms the application release with
	// this deploy number: the operator confirmed its checklist in the TUI.
	// Apply only.
	ConfirmApp int
	// ConfirmIrreversible lists the tables whose irreversible steps may
	// run (--confirm-irreversible), qualified (public.customer) or not, or
	// the ids of irreversible steps that lock no table (ADD VALUE).
	ConfirmIrreversible []string
	// Observe is the usage check's observation window; 0 checks once.
	Observe time.Duration
	// NoUsageCheck skips the usage check before removals.
	NoUsageCheck bool
	// SkipTriggers makes backfill batches skip the table's triggers
	// (session_replication_role = replica); the default fires them.
	SkipTriggers bool
	// LockTimeout is the lock_timeout of every statement.
	LockTimeout time.Duration
	// MaxAttempts and MaxRetryTime bound the retries of one step (or one
	// backfill batch) on lock conflicts.
	MaxAttempts  int
	MaxRetryTime time.Duration
	// BatchSize is the backfill batch size (keys per batch); Pacer, when
	// set, decides instead.
	BatchSize int
	Pacer     Pacer
	// BackfillWorkers is how many sessions run a keyed backfill's batches
	// at once, over disjoint ranges of its key (--backfill-workers; 0
	// means DefaultBackfillWorkers; a table without a key is always walked
	// by one). A backfill session competes for CPU with the application's:
	// on the benchmark's 2-core server with 8 busy pgbench clients one
	// session gets a small share of it, and each session's batches are CPU
	// the application's queries wait behind. 6 is the default: on the
	// benchmark (docs/benchmarks.md has the sweep) fewer workers made the
	// plan slower without making the workload's p99 much better, while
	// the time is what the worker count buys. The throttle governs the
	// workers together and runs fewer while the application suffers.
	BackfillWorkers int
	// BatchGap is the idle time each backfill worker leaves after each
	// batch (--batch-gap; 0 means none), so that the application's
	// queries find a free core between two batches. Negative means
	// DefaultBatchGap.
	BatchGap time.Duration
	// Pause, when set, pauses backfills between batches (SIGINT in
	// headless mode).
	Pause *PauseSwitch
	// OnEvent receives every event, in order, from the engine's goroutine.
	OnEvent func(ApplyEvent)

	// hook is the tests' kill switch (see export_apply_test.go).
	hook hookFunc
	// clientBatches makes keyed backfills send every batch from the
	// client instead of running the server-side loop (backfill_loop.go):
	// the tests that kill the engine at every batch use it.
	clientBatches bool
}

func (o *ApplyOptions) setDefaults() {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxRetryTime <= 0 {
		o.MaxRetryTime = DefaultMaxRetryTime
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.BackfillWorkers <= 0 {
		o.BackfillWorkers = DefaultBackfillWorkers
	}
	if o.BatchGap < 0 {
		o.BatchGap = DefaultBatchGap
	}
	if o.Observe < 0 {
		o.Observe = 0
	}
}

// ErrorKind classifies why an apply, rollback or status stopped.
type ErrorKind int

const (
	// Failed: a step failed, a gate did not pass, the usage check found
	// use, or retries ran out. The state says where; apply resumes.
	Failed ErrorKind = iota + 1
	// Refused: nothing (more) was done because of the input: a plan that
	// does not match the run, a missing confirmation, a privilege missing.
	Refused
	// Busy: another session holds the plan's or a table's lock.
	Busy
	// Interrupted: the context was cancelled (Ctrl-C); apply resumes.
	Interrupted
)

// ApplyError is an apply, rollback or status failure explained in one line.
type ApplyError struct {
	Kind ErrorKind
	Msg  string
	Err  error
}

func (e *ApplyError) Error() string { return e.Msg }
func (e *ApplyError) Unwrap() error { return e.Err }

func refused(format string, args ...any) error {
	return &ApplyError{Kind: Refused, Msg: fmt.Sprintf(format, args...)}
}

// Outcome is how an apply or rollback ended without error.
type Outcome struct {
	// Status: "done" (every step of the plan is done, or rolled back),
	// "waiting" (for an application release), "through" (stopped after
	// --through), "nothing" (no run to roll back).
	Status string
	// Waiting is the release the run waits for.
	Waiting *plans.Deploy
	// WaitingDeploy is its 1-based deploy number.
	WaitingDeploy int
}

// Engine applies or rolls back one plan on one database.
type Engine struct {
	conn  *pgx.Conn // holds the advisory locks; runs everything
	watch *pgx.Conn // samples lock waits of conn's statements
	where string
	plan  *plans.Plan
	opts  ApplyOptions

	planID string
	hash   string
	user   string
	host   string
	pid    uint32

	run   *Run
	steps map[string]*StepState
	apps  map[int]*AppRelease

	lastBlockers string
	killFlag     atomic.Bool
	// killMu guards killConns: the backfill workers' sessions, which the
	// kill switch closes too.
	killMu    sync.Mutex
	killConns []*pgx.Conn
}

// PlanID is the id of a plan: the SHA-256 of its input text. Two plans of
// the same input are the same change; their content hash tells whether
// they are the same plan.
func PlanID(p *plans.Plan) string {
	sum := sha256.Sum256([]byte(p.Input))
	return hex.EncodeToString(sum[:])
}

// Open connects to the database (dbURL as for Connect), creates the state
// schema on first use and takes the advisory locks of the plan and its
// tables. Errors are *ConnectError or *ApplyError.
func Open(ctx context.Context, dbURL string, p *plans.Plan, opts ApplyOptions) (*Engine, error) {
	opts.setDefaults()
	if err := checkPlan(p); err != nil {
		return nil, err
	}
	if opts.Through != "" && phaseIndex(opts.Through) < 0 {
		return nil, refused("unknown --through %q: use expand, migrate or contract", opts.Through)
	}
	e := &Engine{plan: p, opts: opts, planID: PlanID(p), hash: p.Hash(), host: clientHost()}
	var err error
	if e.conn, err = connectEngine(ctx, dbURL, "cutover"); err != nil {
		return nil, err
	}
	e.where = Describe(&e.conn.Config().Config)
	if e.watch, err = connectEngine(ctx, dbURL, "cutover lock watch"); err != nil {
		e.conn.Close(context.Background())
		return nil, err
	}
	if err := e.setup(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// connectEngine connects like Connect, but a cancelled context cancels the
// running statement (a cancel request) instead of closing the connection,
// so that the state can still be written after Ctrl-C.
func connectEngine(ctx context.Context, dbURL, appName string) (*pgx.Conn, error) {
	connString, from := ConnString(dbURL)
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, &ConnectError{Kind: BadConnString, Msg: badConnStringMsg(connString, from, err)}
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = ConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = appName
	}
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 10 * time.Second}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(cfg, connString, err)
	}
	return conn, nil
}

func (e *Engine) setup(ctx context.Context) error {
	e.pid = e.conn.PgConn().PID()
	// Keys of a backfill checkpoint are kept as text; a fixed DateStyle
	// reads them back the same way in every session. A session whose
	// client is gone (cutover killed) stops within a second, so an
	// interrupted CREATE INDEX CONCURRENTLY does not run on unseen and a
	// resumed run does not wait for its locks.
	for _, set := range []string{`SET DateStyle = 'ISO, YMD'`, `SET IntervalStyle = 'postgres'`} {
		if _, err := e.conn.Exec(ctx, set); err != nil {
			return err
		}
	}
	if v := e.conn.PgConn().ParameterStatus("server_version"); !strings.HasPrefix(v, "9.") && !strings.HasPrefix(v, "10") &&
		!strings.HasPrefix(v, "11") && !strings.HasPrefix(v, "12") && !strings.HasPrefix(v, "13") {
		if _, err := e.conn.Exec(ctx, `SET client_connection_check_interval = '1s'`); err != nil {
			return err
		}
	}
	if err := e.conn.QueryRow(ctx, `SELECT current_user`).Scan(&e.user); err != nil {
		return err
	}
	if err := ensureState(ctx, e.conn); err != nil {
		return &ApplyError{Kind: Refused, Msg: err.Error(), Err: err}
	}
	return e.lock(ctx)
}

// Close releases the locks and the connections.
func (e *Engine) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if e.watch != nil {
		e.watch.Close(ctx)
	}
	if e.conn != nil {
		// Release the advisory locks before closing: the server drops a
		// closed session's locks only once its backend has exited, and an
		// apply started right after this one (the TUI's next deploy) would
		// find them still held.
		if !e.conn.IsClosed() {
			e.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
		}
		e.conn.Close(ctx)
	}
}

// Where names the database ("host:port/dbname").
func (e *Engine) Where() string { return e.where }

// stateCtx is a context for writing state after ctx was cancelled.
func stateCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// deployRef is one deploy of the plan in order.
type deployRef struct {
	number int // 1-based, as in the runbook
	phase  plans.PhaseName
	deploy *plans.Deploy
}

func (e *Engine) deploys() []deployRef {
	var out []deployRef
	n := 0
	for pi := range e.plan.Phases {
		ph := &e.plan.Phases[pi]
		for di := range ph.Deploys {
			n++
			out = append(out, deployRef{number: n, phase: ph.Name, deploy: &ph.Deploys[di]})
		}
	}
	return out
}

// stepRef locates a step for the engine.
type stepRef struct {
	step   *plans.Step
	phase  plans.PhaseName
	deploy int
	pos    int // position among all steps, from 1
}

func (e *Engine) stepRefs() []stepRef {
	var out []stepRef
	for _, d := range e.deploys() {
		for si := range d.deploy.Steps {
			out = append(out, stepRef{step: &d.deploy.Steps[si], phase: d.phase, deploy: d.number, pos: len(out) + 1})
		}
	}
	return out
}

func (r stepRef) subject(what string) retrySubject {
	return retrySubject{stepID: r.step.ID, phase: r.phase, deploy: r.deploy, what: what}
}

// Apply runs the plan from where its run stands: it resumes an interrupted
// run, confirms the application release a previous run stopped at, and
// stops at the next application release (unless ConfirmApps), at the end
// of opts.Through, or at the end of the plan.
func (e *Engine) Apply(ctx context.Context) (out *Outcome, err error) {
	if err := e.startRun(ctx); err != nil {
		return nil, err
	}
	defer func() { err = e.finishRun(ctx, out, err) }()
	if err := e.checkSkipTriggers(ctx); err != nil {
		return nil, err
	}

	throughIdx := len(plans.PhaseOrder)
	if e.opts.Through != "" {
		throughIdx = phaseIndex(e.opts.Through)
	}
	for _, d := range e.deploys() {
		if phaseIndex(d.phase) > throughIdx {
			e.emit(ApplyEvent{Kind: EventFinished, Message: fmt.Sprintf("stopped after the %s phase (--through %s); run apply again to go on", e.opts.Through, e.opts.Through)})
			return &Outcome{Status: "through"}, nil
		}
		if e.opts.ThroughDeploy > 0 && d.number > e.opts.ThroughDeploy {
			e.emit(ApplyEvent{Kind: EventFinished, Deploy: e.opts.ThroughDeploy, Message: fmt.Sprintf("stopped after deploy %d, as asked", e.opts.ThroughDeploy)})
			return &Outcome{Status: "through"}, nil
		}
		if d.deploy.Kind == plans.App {
			waiting, err := e.appRelease(ctx, d)
			if err != nil || waiting {
				if waiting {
					return &Outcome{Status: "waiting", Waiting: d.deploy, WaitingDeploy: d.number}, nil
				}
				return nil, err
			}
			continue
		}
		for _, ref := range e.stepRefs() {
			if ref.deploy != d.number {
				continue
			}
			if err := e.applyStep(ctx, ref); err != nil {
				return nil, err
			}
		}
	}
	e.emit(ApplyEvent{Kind: EventFinished, Message: fmt.Sprintf("plan applied: all %d steps done", len(e.stepRefs()))})
	return &Outcome{Status: "done"}, nil
}

// startRun creates the run, or loads it and checks it is this plan's.
func (e *Engine) startRun(ctx context.Context) error {
	run, err := loadRun(ctx, e.conn, e.planID)
	if err != nil {
		return err
	}
	if run != nil && run.Hash != e.hash {
		if err := e.replaceable(ctx, run); err != nil {
			return err
		}
		run = nil
	}
	if run == nil {
		if err := e.createRun(ctx); err != nil {
			return err
		}
		e.emit(ApplyEvent{Kind: EventRun, Message: fmt.Sprintf("new run of plan %s (content %s) on %s, by %s from %s",
			short(e.planID), short(e.hash), e.where, e.user, e.host)})
	}
	if err := e.reload(ctx); err != nil {
		return err
	}
	if run != nil {
		done := 0
		for _, s := range e.steps {
			if s.Status == "done" {
				done++
			}
		}
		verb := "resuming"
		if run.Status == "rolled back" {
			verb = "applying again, after its rollback,"
		}
		e.emit(ApplyEvent{Kind: EventRun, Message: fmt.Sprintf("%s plan %s on %s: %d of %d steps done; run started by %s from %s at %s (status %s)",
			verb, short(e.planID), e.where, done, len(e.steps), run.StartedBy, run.ClientHost, run.StartedAt.Format(time.RFC3339), run.Status)})
	}
	// Applying again cancels a rollback that was waiting for its release.
	// The plan is stored with the run: a run in progress resumes from the
	// database alone (RunsInProgress).
	encoded, err := plans.Encode(e.plan)
	if err != nil {
		return err
	}
	_, err = e.conn.Exec(ctx, `UPDATE cutover.runs SET status = 'running', error = NULL, finished_at = NULL, updated_at = clock_timestamp(),
		rollback_announced_at = NULL, plan = $2::text::jsonb WHERE plan_id = $1`, e.planID, string(encoded))
	return err
}

// replaceable refuses a plan whose run in this database has another
// content hash, unless that run changed nothing (never started or fully
// rolled back); then the run is reset for the new content.
func (e *Engine) replaceable(ctx context.Context, run *Run) error {
	var active int
	if err := e.conn.QueryRow(ctx, `SELECT count(*) FROM cutover.steps WHERE plan_id = $1 AND status IN ('running', 'done', 'failed')`, e.planID).Scan(&active); err != nil {
		return err
	}
	var apps int
	if err := e.conn.QueryRow(ctx, `SELECT count(*) FROM cutover.app_releases WHERE plan_id = $1 AND confirmed_at IS NOT NULL`, e.planID).Scan(&apps); err != nil {
		return err
	}
	if active > 0 || apps > 0 {
		return refused("this database has a run of a different plan for the same change (plan %s: content %s there, %s in this file; started by %s at %s, status %s): apply the plan file that run used, or roll that run back first with it",
			short(e.planID), short(run.Hash), short(e.hash), run.StartedBy, run.StartedAt.Format(time.RFC3339), run.Status)
	}
	_, err := e.conn.Exec(ctx, `DELETE FROM cutover.steps WHERE plan_id = $1`, e.planID)
	if err == nil {
		_, err = e.conn.Exec(ctx, `UPDATE cutover.runs SET plan_hash = $2, input = $3 WHERE plan_id = $1`, e.planID, e.hash, e.plan.Input)
	}
	if err == nil {
		err = e.note(ctx, "", "replaced", fmt.Sprintf("plan content %s replaced by %s (the earlier run had changed nothing)", short(run.Hash), short(e.hash)))
	}
	return err
}

func (e *Engine) createRun(ctx context.Context) error {
	tx, err := e.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO cutover.runs (plan_id, plan_hash, input, status, started_by, client_addr, client_host)
		VALUES ($1, $2, $3, 'running', current_user, inet_client_addr(), $4)
		ON CONFLICT (plan_id) DO UPDATE SET plan_hash = excluded.plan_hash, status = 'running', started_by = excluded.started_by,
			client_addr = excluded.client_addr, client_host = excluded.client_host, started_at = now(), updated_at = now(), finished_at = NULL, error = NULL,
			rollback_announced_at = NULL, rollback_confirmed_at = NULL, rollback_confirmed_by = NULL`,
		e.planID, e.hash, e.plan.Input, e.host); err != nil {
		return fmt.Errorf("recording the run: %w", err)
	}
	for _, r := range e.stepRefs() {
		if _, err := tx.Exec(ctx, `INSERT INTO cutover.steps (plan_id, step_id, position, phase) VALUES ($1, $2, $3, $4)
			ON CONFLICT (plan_id, step_id) DO NOTHING`, e.planID, r.step.ID, r.pos, string(r.phase)); err != nil {
			return err
		}
	}
	if e.needsStartBaseline() {
		if err := takeBaseline(ctx, tx.Conn(), e.planID, 0); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// reload reads the state of the run.
func (e *Engine) reload(ctx context.Context) error {
	var err error
	if e.run, err = loadRun(ctx, e.conn, e.planID); err != nil {
		return err
	}
	if e.steps, err = loadSteps(ctx, e.conn, e.planID); err != nil {
		return err
	}
	// A step added to the plan (a run reset after a replaced plan) gets
	// its row here.
	for _, r := range e.stepRefs() {
		if e.steps[r.step.ID] == nil {
			if _, err := e.conn.Exec(ctx, `INSERT INTO cutover.steps (plan_id, step_id, position, phase) VALUES ($1, $2, $3, $4)
				ON CONFLICT DO NOTHING`, e.planID, r.step.ID, r.pos, string(r.phase)); err != nil {
				return err
			}
			e.steps[r.step.ID] = &StepState{ID: r.step.ID, Position: r.pos, Phase: string(r.phase), Status: "pending"}
		}
	}
	e.apps, err = loadAppReleases(ctx, e.conn, e.planID)
	return err
}

// finishRun records how the run ended.
func (e *Engine) finishRun(ctx context.Context, out *Outcome, err error) error {
	if e.killed() {
		return errKilled
	}
	sctx, cancel := stateCtx(ctx)
	defer cancel()
	status, msg := "stopped", ""
	switch {
	case err != nil && ctx.Err() != nil:
		err = &ApplyError{Kind: Interrupted, Msg: "interrupted; the database is consistent: run apply again to resume", Err: err}
		msg = "interrupted"
	case err != nil:
		var ae *ApplyError
		if errors.As(err, &ae) && ae.Kind == Refused {
			status = "stopped"
		} else {
			status = "failed"
		}
		msg = err.Error()
	case out.Status == "waiting":
		status = "waiting"
	case out.Status == "done":
		status = "done"
	}
	var errText *string
	if msg != "" {
		errText = &msg
	}
	if _, werr := e.conn.Exec(sctx, `UPDATE cutover.runs SET status = $2, error = $3, updated_at = clock_timestamp(),
		finished_at = CASE WHEN $2 = 'done' THEN clock_timestamp() END WHERE plan_id = $1`, e.planID, status, errText); werr != nil && err == nil {
		err = werr
	}
	return err
}

// applyStep runs one step unless the state says it is done.
func (e *Engine) applyStep(ctx context.Context, ref stepRef) error {
	s := ref.step
	st := e.steps[s.ID]
	if err := e.hook(ctx, "step-start", s.ID, 0); err != nil {
		return err
	}
	if st.Status == "done" {
		if s.Gate == nil || st.Gate == "passed" {
			return nil
		}
		return e.runGate(ctx, ref)
	}
	if s.Irreversible && !e.irreversibleConfirmed(s) {
		name := s.Table
		if name == "" {
			name = s.ID
		}
		return refused("step %s is irreversible (%s): to run it, pass --confirm-irreversible %s", s.ID, s.IrreversibleReason, name)
	}
	if s.Removes != nil && !e.opts.NoUsageCheck {
		if err := e.usageCheck(ctx, ref); err != nil {
			return err
		}
	}
	if s.Irreversible {
		msg := fmt.Sprintf("irreversible step confirmed with --confirm-irreversible: %s", s.IrreversibleReason)
		if err := e.note(ctx, s.ID, "irreversible", msg); err != nil {
			return err
		}
		e.emit(ApplyEvent{Kind: EventNotice, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy, Message: msg})
	}
	if st.Status == "running" {
		if err := e.markInterrupted(ctx, s.ID); err != nil {
			return err
		}
		e.emit(ApplyEvent{Kind: EventRepair, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy,
			Message: "was interrupted; resuming it (its work is checked against the catalog first)"})
	}
	lock := string(s.Lock)
	if s.Table != "" {
		lock += " on " + s.Table
	}
	e.emit(ApplyEvent{Kind: EventStepStarted, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy, Message: fmt.Sprintf("start: %s (%s)", s.Summary, lock)})
	start := time.Now()
	var err error
	switch {
	case s.Backfill != nil:
		err = e.runBackfill(ctx, ref)
	case s.Transactional:
		err = e.withRetry(ctx, ref.subject("step"), func(ctx context.Context, n int) error { return e.txStep(ctx, ref, n) })
	default:
		err = e.withRetry(ctx, ref.subject("step"), func(ctx context.Context, n int) error { return e.nonTxStep(ctx, ref, n) })
	}
	if err != nil {
		return e.stepFailed(ctx, ref, err)
	}
	st.Status = "done"
	e.emit(ApplyEvent{Kind: EventStepDone, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy, Duration: time.Since(start),
		Message: fmt.Sprintf("done in %s (%s)", roundDur(time.Since(start)), plural(int64(st.Attempts), "attempt"))})
	if err := e.hook(ctx, "step-committed", s.ID, 0); err != nil {
		return err
	}
	if s.Gate != nil {
		return e.runGate(ctx, ref)
	}
	return nil
}

// stepFailed records a failed step and returns the error to stop with.
func (e *Engine) stepFailed(ctx context.Context, ref stepRef, err error) error {
	if e.killed() {
		return errKilled
	}
	sctx, cancel := stateCtx(ctx)
	defer cancel()
	status := "failed"
	if ctx.Err() != nil {
		// Interrupted: a transactional step left nothing; the others are
		// checked against the catalog when resumed.
		status = "pending"
		if !ref.step.Transactional || ref.step.Backfill != nil {
			status = "running"
		}
	}
	msg := oneLine(err.Error())
	if ctx.Err() != nil {
		msg = "interrupted"
	}
	if _, werr := e.conn.Exec(sctx, `UPDATE cutover.steps SET status = $3, error = $4, finished_at = clock_timestamp() WHERE plan_id = $1 AND step_id = $2`,
		e.planID, ref.step.ID, status, msg); werr != nil {
		return errors.Join(err, werr)
	}
	if ctx.Err() != nil {
		return err
	}
	e.emit(ApplyEvent{Kind: EventStepFailed, StepID: ref.step.ID, Phase: ref.phase, Deploy: ref.deploy, Err: err, Message: "failed: " + msg})
	var ae *ApplyError
	if errors.As(err, &ae) {
		return err
	}
	return &ApplyError{Kind: Failed, Msg: fmt.Sprintf("step %s failed: %s; fix the cause and run apply again to resume (cutover status shows the state)", ref.step.ID, msg), Err: err}
}

// markRunning records the start of an attempt.
func (e *Engine) markRunning(ctx context.Context, ref stepRef, n int) (attempt int, err error) {
	st := e.steps[ref.step.ID]
	st.Attempts++
	st.Status = "running"
	_, err = e.conn.Exec(ctx, `WITH s AS (
			UPDATE cutover.steps SET status = 'running', attempts = $3, error = NULL,
				started_at = CASE WHEN $4 OR started_at IS NULL THEN clock_timestamp() ELSE started_at END
			WHERE plan_id = $1 AND step_id = $2)
		UPDATE cutover.runs SET current_step = $2, updated_at = clock_timestamp() WHERE plan_id = $1`,
		e.planID, ref.step.ID, st.Attempts, n == 1)
	return st.Attempts, err
}

// stepDoneSQL marks a step done; it runs in the step's own transaction for
// transactional steps.
const stepDoneSQL = `UPDATE cutover.steps SET status = 'done', error = NULL, finished_at = clock_timestamp(),
	duration = clock_timestamp() - started_at WHERE plan_id = $1 AND step_id = $2`

// txStep runs one attempt of a transactional step: its statements and the
// state update in one transaction.
func (e *Engine) txStep(ctx context.Context, ref stepRef, n int) error {
	attempt, err := e.markRunning(ctx, ref, n)
	if err != nil {
		return err
	}
	if err := e.hook(ctx, "step-running", ref.step.ID, 0); err != nil {
		return err
	}
	stmts, err := splitSQL(ref.step.SQL)
	if err != nil {
		return err
	}
	return e.runInTx(ctx, txWork{
		stepID: ref.step.ID, action: "apply", attempt: attempt, stmts: stmts,
		statementTimeout: stepStatementTimeout(ref.step, stmts),
		finish: func(b *pgx.Batch) {
			b.Queue(stepDoneSQL, e.planID, ref.step.ID)
		},
	})
}

// nonTxStep runs one attempt of a step that must run outside a transaction
// block, statement by statement, each checked against the catalog first.
func (e *Engine) nonTxStep(ctx context.Context, ref stepRef, n int) error {
	attempt, err := e.markRunning(ctx, ref, n)
	if err != nil {
		return err
	}
	if err := e.hook(ctx, "step-running", ref.step.ID, 0); err != nil {
		return err
	}
	stmts, err := splitSQL(ref.step.SQL)
	if err != nil {
		return err
	}
	if err := e.runOutsideTx(ctx, ref.step.ID, "apply", attempt, stmts, stepStatementTimeout(ref.step, stmts), ref); err != nil {
		return err
	}
	_, err = e.conn.Exec(ctx, stepDoneSQL, e.planID, ref.step.ID)
	return err
}

// runGate runs a step's gate in a read-only transaction and records it.
func (e *Engine) runGate(ctx context.Context, ref stepRef) error {
	g := ref.step.Gate
	var value string
	var passed bool
	err := e.withRetry(ctx, ref.subject("gate"), func(ctx context.Context, n int) error {
		var err error
		value, passed, err = e.gateOnce(ctx, ref.step.ID, g.SQL, n)
		return err
	})
	if err != nil {
		return e.stepFailed(ctx, ref, fmt.Errorf("gate %q: %w", g.Description, err))
	}
	result := "passed"
	if !passed {
		result = "failed"
	}
	if _, err := e.conn.Exec(ctx, `UPDATE cutover.steps SET gate = $3 WHERE plan_id = $1 AND step_id = $2`, e.planID, ref.step.ID, result); err != nil {
		return err
	}
	e.steps[ref.step.ID].Gate = result
	e.emit(ApplyEvent{Kind: EventGate, StepID: ref.step.ID, Phase: ref.phase, Deploy: ref.deploy,
		Message: fmt.Sprintf("gate %s: %s (returned %s)", result, g.Description, value),
		Gate:    &GateResult{Description: g.Description, Passed: passed, Value: value}})
	if !passed {
		return &ApplyError{Kind: Failed, Msg: fmt.Sprintf("gate of step %s did not pass: %s (it returned %s, want 0 or true); find out why, then run apply again (the gate is checked again)", ref.step.ID, g.Description, value)}
	}
	return e.hook(ctx, "gate-done", ref.step.ID, 0)
}

// gateOnce evaluates a gate: one row, one value, passing when 0 or true.
func (e *Engine) gateOnce(ctx context.Context, stepID, sql string, attempt int) (string, bool, error) {
	if _, err := e.conn.Exec(ctx, "BEGIN READ ONLY"); err != nil {
		return "", false, err
	}
	defer e.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	if _, err := e.conn.Exec(ctx, `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', '0', true)`, pgDuration(e.opts.LockTimeout)); err != nil {
		return "", false, err
	}
	start := time.Now()
	res, err := e.conn.PgConn().Exec(ctx, sql).ReadAll()
	a := auditEntry{statement: sql, started: start, duration: time.Since(start), outcome: "ok"}
	value := ""
	if err == nil {
		if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
			err = fmt.Errorf("the gate must return one row with one value")
		} else if res[0].Rows[0][0] == nil {
			value = "NULL"
		} else {
			value = string(res[0].Rows[0][0])
		}
	}
	if err != nil {
		a.outcome, a.sqlstate, a.err = "failed", sqlState(err), oneLine(err.Error())
	}
	e.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	if werr := e.insertAudit(ctx, stepID, "gate", attempt, pgDuration(e.opts.LockTimeout), "0", []auditEntry{a}); werr != nil && err == nil {
		err = werr
	}
	return value, gateValuePasses(value), err
}

func gateValuePasses(v string) bool {
	switch v {
	case "t", "true":
		return true
	case "f", "false", "NULL", "":
		return false
	}
	for _, r := range v {
		if r != '0' && r != '.' && r != '-' {
			return false
		}
	}
	return true
}

// irreversibleConfirmed reports whether --confirm-irreversible names the
// step's table.
func (e *Engine) irreversibleConfirmed(s *plans.Step) bool {
	for _, t := range e.opts.ConfirmIrreversible {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if t == s.ID || (s.Table != "" && (t == s.Table || (!strings.Contains(t, ".") && strings.HasSuffix(s.Table, "."+t)))) {
			return true
		}
	}
	return false
}

// appRelease handles an application release: confirmed already, confirmed
// now (--yes, or a re-run after the release was announced), or announced
// and waited for.
func (e *Engine) appRelease(ctx context.Context, d deployRef) (waiting bool, err error) {
	a := e.apps[d.number]
	if a != nil && a.ConfirmedAt != nil {
		return false, nil
	}
	if err := e.hook(ctx, "app-start", "", d.number); err != nil {
		return false, err
	}
	how := ""
	switch {
	case e.opts.ConfirmApps:
		how = "confirmed with --yes"
	case e.opts.ConfirmApp == d.number:
		how = "confirmed in the terminal UI (its checklist acknowledged)"
	case a != nil:
		how = fmt.Sprintf("confirmed by running apply again (announced at %s)", a.AnnouncedAt.Format(time.RFC3339))
	}
	if how == "" {
		if _, err := e.conn.Exec(ctx, `INSERT INTO cutover.app_releases (plan_id, deploy, title) VALUES ($1, $2, $3)
			ON CONFLICT (plan_id, deploy) DO NOTHING`, e.planID, d.number, d.deploy.Title); err != nil {
			return false, err
		}
		if _, err := e.conn.Exec(ctx, `UPDATE cutover.runs SET current_step = $2 WHERE plan_id = $1`, e.planID, fmt.Sprintf("deploy %d (application release)", d.number)); err != nil {
			return false, err
		}
		e.emit(ApplyEvent{Kind: EventWaitingForApp, Deploy: d.number, Phase: d.phase, Instructions: d.deploy.Instructions,
			Message: fmt.Sprintf("waiting for application release: %s; when it is deployed everywhere, run apply again (that confirms it) or pass --yes",
				d.deploy.Title)})
		return true, nil
	}
	tx, err := e.conn.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO cutover.app_releases (plan_id, deploy, title, confirmed_at, confirmed_by, confirmed_from)
		VALUES ($1, $2, $3, clock_timestamp(), current_user, $4)
		ON CONFLICT (plan_id, deploy) DO UPDATE SET confirmed_at = clock_timestamp(), confirmed_by = current_user, confirmed_from = $4`,
		e.planID, d.number, d.deploy.Title, e.host); err != nil {
		return false, err
	}
	if e.removalAfter(d.number) {
		if err := takeBaseline(ctx, tx.Conn(), e.planID, d.number); err != nil {
			return false, err
		}
	}
	msg := fmt.Sprintf("application release %q %s by %s on %s", d.deploy.Title, how, e.user, e.host)
	if _, err := tx.Exec(ctx, `INSERT INTO cutover.notes (plan_id, kind, message) VALUES ($1, 'app release', $2)`, e.planID, msg); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `UPDATE cutover.runs SET current_step = $2 WHERE plan_id = $1`, e.planID, fmt.Sprintf("deploy %d (application release confirmed)", d.number)); err != nil {
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return false, err
	}
	e.apps, err = loadAppReleases(ctx, e.conn, e.planID)
	if err != nil {
		return false, err
	}
	e.emit(ApplyEvent{Kind: EventAppConfirmed, Deploy: d.number, Phase: d.phase, Message: msg, App: e.apps[d.number]})
	return false, e.hook(ctx, "app-confirmed", "", d.number)
}

// removalAfter reports whether a step after deploy number n removes a name.
func (e *Engine) removalAfter(n int) bool {
	for _, r := range e.stepRefs() {
		if r.deploy > n && r.step.Removes != nil {
			return true
		}
	}
	return false
}

// needsStartBaseline reports whether a removal has no application release
// before it, so the run's start is its baseline.
func (e *Engine) needsStartBaseline() bool {
	for _, r := range e.stepRefs() {
		if r.step.Removes != nil && e.baselineDeploy(r) == 0 {
			return true
		}
	}
	return false
}

// baselineDeploy returns the number of the last application release before
// the step, 0 when there is none.
func (e *Engine) baselineDeploy(ref stepRef) int {
	last := 0
	for _, d := range e.deploys() {
		if d.number >= ref.deploy {
			break
		}
		if d.deploy.Kind == plans.App {
			last = d.number
		}
	}
	return last
}

// markInterrupted closes the audit rows of statements a dead run left
// running.
func (e *Engine) markInterrupted(ctx context.Context, stepID string) error {
	_, err := e.conn.Exec(ctx, `UPDATE cutover.statements SET outcome = 'interrupted' WHERE plan_id = $1 AND step_id = $2 AND outcome = 'running'`, e.planID, stepID)
	return err
}

// note records an event that is not a statement.
func (e *Engine) note(ctx context.Context, stepID, kind, msg string) error {
	var sid *string
	if stepID != "" {
		sid = &stepID
	}
	_, err := e.conn.Exec(ctx, `INSERT INTO cutover.notes (plan_id, step_id, kind, message) VALUES ($1, $2, $3, $4)`, e.planID, sid, kind, msg)
	return err
}

// checkPlan refuses a plan the engine cannot run safely: every SQL text must
// parse, steps must not control transactions, gates must be one query.
func checkPlan(p *plans.Plan) error {
	if strings.TrimSpace(p.Input) == "" {
		return refused("the plan has no input text, so it has no id: plan it again with cutover plan")
	}
	if err := p.Validate(); err != nil {
		return refused("%v", err)
	}
	for _, r := range p.Steps() {
		s := r.Step
		for what, sql := range map[string]string{"SQL": s.SQL, "rollback": s.Rollback} {
			if sql == "" {
				continue
			}
			stmts, err := splitSQL(sql)
			if err != nil {
				return refused("step %s: its %s does not parse: %v", s.ID, what, err)
			}
			for _, st := range stmts {
				if controlsTransaction(st) {
					return refused("step %s: its %s controls the transaction (%s); cutover runs each step in its own transaction", s.ID, what, shortSQL(st))
				}
			}
		}
		if s.Gate != nil {
			stmts, err := splitSQL(s.Gate.SQL)
			if err != nil || len(stmts) != 1 || !isSelect(stmts[0]) {
				return refused("step %s: its gate must be one SELECT", s.ID)
			}
		}
		if s.Backfill != nil {
			if _, err := backfillSQL(s.Backfill); err != nil {
				return refused("step %s: %v", s.ID, err)
			}
		}
	}
	return nil
}

func phaseIndex(n plans.PhaseName) int {
	return slices.Index(plans.PhaseOrder, n)
}

// pgDuration writes a duration as a PostgreSQL setting value in ms.
func pgDuration(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	ms := d.Milliseconds()
	if ms == 0 {
		ms = 1
	}
	if ms%1000 == 0 {
		return fmt.Sprintf("%ds", ms/1000)
	}
	return fmt.Sprintf("%dms", ms)
}
