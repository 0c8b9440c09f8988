package tui

import (
	"fmt"
	"strings"

	"github.com/cutover/cutover/plans"
)

// detailWriter builds the detail pane's text for one row of the review
// list.
type detailWriter struct {
	st styles
	sb strings.Builder
}

func (d *detailWriter) line(s string) { d.sb.WriteString(s); d.sb.WriteByte('\n') }
func (d *detailWriter) blank()        { d.sb.WriteByte('\n') }

func (d *detailWriter) field(label, value string) {
	d.line(d.st.label.Render(label+":") + " " + value)
}

func (d *detailWriter) heading(s string) {
	d.blank()
	d.line(d.st.label.Render(s))
}

// sql writes a statement indented under its heading.
func (d *detailWriter) sql(s string) {
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		d.line("  " + d.st.code.Render(l))
	}
}

func (d *detailWriter) overview(p *plans.Plan) {
	all, db, app := countDeploys(p)
	d.line(fmt.Sprintf("%d deploys in %d phases (%d database, %d application), %d steps.", all, len(p.Phases), db, app, len(p.Steps())))
	d.field("Planned against", sourceText(p.Facts.Source))
	d.heading("Input")
	d.sql(strings.TrimSpace(p.Input))
	if len(p.Warnings) > 0 {
		d.heading("Warnings")
		for _, w := range p.Warnings {
			d.line(d.st.warn.Render("! ") + w)
		}
	}
	if len(p.Assumptions) > 0 {
		d.heading("Assumptions")
		for _, a := range p.Assumptions {
			d.line("- " + a)
		}
	}
	if len(p.Facts.Tables) > 0 {
		d.heading("Tables")
		for _, t := range p.Facts.Tables {
			d.line("- " + t.Name + ": " + tableFactsText(&t))
		}
	}
}

func sourceText(src string) string {
	if src == "" || src == "none" {
		return "no schema (assumptions listed)"
	}
	return src
}

func tableFactsText(t *plans.TableFacts) string {
	var parts []string
	if t.Rows >= 0 {
		parts = append(parts, fmt.Sprintf("~%s rows", groupDigits(t.Rows)))
	}
	if t.Bytes >= 0 {
		parts = append(parts, plans.BytesText(t.Bytes))
	}
	if t.Rows < 0 && t.Bytes < 0 {
		parts = append(parts, "size unknown (offline)")
	}
	if len(t.BatchKey) > 0 {
		parts = append(parts, "batch key ("+strings.Join(t.BatchKey, ", ")+")")
	} else {
		parts = append(parts, "no batch key (ctid ranges)")
	}
	if t.Partitioned {
		parts = append(parts, "partitioned")
	}
	if len(t.UpdateTriggers) > 0 {
		parts = append(parts, "UPDATE triggers: "+strings.Join(t.UpdateTriggers, ", "))
	}
	if len(t.DependentViews) > 0 {
		parts = append(parts, "views: "+strings.Join(t.DependentViews, ", "))
	}
	return strings.Join(parts, "; ")
}

func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func (d *detailWriter) phase(ph *plans.Phase) {
	d.line(phaseAbout[ph.Name])
	if ph.Rollback != "" {
		d.heading("Rolling back from here")
		d.line(ph.Rollback)
	}
	d.heading("Deploys")
	for _, dep := range ph.Deploys {
		d.line(fmt.Sprintf("- [%s] %s (%d steps)", dep.Kind, dep.Title, len(dep.Steps)))
	}
}

var phaseAbout = map[plans.PhaseName]string{
	plans.Expand:   "Additive changes only: the running application keeps working unchanged.",
	plans.Migrate:  "The new shape is completed (backfills, validations, indexes) and the application moves to it.",
	plans.Contract: "What nothing uses any more is removed.",
}

func (d *detailWriter) deploy(dep *plans.Deploy) {
	if dep.Kind == plans.App {
		d.line("An application release you perform; cutover waits for you to confirm it.")
	} else {
		d.line(fmt.Sprintf("Database steps cutover runs, in order (%d).", len(dep.Steps)))
	}
	if len(dep.Instructions) > 0 {
		d.heading("Instructions")
		for _, in := range dep.Instructions {
			d.line("- " + in)
		}
	}
	if len(dep.Steps) > 0 {
		d.heading("Steps")
		for i := range dep.Steps {
			s := &dep.Steps[i]
			d.line(fmt.Sprintf("- %s: %s", s.ID, s.Summary))
		}
	}
}

