package db

// The "as executed" record: the runbook (plans.Markdown) followed by what
// the state says happened, statement by statement. Backfill batches are
// summarized (a ctid walk's are listed in cutover.statements, a keyed
// backfill's counted in its key ranges' checkpoints); failed attempts are
// always listed.

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cutover/cutover/plans"
)

// ExportMarkdown returns the plan's runbook with an "As executed" section.
func ExportMarkdown(r *RunReport) string {
	var b strings.Builder
	b.WriteString(plans.Markdown(r.Plan))
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteByte('\n')
	}
	b.WriteString("\n## As executed\n\n")
	if r.Run == nil {
		fmt.Fprintf(&b, "Not applied to `%s` yet (plan id `%s`).\n", r.Where, short(r.PlanID))
		return b.String()
	}
	run := r.Run
	match := "matches this runbook"
	if run.Hash != r.Hash {
		match = fmt.Sprintf("**differs from this runbook's** `%s`", short(r.Hash))
	}
	fmt.Fprintf(&b, "- Database: `%s`\n", r.Where)
	fmt.Fprintf(&b, "- Plan id `%s`, content hash `%s` (%s)\n", short(r.PlanID), short(run.Hash), match)
	fmt.Fprintf(&b, "- Started by `%s` from host `%s` (client %s) at %s\n", run.StartedBy, run.ClientHost, orDash(run.ClientAddr), stamp(run.StartedAt))
	fmt.Fprintf(&b, "- Status: **%s**", run.Status)
	if run.FinishedAt != nil {
		fmt.Fprintf(&b, " at %s", stamp(*run.FinishedAt))
	}
	b.WriteString("\n")
	if run.Error != "" {
		fmt.Fprintf(&b, "- Last error: %s\n", mdEscape(run.Error))
	}

	b.WriteString("\n| step | status | attempts | started | finished | duration | gate |\n|---|---|---|---|---|---|---|\n")
	for _, ref := range r.Plan.Steps() {
		st := r.Steps[ref.Step.ID]
		if st == nil {
			continue
		}
		fmt.Fprintf(&b, "| `%s` | %s | %d | %s | %s | %s | %s |\n", st.ID, st.Status, st.Attempts, stampp(st.StartedAt), stampp(st.FinishedAt),
			durOrDash(st.Duration), orDash(st.Gate))
	}

	if len(r.Apps) > 0 {
		b.WriteString("\n### Application releases\n\n")
		var nums []int
		for n := range r.Apps {
			nums = append(nums, n)
		}
		sort.Ints(nums)
		for _, n := range nums {
			a := r.Apps[n]
			fmt.Fprintf(&b, "- Deploy %d, %s: announced %s", n, mdEscape(a.Title), stamp(a.AnnouncedAt))
			if a.ConfirmedAt != nil {
				fmt.Fprintf(&b, "; confirmed %s by `%s` on host `%s`", stamp(*a.ConfirmedAt), a.ConfirmedBy, a.ConfirmedFrom)
			} else {
				b.WriteString("; not confirmed yet")
			}
			b.WriteString("\n")
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n### Notes\n\n")
		for _, n := range r.Notes {
			step := ""
			if n.StepID != "" {
				step = " `" + n.StepID + "`"
			}
			fmt.Fprintf(&b, "- %s%s (%s): %s\n", stamp(n.At), step, n.Kind, mdEscape(n.Message))
		}
	}

	b.WriteString("\n### Statements\n\nEvery statement cutover executed, in order, with its lock_timeout / statement_timeout, duration and the lock wait the sampler saw.\n")
	byStep := map[string][]AuditRow{}
	var order []string
	for _, a := range r.Audit {
		if _, ok := byStep[a.StepID]; !ok {
			order = append(order, a.StepID)
		}
		byStep[a.StepID] = append(byStep[a.StepID], a)
	}
	for _, ref := range r.Plan.Steps() {
		// A backfill stopped before its gate may have batches and no audit row.
		if cp := r.Checkpoints[ref.Step.ID]; cp != nil && cp.Batches > 0 {
			if _, ok := byStep[ref.Step.ID]; !ok {
				byStep[ref.Step.ID] = nil
				order = append(order, ref.Step.ID)
			}
		}
	}
	for _, id := range order {
		rows := byStep[id]
		title := id
		if title == "" {
			title = "(run)"
		}
		fmt.Fprintf(&b, "\n#### `%s`\n\n", title)
		var batches []AuditRow
		for _, a := range rows {
			if a.Action == "batch" && a.Outcome == "ok" {
				batches = append(batches, a)
				continue
			}
			writeAudit(&b, a)
		}
		switch cp := r.Checkpoints[id]; {
		case len(batches) > 0:
			writeBatches(&b, batches)
		case cp != nil && cp.Batches > 0:
			writeRangeBatches(&b, r.Plan, id, cp)
		}
	}
	return b.String()
}

