package db

// The apply engine's state lives in the target database, in schema
// "cutover", so that it is exactly as durable as the changes it describes:
// a transactional step and the row saying it is done commit together.
//
// One run per plan and database: the plan id is the SHA-256 of the plan's
// input text, the content hash is plans.Hash. Every statement cutover
// executes is kept in cutover.statements (the audit trail), whatever its
// outcome.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// StateSchemaVersion is the version of the cutover schema this build writes.
// A newer version in the database is refused; an older one is upgraded in
// place (every change is additive: version 2 adds backfill_ranges, the
// statements' batch ranges and the runs' stored plans).
const StateSchemaVersion = 2

// stateDDL creates the state schema; every statement is idempotent so that
// it can run on every start. It runs under a transaction-level advisory lock
// so two first runs cannot race on CREATE.
var stateDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS cutover`,
	`COMMENT ON SCHEMA cutover IS 'state of cutover apply runs: do not edit by hand'`,
	`CREATE TABLE IF NOT EXISTS cutover.meta (
		key   text PRIMARY KEY,
		value text NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS cutover.runs (
		plan_id       text PRIMARY KEY,
		plan_hash     text NOT NULL,
		input         text NOT NULL,
		status        text NOT NULL CHECK (status IN ('running', 'waiting', 'stopped', 'failed', 'done', 'rolling back', 'rolled back')),
		current_step  text,
		started_by    name NOT NULL,
		client_addr   inet,
		client_host   text NOT NULL,
		started_at    timestamptz NOT NULL DEFAULT now(),
		updated_at    timestamptz NOT NULL DEFAULT now(),
		finished_at   timestamptz,
		error         text,
		rollback_announced_at timestamptz,
		rollback_confirmed_at timestamptz,
		rollback_confirmed_by name
	)`,
	// Version 2: the plan the run applies (plans.Encode), written each
	// time the engine starts or resumes the run, so that a run in
	// progress can be resumed from the database alone (its SQL no longer
	// plans the same way once its first steps changed the schema).
	`ALTER TABLE cutover.runs ADD COLUMN IF NOT EXISTS plan jsonb`,
	`CREATE TABLE IF NOT EXISTS cutover.steps (
		plan_id     text NOT NULL REFERENCES cutover.runs ON DELETE CASCADE,
		step_id     text NOT NULL,
		position    int NOT NULL,
		phase       text NOT NULL,
		status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed', 'rolled back')),
		gate        text CHECK (gate IN ('passed', 'failed')),
		attempts    int NOT NULL DEFAULT 0,
		started_at  timestamptz,
		finished_at timestamptz,
		duration    interval,
		error       text,
		PRIMARY KEY (plan_id, step_id)
	)`,
	`CREATE TABLE IF NOT EXISTS cutover.statements (
		id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		plan_id           text NOT NULL REFERENCES cutover.runs ON DELETE CASCADE,
		step_id           text,
		action            text NOT NULL,
		attempt           int NOT NULL,
		statement         text NOT NULL,
		args              text[],
		lock_timeout      text,
		statement_timeout text,
		started_at        timestamptz NOT NULL,
		duration_ms       double precision,
		lock_wait_ms      double precision,
		blocked_by        text,
		rows              bigint,
		outcome           text NOT NULL CHECK (outcome IN ('ok', 'failed', 'rolled back', 'running', 'interrupted')),
		sqlstate          text,
		error             text
	)`,
	`CREATE INDEX IF NOT EXISTS statements_plan_step ON cutover.statements (plan_id, step_id, id)`,
	// Version 2: a keyed backfill batch's key range (batch_lo, batch_hi],
	// NULL at the table's start or end (the batch statement finds its
	// upper key itself).
	`ALTER TABLE cutover.statements ADD COLUMN IF NOT EXISTS batch_lo text[], ADD COLUMN IF NOT EXISTS batch_hi text[]`,
	`CREATE TABLE IF NOT EXISTS cutover.backfill_checkpoints (
		plan_id    text NOT NULL REFERENCES cutover.runs ON DELETE CASCADE,
		step_id    text NOT NULL,
		last_key   text[],
		next_page  bigint,
		rows_done  bigint NOT NULL DEFAULT 0,
		batches    int NOT NULL DEFAULT 0,
		updated_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (plan_id, step_id)
	)`,
	// The key ranges of a parallel backfill (--backfill-workers): each
	// range (lo, hi] of key tuples (lo NULL: the table's start, hi NULL:
	// its end) has its own exact checkpoint (last_key, written in each
	// batch's transaction). The step's backfill_checkpoints row is the
	// parent: deleting it (rollback) deletes the ranges; the step's
	// totals are the sums of its ranges' (see loadCheckpoints).
	`CREATE TABLE IF NOT EXISTS cutover.backfill_ranges (
		plan_id    text NOT NULL,
		step_id    text NOT NULL,
		range_no   int NOT NULL,
		lo         text[],
		hi         text[],
		last_key   text[],
		rows_done  bigint NOT NULL DEFAULT 0,
		batches    int NOT NULL DEFAULT 0,
		done       boolean NOT NULL DEFAULT false,
		updated_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (plan_id, step_id, range_no),
		FOREIGN KEY (plan_id, step_id) REFERENCES cutover.backfill_checkpoints ON DELETE CASCADE
	)`,
	`CREATE TABLE IF NOT EXISTS cutover.app_releases (
		plan_id        text NOT NULL REFERENCES cutover.runs ON DELETE CASCADE,
		deploy         int NOT NULL,
		title          text NOT NULL,
		announced_at   timestamptz NOT NULL DEFAULT now(),
		confirmed_at   timestamptz,
		confirmed_by   name,
		confirmed_from text,
		PRIMARY KEY (plan_id, deploy)
	)`,
	`CREATE TABLE IF NOT EXISTS cutover.usage_baselines (
		plan_id    text NOT NULL REFERENCES cutover.runs ON DELETE CASCADE,
		deploy     int NOT NULL,
		taken_at   timestamptz NOT NULL DEFAULT now(),
		kind       text NOT NULL CHECK (kind IN ('statement', 'table', 'none', 'mark')),
		audit_mark bigint,
		userid     oid,
		queryid    bigint,
		relid      oid,
		calls      bigint,
		scans      bigint,
		tuples     bigint
	)`,
	`CREATE INDEX IF NOT EXISTS usage_baselines_plan ON cutover.usage_baselines (plan_id, deploy)`,
	`CREATE TABLE IF NOT EXISTS cutover.notes (
		id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		plan_id text NOT NULL REFERENCES cutover.runs ON DELETE CASCADE,
		at      timestamptz NOT NULL DEFAULT clock_timestamp(),
		step_id text,
		kind    text NOT NULL,
		message text NOT NULL
	)`,
}

// stateLockKey is the transaction advisory lock serializing the creation
// of the state schema.
const stateLockKey int64 = 0x6375746f76657200 // "cutover\0"

// ensureState creates or upgrades the cutover schema. It returns an error
// saying what privilege is missing when the role cannot create it.
func ensureState(ctx context.Context, conn *pgx.Conn) error {
	var version string
	var complete bool
	// complete: the state has the last column version 2 added (a version
	// 2 state made by an earlier build of this version may lack it).
	err := conn.QueryRow(ctx, `SELECT value, EXISTS (SELECT FROM pg_catalog.pg_attribute
			WHERE attrelid = to_regclass('cutover.runs') AND attname = 'plan' AND NOT attisdropped)
		FROM cutover.meta WHERE key = 'schema_version'`).Scan(&version, &complete)
	if err == nil {
		if err := checkStateVersion(version); err != nil {
			return err
		}
		if version == strconv.Itoa(StateSchemaVersion) && complete {
			return nil
		}
		// An older schema: the DDL below adds what is missing.
	}
	var pgErr *pgconn.PgError
	if err != nil && !errors.Is(err, pgx.ErrNoRows) && !(errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000")) {
		return fmt.Errorf("reading cutover's state schema: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, stateLockKey); err != nil {
		return err
	}
	for _, ddl := range stateDDL {
		if _, err := tx.Exec(ctx, ddl); err != nil {
			if errors.As(err, &pgErr) && pgErr.Code == "42501" {
				return fmt.Errorf("cannot create cutover's state schema \"cutover\" (%s): the role needs CREATE on the database, or create the schema for it once: CREATE SCHEMA cutover AUTHORIZATION <role>", pgErr.Message)
			}
			return fmt.Errorf("creating cutover's state schema: %w", err)
		}
	}
	// Upgrade an older version (never downgrade a newer one).
	if _, err := tx.Exec(ctx, `INSERT INTO cutover.meta (key, value) VALUES ('schema_version', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value
		WHERE cutover.meta.value::int < excluded.value::int`, strconv.Itoa(StateSchemaVersion)); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, `SELECT value FROM cutover.meta WHERE key = 'schema_version'`).Scan(&version); err != nil {
		return err
	}
	if err := checkStateVersion(version); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func checkStateVersion(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return fmt.Errorf("cutover.meta has schema_version %q: the cutover schema was not made by cutover", v)
	}
	if n > StateSchemaVersion {
		return fmt.Errorf("the cutover state schema is version %d, newer than this cutover understands (%d): use a newer cutover", n, StateSchemaVersion)
	}
	return nil
}

// stateExists reports whether the state schema exists, without creating it
// (status and export only read).
func stateExists(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, `SELECT to_regclass('cutover.runs') IS NOT NULL`).Scan(&ok)
	return ok, err
}

// Run is the state of one plan's application to a database.
type Run struct {
	PlanID      string
	Hash        string
	Input       string
	Status      string
	CurrentStep string
	StartedBy   string
	ClientAddr  string
	ClientHost  string
	StartedAt   time.Time
	UpdatedAt   time.Time
	FinishedAt  *time.Time
	Error       string

	RollbackAnnounced *time.Time
	RollbackConfirmed *time.Time
	RollbackBy        string
}

// StepState is what the state says about one step.
type StepState struct {
	ID         string
	Position   int
	Phase      string
	Status     string // pending, running, done, failed, rolled back
	Gate       string // "", passed, failed
	Attempts   int
	StartedAt  *time.Time
	FinishedAt *time.Time
	Duration   time.Duration
	Error      string
}

// AppRelease is an application release of the plan as the state records it.
type AppRelease struct {
	Deploy        int
	Title         string
	AnnouncedAt   time.Time
	ConfirmedAt   *time.Time
	ConfirmedBy   string
	ConfirmedFrom string
}

// Checkpoint is a backfill's progress.
type Checkpoint struct {
	StepID   string
	LastKey  []string
	NextPage *int64
	RowsDone int64
	Batches  int
	Updated  time.Time
}

// BackfillRange is one key range of a parallel backfill: keys in (Lo, Hi]
// (Lo nil: from the table's start; Hi nil: to its end), done up to LastKey
// (nil: nothing yet).
type BackfillRange struct {
	No       int
	Lo, Hi   []string
	LastKey  []string
	RowsDone int64
	Batches  int
	Done     bool
}

func loadRanges(ctx context.Context, conn *pgx.Conn, planID, stepID string) ([]*BackfillRange, error) {
	rows, err := conn.Query(ctx, `SELECT range_no, lo, hi, last_key, rows_done, batches, done
		FROM cutover.backfill_ranges WHERE plan_id = $1 AND step_id = $2 ORDER BY range_no`, planID, stepID)
	if err != nil {
		return nil, err
	}
	var out []*BackfillRange
	for rows.Next() {
		var r BackfillRange
		if err := rows.Scan(&r.No, &r.Lo, &r.Hi, &r.LastKey, &r.RowsDone, &r.Batches, &r.Done); err != nil {
			return nil, err
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

// AuditRow is one executed statement.
type AuditRow struct {
	ID               int64
	StepID           string
	Action           string
	Attempt          int
	Statement        string
	Args             []string
	LockTimeout      string
	StatementTimeout string
	StartedAt        time.Time
	Duration         *time.Duration
	LockWait         *time.Duration
	BlockedBy        string
	Rows             *int64
	Outcome          string
	SQLState         string
	Error            string
}

// Note is a recorded event that is not a statement: confirmations, usage
// checks, refusals.
type Note struct {
	At      time.Time
	StepID  string
	Kind    string
	Message string
}

const runColumns = `plan_id, plan_hash, input, status, coalesce(current_step, ''), started_by, coalesce(host(client_addr), ''), client_host,
	started_at, updated_at, finished_at, coalesce(error, ''), rollback_announced_at, rollback_confirmed_at, coalesce(rollback_confirmed_by, '')`

func scanRun(row pgx.Row) (*Run, error) {
	var r Run
	err := row.Scan(&r.PlanID, &r.Hash, &r.Input, &r.Status, &r.CurrentStep, &r.StartedBy, &r.ClientAddr, &r.ClientHost,
		&r.StartedAt, &r.UpdatedAt, &r.FinishedAt, &r.Error, &r.RollbackAnnounced, &r.RollbackConfirmed, &r.RollbackBy)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// loadRun returns the run of planID, nil when there is none.
func loadRun(ctx context.Context, conn *pgx.Conn, planID string) (*Run, error) {
	r, err := scanRun(conn.QueryRow(ctx, `SELECT `+runColumns+` FROM cutover.runs WHERE plan_id = $1`, planID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the run of plan %s: %w", short(planID), err)
	}
	return r, nil
}

func loadSteps(ctx context.Context, conn *pgx.Conn, planID string) (map[string]*StepState, error) {
	rows, err := conn.Query(ctx, `SELECT step_id, position, phase, status, coalesce(gate, ''), attempts, started_at, finished_at,
		coalesce(extract(epoch FROM duration), 0)::float8, coalesce(error, '') FROM cutover.steps WHERE plan_id = $1`, planID)
	if err != nil {
		return nil, err
	}
	out := map[string]*StepState{}
	for rows.Next() {
		var s StepState
		var secs float64
		if err := rows.Scan(&s.ID, &s.Position, &s.Phase, &s.Status, &s.Gate, &s.Attempts, &s.StartedAt, &s.FinishedAt, &secs, &s.Error); err != nil {
			return nil, err
		}
		s.Duration = time.Duration(secs * float64(time.Second))
		out[s.ID] = &s
	}
	return out, rows.Err()
}

func loadAppReleases(ctx context.Context, conn *pgx.Conn, planID string) (map[int]*AppRelease, error) {
	rows, err := conn.Query(ctx, `SELECT deploy, title, announced_at, confirmed_at, coalesce(confirmed_by, ''), coalesce(confirmed_from, '')
		FROM cutover.app_releases WHERE plan_id = $1`, planID)
	if err != nil {
		return nil, err
	}
	out := map[int]*AppRelease{}
	for rows.Next() {
		var a AppRelease
		if err := rows.Scan(&a.Deploy, &a.Title, &a.AnnouncedAt, &a.ConfirmedAt, &a.ConfirmedBy, &a.ConfirmedFrom); err != nil {
			return nil, err
		}
		out[a.Deploy] = &a
	}
	return out, rows.Err()
}

func loadCheckpoints(ctx context.Context, conn *pgx.Conn, planID string) (map[string]*Checkpoint, error) {
	// A keyed backfill's batches count in their ranges only (not in a row
	// that every worker would update in every batch): its totals are the
	// parent's (a walk before the ranges, from state version 1) plus
	// theirs.
	rows, err := conn.Query(ctx, `SELECT c.step_id, coalesce(c.last_key, '{}'), c.next_page,
			c.rows_done + coalesce(r.rows_done, 0), c.batches + coalesce(r.batches, 0), greatest(c.updated_at, r.updated_at)
		FROM cutover.backfill_checkpoints c
		LEFT JOIN LATERAL (SELECT sum(rows_done)::bigint AS rows_done, sum(batches)::int AS batches, max(updated_at) AS updated_at
			FROM cutover.backfill_ranges r WHERE r.plan_id = c.plan_id AND r.step_id = c.step_id) r ON true
		WHERE c.plan_id = $1`, planID)
	if err != nil {
		return nil, err
	}
	out := map[string]*Checkpoint{}
	for rows.Next() {
		var c Checkpoint
		if err := rows.Scan(&c.StepID, &c.LastKey, &c.NextPage, &c.RowsDone, &c.Batches, &c.Updated); err != nil {
			return nil, err
		}
		out[c.StepID] = &c
	}
	return out, rows.Err()
}

// LoadAudit returns every statement executed for the plan, in order.
func loadAudit(ctx context.Context, conn *pgx.Conn, planID string) ([]AuditRow, error) {
	rows, err := conn.Query(ctx, `SELECT id, coalesce(step_id, ''), action, attempt, statement, coalesce(args, '{}'),
		coalesce(lock_timeout, ''), coalesce(statement_timeout, ''), started_at, duration_ms, lock_wait_ms, coalesce(blocked_by, ''),
		rows, outcome, coalesce(sqlstate, ''), coalesce(error, '')
		FROM cutover.statements WHERE plan_id = $1 ORDER BY id`, planID)
	if err != nil {
		return nil, err
	}
	var out []AuditRow
	for rows.Next() {
		var a AuditRow
		var dur, wait *float64
		if err := rows.Scan(&a.ID, &a.StepID, &a.Action, &a.Attempt, &a.Statement, &a.Args, &a.LockTimeout, &a.StatementTimeout,
			&a.StartedAt, &dur, &wait, &a.BlockedBy, &a.Rows, &a.Outcome, &a.SQLState, &a.Error); err != nil {
			return nil, err
		}
		a.Duration, a.LockWait = msPtr(dur), msPtr(wait)
		out = append(out, a)
	}
	return out, rows.Err()
}

func loadNotes(ctx context.Context, conn *pgx.Conn, planID string) ([]Note, error) {
	rows, err := conn.Query(ctx, `SELECT at, coalesce(step_id, ''), kind, message FROM cutover.notes WHERE plan_id = $1 ORDER BY id`, planID)
	if err != nil {
		return nil, err
	}
	var out []Note
	for rows.Next() {
		var n Note
		if err := rows.Scan(&n.At, &n.StepID, &n.Kind, &n.Message); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func msPtr(ms *float64) *time.Duration {
	if ms == nil {
		return nil
	}
	d := time.Duration(*ms * float64(time.Millisecond))
	return &d
}

// clientHost names the machine cutover runs on, for the run's record.
func clientHost() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// short abbreviates a hash for people.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
