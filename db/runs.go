package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/plans"
)

// RunInProgress is a run of a plan on the database that is not finished:
// its status is neither done nor rolled back. The plan it applies is
// stored with it, so it can be resumed from the database alone.
type RunInProgress struct {
	PlanID string
	// Plan is the plan the run applies, as the engine stored it when it
	// last started or resumed the run; nil when the run was recorded by an
	// earlier cutover that did not store it (PlanErr says why).
	Plan    *plans.Plan
	PlanErr error
	// Input is the change's SQL as given.
	Input       string
	Status      string
	CurrentStep string
	// NextDeploy is the 1-based deploy the run goes on with (the first
	// with a step not done, or a gate not passed, or an application
	// release not confirmed), Deploys the plan's number of deploys; both
	// 0 without a plan.
	NextDeploy int
	Deploys    int
	StartedBy  string
	ClientHost string
	StartedAt  time.Time
	UpdatedAt  time.Time
	// Holder describes the session applying the plan now; "" when none.
	Holder string
}

// RunsInProgress lists the runs on the database at dbURL (as for Connect)
// that are not finished, the most recently updated first. It changes
// nothing: without the state schema there are none.
func RunsInProgress(ctx context.Context, dbURL string) ([]RunInProgress, error) {
	conn, err := Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return runsInProgress(ctx, conn)
}

func runsInProgress(ctx context.Context, conn *pgx.Conn) ([]RunInProgress, error) {
	ok, err := stateExists(ctx, conn)
	if err != nil || !ok {
		return nil, err
	}
	// A state made by an earlier build may lack the plan column until an
	// engine opens it (read only here: no upgrade).
	var hasPlan bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute
		WHERE attrelid = 'cutover.runs'::regclass AND attname = 'plan' AND NOT attisdropped)`).Scan(&hasPlan); err != nil {
		return nil, err
	}
	planCol := "NULL::text"
	if hasPlan {
		planCol = "plan::text"
	}
	rows, err := conn.Query(ctx, `SELECT plan_id, input, status, coalesce(current_step, ''), started_by, client_host, started_at, updated_at, `+planCol+`
		FROM cutover.runs WHERE status NOT IN ('done', 'rolled back') ORDER BY updated_at DESC, plan_id`)
	if err != nil {
		return nil, fmt.Errorf("reading the runs in progress: %w", err)
	}
	var out []RunInProgress
	var raws []*string
	for rows.Next() {
		var r RunInProgress
		var raw *string
		if err := rows.Scan(&r.PlanID, &r.Input, &r.Status, &r.CurrentStep, &r.StartedBy, &r.ClientHost, &r.StartedAt, &r.UpdatedAt, &raw); err != nil {
			return nil, err
		}
		out = append(out, r)
		raws = append(raws, raw)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the runs in progress: %w", err)
	}
	for i := range out {
		r := &out[i]
		if raws[i] == nil {
			r.PlanErr = fmt.Errorf("the run of plan %s was recorded without its plan (by an earlier cutover): open its plan file (cutover --db URL --plan FILE)", short(r.PlanID))
		} else if p, err := plans.Decode([]byte(*raws[i])); err != nil {
			r.PlanErr = fmt.Errorf("the plan stored with the run of plan %s: %w", short(r.PlanID), err)
		} else {
			r.Plan = p
		}
		if r.Plan != nil {
			if err := r.nextDeploy(ctx, conn); err != nil {
				return nil, err
			}
		}
		if r.Holder, err = planHolder(ctx, conn, r.PlanID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nextDeploy finds where the run goes on from its steps and releases.
func (r *RunInProgress) nextDeploy(ctx context.Context, conn *pgx.Conn) error {
	steps, err := loadSteps(ctx, conn, r.PlanID)
	if err != nil {
		return err
	}
	apps, err := loadAppReleases(ctx, conn, r.PlanID)
	if err != nil {
		return err
	}
	r.NextDeploy = 0
	n := 0
	for pi := range r.Plan.Phases {
		for di := range r.Plan.Phases[pi].Deploys {
			n++
			d := &r.Plan.Phases[pi].Deploys[di]
			if r.NextDeploy > 0 {
				continue
			}
			if d.Kind == plans.App {
				if a := apps[n]; a == nil || a.ConfirmedAt == nil {
					r.NextDeploy = n
				}
				continue
			}
			for si := range d.Steps {
				s := &d.Steps[si]
				st := steps[s.ID]
				if st == nil || st.Status != "done" || (s.Gate != nil && st.Gate != "passed") {
					r.NextDeploy = n
					break
				}
			}
		}
	}
	r.Deploys = n
	if r.NextDeploy == 0 {
		r.NextDeploy = n
	}
	return nil
}
