package db

// Rollback undoes the steps of a run in reverse order, back to the start of
// the plan, with the same lock safety as apply: each step's rollback SQL in
// one short transaction with its state update (or statement by statement
// outside a transaction block when it must, e.g. DROP INDEX CONCURRENTLY).
// It refuses, before undoing anything, when an irreversible step has run:
// a partial rollback that cannot reach the start would leave a shape that
// no release expects.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/plans"
)

// Rollback undoes every step of the run that has done work, last first.
// When an application release of the plan was confirmed, it first stops
// (Outcome "waiting") until the release that preceded the plan is deployed
// again: run rollback again (or pass ConfirmApps) to confirm.
func (e *Engine) Rollback(ctx context.Context) (out *Outcome, err error) {
	run, err := loadRun(ctx, e.conn, e.planID)
	if err != nil {
		return nil, err
	}
	if run == nil {
		e.emit(ApplyEvent{Kind: EventFinished, Rollback: true, Message: fmt.Sprintf("nothing to roll back: plan %s was never applied on %s", short(e.planID), e.where)})
		return &Outcome{Status: "nothing"}, nil
	}
	if run.Hash != e.hash {
		return nil, refused("the run of this change on %s is of a different plan (content %s there, %s in this file): roll back with the plan file that run used", e.where, short(run.Hash), short(e.hash))
	}
	if err := e.reload(ctx); err != nil {
		return nil, err
	}
	refs := e.stepRefs()
	var undo []stepRef
	for i := len(refs) - 1; i >= 0; i-- {
		r := refs[i]
		st := e.steps[r.step.ID]
		switch {
		case st.Status == "done":
		case (st.Status == "running" || st.Status == "failed") && (!r.step.Transactional || r.step.Backfill != nil):
			// Interrupted outside a transaction: part of its work may be
			// there (an INVALID index, some batches); undo it too.
		default:
			continue
		}
		undo = append(undo, r)
	}
	var irreversible []string
	for _, r := range undo {
		if r.step.Irreversible {
			irreversible = append(irreversible, fmt.Sprintf("%s (%s)", r.step.ID, r.step.IrreversibleReason))
		}
	}
	if len(irreversible) > 0 {
		return nil, refused("cannot roll back plan %s on %s: irreversible step %s has run; nothing was rolled back. To go back, plan and apply the reverse change",
			short(e.planID), e.where, strings.Join(irreversible, ", "))
	}
	defer func() { err = e.finishRollback(ctx, out, err) }()
	if len(undo) > 0 && e.appsConfirmed() && run.RollbackConfirmed == nil {
		waiting, err := e.rollbackRelease(ctx, run)
		if err != nil || waiting {
			if waiting {
				return &Outcome{Status: "waiting"}, nil
			}
			return nil, err
		}
	}
	if _, err := e.conn.Exec(ctx, `UPDATE cutover.runs SET status = 'rolling back', error = NULL, updated_at = clock_timestamp() WHERE plan_id = $1`, e.planID); err != nil {
		return nil, err
	}
	e.emit(ApplyEvent{Kind: EventRun, Rollback: true, Message: fmt.Sprintf("rolling back plan %s on %s: %s to undo, last first", short(e.planID), e.where, plural(int64(len(undo)), "step"))})
	for _, r := range undo {
		if err := e.undoStep(ctx, r); err != nil {
			return nil, err
		}
	}
	tx, err := e.conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	for _, q := range []string{
		`DELETE FROM cutover.app_releases WHERE plan_id = $1`,
		`DELETE FROM cutover.usage_baselines WHERE plan_id = $1`,
		`DELETE FROM cutover.backfill_checkpoints WHERE plan_id = $1`,
		`UPDATE cutover.steps SET status = 'rolled back', gate = NULL WHERE plan_id = $1 AND status <> 'pending'`,
		`UPDATE cutover.runs SET rollback_announced_at = NULL, rollback_confirmed_at = NULL, rollback_confirmed_by = NULL WHERE plan_id = $1`,
	} {
		if _, err := tx.Exec(ctx, q, e.planID); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	e.emit(ApplyEvent{Kind: EventFinished, Rollback: true, Message: fmt.Sprintf("rolled back: %s undone; the plan can be applied again from the start", plural(int64(len(undo)), "step"))})
	return &Outcome{Status: "done"}, nil
}

func (e *Engine) appsConfirmed() bool {
	for _, a := range e.apps {
		if a.ConfirmedAt != nil {
			return true
		}
	}
	return false
}

// rollbackRelease makes sure the application release that preceded the
// plan is running again before any step is undone.
func (e *Engine) rollbackRelease(ctx context.Context, run *Run) (waiting bool, err error) {
	if !e.opts.ConfirmApps && run.RollbackAnnounced == nil {
		if _, err := e.conn.Exec(ctx, `UPDATE cutover.runs SET rollback_announced_at = clock_timestamp() WHERE plan_id = $1`, e.planID); err != nil {
			return false, err
		}
		e.emit(ApplyEvent{Kind: EventWaitingForApp, Rollback: true,
			Message:      "waiting for application release: deploy again the application release that preceded this plan, so that nothing uses the new shape; then run rollback again (that confirms it) or pass --yes",
			Instructions: []string{"Redeploy the release that ran before this plan's first application release, everywhere (every instance, job and worker)."}})
		return true, nil
	}
	how := "confirmed with --yes"
	if !e.opts.ConfirmApps {
		how = fmt.Sprintf("confirmed by running rollback again (announced at %s)", run.RollbackAnnounced.Format(time.RFC3339))
	}
	if _, err := e.conn.Exec(ctx, `UPDATE cutover.runs SET rollback_confirmed_at = clock_timestamp(), rollback_confirmed_by = current_user WHERE plan_id = $1`, e.planID); err != nil {
		return false, err
	}
	msg := fmt.Sprintf("the application release that preceded the plan is deployed again: %s by %s on %s", how, e.user, e.host)
	if err := e.note(ctx, "", "app release", msg); err != nil {
		return false, err
	}
	e.emit(ApplyEvent{Kind: EventAppConfirmed, Rollback: true, Message: msg})
	return false, nil
}

// undoStep runs one step's rollback SQL.
func (e *Engine) undoStep(ctx context.Context, ref stepRef) error {
	s := ref.step
	stmts, err := splitSQL(s.Rollback)
	if err != nil {
		return err
	}
	own := false
	timeout := CatalogStatementTimeout
	for _, st := range stmts {
		own = own || needsOwnStatement(st)
		if isLongStatement(st) && !isNotValid(st) {
			timeout = 0
		}
	}
	if s.Rewrite == plans.ImpactRewrite {
		timeout = 0
	}
	if err := e.markInterrupted(ctx, s.ID); err != nil {
		return err
	}
	e.emit(ApplyEvent{Kind: EventStepStarted, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy, Rollback: true, Message: "start: undo " + s.Summary})
	start := time.Now()
	subj := ref.subject("step")
	subj.rollback = true
	const rolledBack = `UPDATE cutover.steps SET status = 'rolled back', gate = NULL, error = NULL, finished_at = clock_timestamp() WHERE plan_id = $1 AND step_id = $2`
	const noCheckpoint = `DELETE FROM cutover.backfill_checkpoints WHERE plan_id = $1 AND step_id = $2`
	err = e.withRetry(ctx, subj, func(ctx context.Context, n int) error {
		if own {
			if err := e.runOutsideTx(ctx, s.ID, "rollback", n, stmts, timeout, ref); err != nil {
				return err
			}
			b := &pgx.Batch{}
			b.Queue(rolledBack, e.planID, s.ID)
			b.Queue(noCheckpoint, e.planID, s.ID)
			return e.conn.SendBatch(ctx, b).Close()
		}
		return e.runInTx(ctx, txWork{stepID: s.ID, action: "rollback", attempt: n, stmts: stmts, statementTimeout: timeout, inTx: "rollback-in-tx",
			finish: func(b *pgx.Batch) {
				b.Queue(rolledBack, e.planID, s.ID)
				b.Queue(noCheckpoint, e.planID, s.ID)
			}})
	})
	if err != nil {
		if e.killed() {
			return errKilled
		}
		e.emit(ApplyEvent{Kind: EventStepFailed, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy, Rollback: true, Err: err, Message: "rollback failed: " + oneLine(err.Error())})
		if _, ok := err.(*ApplyError); ok {
			return err
		}
		return &ApplyError{Kind: Failed, Msg: fmt.Sprintf("rollback of step %s failed: %s; fix the cause and run rollback again", s.ID, oneLine(err.Error())), Err: err}
	}
	e.steps[s.ID].Status = "rolled back"
	e.emit(ApplyEvent{Kind: EventStepDone, StepID: s.ID, Phase: ref.phase, Deploy: ref.deploy, Rollback: true, Duration: time.Since(start),
		Message: fmt.Sprintf("undone in %s", roundDur(time.Since(start)))})
	return e.hook(ctx, "rollback-committed", s.ID, 0)
}

// finishRollback records how the rollback ended.
func (e *Engine) finishRollback(ctx context.Context, out *Outcome, err error) error {
	if e.killed() {
		return errKilled
	}
	sctx, cancel := stateCtx(ctx)
	defer cancel()
	status, msg := "failed", ""
	switch {
	case err != nil && ctx.Err() != nil:
		err = &ApplyError{Kind: Interrupted, Msg: "interrupted; the database is consistent: run rollback again to go on", Err: err}
		msg = "rollback interrupted"
	case err != nil:
		msg = "rollback: " + err.Error()
	case out.Status == "waiting":
		status = "waiting"
	default:
		status = "rolled back"
	}
	var errText *string
	if msg != "" {
		errText = &msg
	}
	if _, werr := e.conn.Exec(sctx, `UPDATE cutover.runs SET status = $2, error = $3, updated_at = clock_timestamp(),
		finished_at = CASE WHEN $2 = 'rolled back' THEN clock_timestamp() END WHERE plan_id = $1`, e.planID, status, errText); werr != nil && err == nil {
		err = werr
	}
	return err
}