// writeRangeBatches summarizes a keyed backfill's batches from its
// checkpoints: they leave no audit row (see backfill_parallel.go).
func writeRangeBatches(b *strings.Builder, p *plans.Plan, stepID string, cp *Checkpoint) {
	fmt.Fprintf(b, "- Backfill: %s committed, %s changed, last checkpoint at %s; each batch is one statement that changes the next keys of its key range and writes the range's checkpoint (cutover.backfill_ranges), run in a loop on the server by each worker's session (a procedure in its pg_temp; sent one by one from cutover when the session cannot create it); committed batches are counted there, not listed here.",
		plural(int64(cp.Batches), "batch"), plural(cp.RowsDone, "row"), stamp(cp.Updated))
	for _, ref := range p.Steps() {
		if ref.Step.ID != stepID || ref.Step.Backfill == nil {
			continue
		}
		if sqls, err := backfillSQL(ref.Step.Backfill); err == nil && sqls.keyed {
			b.WriteString(" The batch statement (within a range that has an end, after its first batch):\n\n")
			b.WriteString("  ```sql\n  " + sqls.batch[1][1] + "\n  ```\n")
			return
		}
	}
	b.WriteString("\n")
}

func writeAudit(b *strings.Builder, a AuditRow) {
	fmt.Fprintf(b, "- %s · %s · attempt %d · lock_timeout %s, statement_timeout %s · %s", stamp(a.StartedAt), a.Action, a.Attempt,
		orDash(a.LockTimeout), orDash(a.StatementTimeout), durpOrDash(a.Duration, "interrupted"))
	if a.LockWait != nil && *a.LockWait > 0 {
		fmt.Fprintf(b, " · lock wait %s", roundDur(*a.LockWait))
	}
	if a.BlockedBy != "" {
		fmt.Fprintf(b, " · blocked by %s", mdEscape(a.BlockedBy))
	}
	if a.Rows != nil && *a.Rows > 0 {
		fmt.Fprintf(b, " · %s", plural(*a.Rows, "row"))
	}
	fmt.Fprintf(b, " · **%s**", a.Outcome)
	if a.Error != "" {
		fmt.Fprintf(b, ": %s (%s)", mdEscape(a.Error), a.SQLState)
	}
	b.WriteString("\n\n  ```sql\n")
	for _, l := range strings.Split(strings.TrimSpace(a.Statement), "\n") {
		b.WriteString("  " + l + "\n")
	}
	if len(a.Args) > 0 {
		fmt.Fprintf(b, "  -- arguments: %s\n", strings.Join(a.Args, ", "))
	}
	b.WriteString("  ```\n")
}

// writeBatches summarizes the committed batch statements of a backfill.
func writeBatches(b *strings.Builder, rows []AuditRow) {
	var total, changed int64
	var dur time.Duration
	var n int
	for _, a := range rows {
		if a.Duration != nil {
			dur += *a.Duration
		}
		if a.Rows != nil && !strings.HasPrefix(a.Statement, "SELECT") {
			changed += *a.Rows
			n++
		}
		total++
	}
	first, last := rows[0], rows[len(rows)-1]
	fmt.Fprintf(b, "- Backfill: %s committed (%s), %s changed, %s of statement time, %s to %s; each batch is one range statement in its own transaction with its checkpoint. The batch statement:\n\n",
		plural(int64(n), "batch"), plural(total, "statement"), plural(changed, "row"), roundDur(dur), stamp(first.StartedAt), stamp(last.StartedAt))
	for _, a := range rows {
		if !strings.HasPrefix(a.Statement, "SELECT") {
			b.WriteString("  ```sql\n  " + strings.ReplaceAll(strings.TrimSpace(a.Statement), "\n", "\n  ") + "\n  ```\n")
			break
		}
	}
}

func stamp(t time.Time) string { return t.Format("2006-01-02 15:04:05.000 MST") }

func stampp(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return t.Format("15:04:05.000")
}

func durOrDash(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return roundDur(d).String()
}

func durpOrDash(d *time.Duration, none string) string {
	if d == nil {
		return none
	}
	return roundDur(*d).String()
}

// mdEscape keeps table and list text on one line and escapes the pipe.
func mdEscape(s string) string {
	return strings.ReplaceAll(oneLine(s), "|", `\|`)
}
