package db

// Session advisory locks keep two operators from applying at once: one on
// the plan (its id), one per table the plan touches, held by the engine's
// connection for as long as it runs. A second operator is told who holds
// them, from pg_locks and pg_stat_activity.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/cutover/cutover/plans"
)

// advisoryKey derives a lock key from a name; a collision only makes two
// unrelated runs wait for each other.
func advisoryKey(kind, name string) int64 {
	sum := sha256.Sum256([]byte("cutover " + kind + " " + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// lock takes the plan's lock, then each table's, in name order.
func (e *Engine) lock(ctx context.Context) error {
	type want struct{ kind, name string }
	wants := []want{{"plan", e.planID}}
	for _, t := range planTables(e.plan) {
		wants = append(wants, want{"table", t})
	}
	for _, w := range wants {
		key := advisoryKey(w.kind, w.name)
		ok, err := e.tryLock(ctx, key)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		holder, found := describeLockHolder(ctx, e, key)
		if !found {
			// The holder is gone already (a session that just ended
			// releases its locks as its backend exits): try once more.
			if ok, err = e.tryLock(ctx, key); err != nil {
				return err
			}
			if ok {
				continue
			}
		}
		e.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
		if w.kind == "plan" {
			msg := fmt.Sprintf("plan %s is being applied on %s by another session: %s", short(e.planID), e.where, holder)
			if run, err := loadRun(ctx, e.conn, e.planID); err == nil && run != nil {
				msg += fmt.Sprintf("; its run was started by %s from host %s at %s (status %s, at %s)", run.StartedBy, run.ClientHost,
					run.StartedAt.Format(time.RFC3339), run.Status, orDash(run.CurrentStep))
			}
			return &ApplyError{Kind: Busy, Msg: msg + ": wait for it to finish (cutover status shows where it is)"}
		}
		return &ApplyError{Kind: Busy, Msg: fmt.Sprintf("table %s is being changed by another cutover run on %s: %s: wait for it to finish", w.name, e.where, holder)}
	}
	return nil
}

// tryLock takes a session advisory lock if it is free.
func (e *Engine) tryLock(ctx context.Context, key int64) (bool, error) {
	var ok bool
	err := e.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok)
	return ok, err
}

// describeLockHolder names the session holding an advisory lock; found is
// false when no session holds it (any more).
func describeLockHolder(ctx context.Context, e *Engine, key int64) (holder string, found bool) {
	u := uint64(key)
	var (
		pid               int
		user, app, client string
		since             time.Time
		state             string
	)
	err := e.conn.QueryRow(ctx, `SELECT a.pid, coalesce(a.usename::text, '?'), coalesce(a.application_name, ''),
			coalesce(host(a.client_addr), 'local socket'), a.backend_start, coalesce(a.state, '')
		FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
			AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
		LIMIT 1`, int64(u>>32), int64(u&0xffffffff)).Scan(&pid, &user, &app, &client, &since, &state)
	if err != nil {
		return "(the holder could not be identified; it may just have finished: try again)", false
	}
	if app == "" {
		app = "(none)"
	}
	return fmt.Sprintf("pid %d, user %s, application %s, client %s, connected since %s, %s", pid, user, app, client, since.Format(time.RFC3339), state), true
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// planTables lists the tables a plan's steps lock or remove, sorted.
func planTables(p *plans.Plan) []string {
	var out []string
	for _, r := range p.Steps() {
		if r.Step.Table != "" {
			out = append(out, r.Step.Table)
		}
		if r.Step.Removes != nil {
			out = append(out, r.Step.Removes.Table)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