// step writes everything an operator checks before running a step.
func (d *detailWriter) step(p *plans.Plan, ph *plans.Phase, dep *plans.Deploy, s *plans.Step) {
	d.line(s.Summary)
	d.blank()
	d.field("Phase", fmt.Sprintf("%s · %s", ph.Name, dep.Title))
	d.field("Lock", lockText(s))
	d.field("Impact", impactText(s))
	d.field("Risk", riskText(d.st, s))
	if !s.Transactional {
		d.field("Transaction", "runs outside a transaction block")
	}
	d.field("Estimate", estimateText(p, s))
	d.heading("SQL")
	d.sql(s.SQL)
	if b := s.Backfill; b != nil {
		d.heading("Backfill")
		key := "ctid ranges (no usable key)"
		if len(b.Key) > 0 {
			key = strings.Join(b.Key, ", ")
		}
		d.line("  table " + b.Table + ", batches by " + key)
		d.line("  rows still to do: WHERE " + b.Where)
		if len(b.Triggers) > 0 {
			d.line("  each batch fires: " + strings.Join(b.Triggers, ", "))
		}
	}
	if s.Irreversible {
		d.heading(d.st.danger.Render("Irreversible"))
		reason := s.IrreversibleReason
		if reason == "" {
			reason = "this step cannot be undone"
		}
		d.line("  " + reason)
	} else {
		d.heading("Rollback")
		d.sql(s.Rollback)
	}
	if g := s.Gate; g != nil {
		d.heading("Gate (must pass before the plan goes on)")
		d.line("  " + g.Description)
		d.sql(g.SQL)
	}
	if len(s.Hazards) > 0 {
		d.heading("Hazards")
		for _, h := range s.Hazards {
			d.line(fmt.Sprintf("- %s: %s", h.Type, h.Message))
		}
	}
	if r := s.Removes; r != nil {
		what := r.Table
		if r.Column != "" {
			what = r.Table + "." + r.Column
		}
		d.heading("Removes")
		d.line("  " + what + ": cutover checks nothing still uses it before running this step")
	}
	if len(p.Warnings) > 0 {
		d.heading("Plan warnings")
		for _, w := range p.Warnings {
			d.line(d.st.warn.Render("! ") + w)
		}
	}
}

func lockText(s *plans.Step) string {
	if s.Lock == "" || s.Lock == plans.LockNone {
		return "none"
	}
	t := string(s.Lock) + " on " + s.Table
	switch reads, writes := s.Lock.Blocks(); {
	case reads:
		t += " (blocks reads and writes while held)"
	case writes:
		t += " (blocks writes while held)"
	default:
		t += " (does not block reads or writes)"
	}
	return t
}

func impactText(s *plans.Step) string {
	switch s.Rewrite {
	case plans.ImpactRewrite:
		return "rewrites the whole table under its lock"
	case plans.ImpactScan:
		return "scans the whole table"
	case plans.ImpactBatched:
		return "touches every row, in short batches"
	}
	return "catalog only: instant once the lock is granted"
}

func riskText(st styles, s *plans.Step) string {
	r := plans.Risk(s)
	if s.Irreversible || strings.Contains(r, "AE") || strings.Contains(r, "data loss") {
		return st.danger.Render(r)
	}
	return r
}

// estimateText estimates a step's duration from the plan's facts: the
// backfill estimate for a batched step, the table's size for a scan or a
// rewrite, "instant" for catalog-only steps.
func estimateText(p *plans.Plan, s *plans.Step) string {
	var t *plans.TableFacts
	for i := range p.Facts.Tables {
		if p.Facts.Tables[i].Name == s.Table {
			t = &p.Facts.Tables[i]
		}
	}
	switch s.Rewrite {
	case plans.ImpactBatched:
		if t != nil && t.BackfillSeconds > 0 {
			return fmt.Sprintf("%s for ~%s rows (backfill at the planned rate)", plans.DurationText(t.BackfillSeconds), groupDigits(t.Rows))
		}
		return "unknown: table size not known (plan against a live database for an estimate)"
	case plans.ImpactScan, plans.ImpactRewrite:
		if t != nil && t.Rows >= 0 {
			return fmt.Sprintf("proportional to the table: ~%s rows, %s", groupDigits(t.Rows), plans.BytesText(t.Bytes))
		}
		return "proportional to the table's size (not known offline)"
	}
	return "instant once the lock is granted"
}
