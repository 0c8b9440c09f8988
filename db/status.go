package db

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/plans"
)

// RunReport is everything the state says about a plan's run on a
// database: what status and export show.
type RunReport struct {
	Where  string
	PlanID string
	// Hash is the content hash of the plan given; Run.Hash the run's.
	Hash string
	Plan *plans.Plan
	// Run is nil when the plan was never applied here.
	Run         *Run
	Steps       map[string]*StepState
	Apps        map[int]*AppRelease
	Checkpoints map[string]*Checkpoint
	Audit       []AuditRow
	Notes       []Note
	// Holder describes the session applying the plan now; "" when none.
	Holder string
}

// ReadRun reads the state of the plan's run without changing anything
// (the state schema is not created when missing).
func ReadRun(ctx context.Context, dbURL string, p *plans.Plan) (*RunReport, error) {
	conn, err := Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return readRun(ctx, conn, p)
}

func readRun(ctx context.Context, conn *pgx.Conn, p *plans.Plan) (*RunReport, error) {
	r := &RunReport{Where: Describe(&conn.Config().Config), PlanID: PlanID(p), Hash: p.Hash(), Plan: p}
	ok, err := stateExists(ctx, conn)
	if err != nil || !ok {
		return r, err
	}
	if r.Run, err = loadRun(ctx, conn, r.PlanID); err != nil || r.Run == nil {
		return r, err
	}
	if r.Steps, err = loadSteps(ctx, conn, r.PlanID); err != nil {
		return nil, err
	}
	if r.Apps, err = loadAppReleases(ctx, conn, r.PlanID); err != nil {
		return nil, err
	}
	if r.Checkpoints, err = loadCheckpoints(ctx, conn, r.PlanID); err != nil {
		return nil, err
	}
	if r.Audit, err = loadAudit(ctx, conn, r.PlanID); err != nil {
		return nil, err
	}
	if r.Notes, err = loadNotes(ctx, conn, r.PlanID); err != nil {
		return nil, err
	}
	if r.Holder, err = planHolder(ctx, conn, r.PlanID); err != nil {
		return nil, err
	}
	return r, nil
}

// planHolder describes the session holding the plan's advisory lock (the
// one applying it now), "" when none.
func planHolder(ctx context.Context, conn *pgx.Conn, planID string) (string, error) {
	u := uint64(advisoryKey("plan", planID))
	var holder []byte
	if err := conn.QueryRow(ctx, `SELECT json_agg(json_build_object('pid', a.pid, 'user', a.usename, 'app', a.application_name,
			'client', coalesce(host(a.client_addr), 'local'), 'state', a.state))
		FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			AND l.database = `+currentDB+` AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid`,
		int64(u>>32), int64(u&0xffffffff)).Scan(&holder); err != nil {
		return "", err
	}
	return describeSessions(holder), nil
}

// Text renders the report for `cutover status`.
func (r *RunReport) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan %s (content %s) on %s\n", short(r.PlanID), short(r.Hash), r.Where)
	if r.Run == nil {
		b.WriteString("not applied to this database yet: cutover apply --plan FILE starts it\n")
		return b.String()
	}
	run := r.Run
	if run.Hash != r.Hash {
		fmt.Fprintf(&b, "WARNING: the run here is of a different plan for the same change (content %s): status below is for that plan\n", short(run.Hash))
	}
	fmt.Fprintf(&b, "status: %s\n", r.statusLine())
	fmt.Fprintf(&b, "started by %s from host %s (client %s) at %s; last update %s\n", run.StartedBy, run.ClientHost, orDash(run.ClientAddr),
		run.StartedAt.Format(time.RFC3339), run.UpdatedAt.Format(time.RFC3339))
	if r.Holder != "" {
		fmt.Fprintf(&b, "being applied now by %s\n", r.Holder)
	} else if run.Status == "running" || run.Status == "rolling back" {
		b.WriteString("no cutover session holds the plan's lock: the run was interrupted; run apply (or rollback) again to resume\n")
	}
	if run.Error != "" {
		fmt.Fprintf(&b, "last error: %s\n", run.Error)
	}
	n := 0
	for pi := range r.Plan.Phases {
		ph := &r.Plan.Phases[pi]
		for di := range ph.Deploys {
			n++
			d := &ph.Deploys[di]
			if d.Kind == plans.App {
				state := "pending"
				if a := r.Apps[n]; a != nil {
					state = "announced " + a.AnnouncedAt.Format("15:04:05")
					if a.ConfirmedAt != nil {
						state = fmt.Sprintf("confirmed %s by %s", a.ConfirmedAt.Format(time.RFC3339), a.ConfirmedBy)
					}
				}
				fmt.Fprintf(&b, "  %-11s deploy %d (%s) application release: %s\n", "app", n, ph.Name, d.Title+" — "+state)
				continue
			}
			for si := range d.Steps {
				s := &d.Steps[si]
				st := r.Steps[s.ID]
				if st == nil {
					fmt.Fprintf(&b, "  %-11s %s\n", "unknown", s.ID)
					continue
				}
				line := fmt.Sprintf("  %-11s %s", st.Status, s.ID)
				var extra []string
				if st.Attempts > 0 {
					extra = append(extra, plural(int64(st.Attempts), "attempt"))
				}
				if st.Status == "done" && st.Duration > 0 {
					extra = append(extra, roundDur(st.Duration).String())
				}
				if st.Gate != "" {
					extra = append(extra, "gate "+st.Gate)
				}
				if cp := r.Checkpoints[s.ID]; cp != nil {
					extra = append(extra, fmt.Sprintf("%s changed in %s", plural(cp.RowsDone, "row"), plural(int64(cp.Batches), "batch")))
				}
				if s.Irreversible {
					extra = append(extra, "irreversible")
				}
				if st.Error != "" && st.Status != "done" {
					extra = append(extra, "error: "+st.Error)
				}
				if len(extra) > 0 {
					line += " (" + strings.Join(extra, ", ") + ")"
				}
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

func (r *RunReport) statusLine() string {
	run := r.Run
	switch run.Status {
	case "waiting":
		if run.RollbackAnnounced != nil && run.RollbackConfirmed == nil {
			return "rollback waiting for the application release that preceded the plan to be deployed again (run rollback again to confirm)"
		}
		for n, a := range r.Apps {
			if a.ConfirmedAt == nil {
				return fmt.Sprintf("waiting for application release %q (deploy %d, announced %s): run apply again to confirm it is done", a.Title, n, a.AnnouncedAt.Format(time.RFC3339))
			}
		}
	case "done":
		if run.FinishedAt != nil {
			return "done at " + run.FinishedAt.Format(time.RFC3339)
		}
	case "rolled back":
		if run.FinishedAt != nil {
			return "rolled back at " + run.FinishedAt.Format(time.RFC3339)
		}
	}
	s := run.Status
	if run.CurrentStep != "" {
		s += ", at " + run.CurrentStep
	}
	return s
}
