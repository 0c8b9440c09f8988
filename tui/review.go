package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/viewport"

	"github.com/cutover/cutover/plans"
)

// rowKind is what a line of the review list stands for.
type rowKind int

const (
	rowPlan rowKind = iota
	rowPhase
	rowDeploy
	rowStep
)

// row is one line of the review list: the plan, a phase, a deploy or a
// step, with the indices locating it in the plan.
type row struct {
	kind          rowKind
	phase, deploy int
	step          int
	// n numbers deploys through the plan (1-based); total is the count.
	n int
}

// reviewModel is the review screen: the plan as a navigable list (plan →
// phases → deploys → steps) and, for the selected row, its details.
type reviewModel struct {
	st     styles
	plan   *plans.Plan
	rows   []row
	sel    int
	offset int
	detail viewport.Model

	width, height int
	// detailFor is the (row, width) the detail viewport was filled for.
	detailFor [2]int
}

func newReview(st styles) reviewModel {
	return reviewModel{st: st, detail: viewport.New(0, 0), detailFor: [2]int{-1, -1}}
}

// SetPlan shows p, selecting its first step.
func (r *reviewModel) SetPlan(p *plans.Plan) {
	r.plan = p
	r.rows = r.rows[:0]
	r.sel, r.offset = 0, 0
	r.detailFor = [2]int{-1, -1}
	if p == nil {
		return
	}
	r.rows = append(r.rows, row{kind: rowPlan})
	n := 0
	for pi := range p.Phases {
		r.rows = append(r.rows, row{kind: rowPhase, phase: pi})
		for di := range p.Phases[pi].Deploys {
			n++
			r.rows = append(r.rows, row{kind: rowDeploy, phase: pi, deploy: di, n: n})
			for si := range p.Phases[pi].Deploys[di].Steps {
				r.rows = append(r.rows, row{kind: rowStep, phase: pi, deploy: di, step: si, n: n})
			}
		}
	}
	r.moveToStep(1)
}

func countDeploys(p *plans.Plan) (all, db, app int) {
	for _, ph := range p.Phases {
		for _, d := range ph.Deploys {
			all++
			if d.Kind == plans.App {
				app++
			} else {
				db++
			}
		}
	}
	return all, db, app
}

// SetSize gives the screen its area. At 120 columns or more the list and
// the details are side by side; below, the details are under the list.
func (r *reviewModel) SetSize(w, h int) {
	r.width, r.height = w, h
	_, _, dw, dh := r.layout()
	r.detail.Width, r.detail.Height = max(dw-2, 1), max(dh-3, 1)
	r.detailFor = [2]int{-1, -1}
	r.scrollIntoView()
}

// layout returns the list's and the detail's outer sizes.
func (r *reviewModel) layout() (lw, lh, dw, dh int) {
	if r.width >= 120 {
		lw = min(64, r.width*2/5)
		return lw, r.height, r.width - lw, r.height
	}
	lh = min(max(len(r.rows)+3, 6), r.height*2/5)
	return r.width, lh, r.width, r.height - lh
}

// Selected returns the selected row.
func (r *reviewModel) Selected() (row, bool) {
	if r.sel < 0 || r.sel >= len(r.rows) {
		return row{}, false
	}
	return r.rows[r.sel], true
}

// SelectedStep returns the selected step, nil when a step is not selected.
func (r *reviewModel) SelectedStep() *plans.Step {
	rw, ok := r.Selected()
	if !ok || rw.kind != rowStep {
		return nil
	}
	return &r.plan.Phases[rw.phase].Deploys[rw.deploy].Steps[rw.step]
}

func (r *reviewModel) move(d int) {
	if len(r.rows) == 0 {
		return
	}
	r.sel = max(0, min(len(r.rows)-1, r.sel+d))
	r.scrollIntoView()
}

func (r *reviewModel) moveTo(i int) {
	r.sel = 0
	r.move(i)
}

// moveToStep selects the next (dir 1) or previous (dir -1) step row.
func (r *reviewModel) moveToStep(dir int) {
	for i := r.sel + dir; i >= 0 && i < len(r.rows); i += dir {
		if r.rows[i].kind == rowStep {
			r.sel = i
			r.scrollIntoView()
			return
		}
	}
}

func (r *reviewModel) listHeight() int {
	_, lh, _, _ := r.layout()
	return max(lh-3, 1)
}

func (r *reviewModel) scrollIntoView() {
	h := r.listHeight()
	if r.sel < r.offset {
		r.offset = r.sel
	}
	if r.sel >= r.offset+h {
		r.offset = r.sel - h + 1
	}
	r.offset = max(0, min(r.offset, len(r.rows)-h))
}

// View draws the list and the details.
func (r *reviewModel) View() string {
	if r.plan == nil {
		return r.st.frame("Plan", r.st.muted.Render("No plan yet: write the change on the compose screen (tab) and press ctrl+p."), r.width, r.height, false)
	}
	lw, lh, dw, dh := r.layout()
	list := r.st.frame(r.listTitle(), r.listView(lw-2), lw, lh, true)
	r.fillDetail(dw - 2)
	title := r.detailTitle()
	if pct := r.detail.ScrollPercent(); r.detail.TotalLineCount() > r.detail.Height {
		title += fmt.Sprintf(" (%d%%)", int(pct*100))
	}
	detail := r.st.frame(title, r.detail.View(), dw, dh, false)
	if r.width >= 120 {
		return joinH(list, detail)
	}
	return list + "\n" + detail
}

func (r *reviewModel) listTitle() string {
	all, db, app := countDeploys(r.plan)
	steps := len(r.plan.Steps())
	return fmt.Sprintf("Plan: %d deploys (%d db, %d app), %d steps", all, db, app, steps)
}

// listView draws the visible rows, the selected one marked with "›" and
// reversed.
func (r *reviewModel) listView(w int) string {
	h := r.listHeight()
	var sb strings.Builder
	total, _, _ := countDeploys(r.plan)
	for i := r.offset; i < len(r.rows) && i < r.offset+h; i++ {
		line := r.rowText(r.rows[i], total)
		if i == r.sel {
			line = r.st.selected.Render(padRight("› "+line, w))
		} else {
			line = padRight("  "+line, w)
		}
		if i > r.offset {
			sb.WriteByte('\n')
		}
		sb.WriteString(line)
	}
	return sb.String()
}

func (r *reviewModel) rowText(rw row, total int) string {
	p := r.plan
	switch rw.kind {
	case rowPlan:
		extra := ""
		if n := len(p.Warnings); n > 0 {
			extra = fmt.Sprintf(" · %d warning%s", n, plural(n))
		}
		return "plan overview" + extra
	case rowPhase:
		return fmt.Sprintf("%s", strings.ToUpper(string(p.Phases[rw.phase].Name)))
	case rowDeploy:
		d := &p.Phases[rw.phase].Deploys[rw.deploy]
		kind := "db "
		if d.Kind == plans.App {
			kind = "app"
		}
		return fmt.Sprintf("  %d/%d %s %s", rw.n, total, kind, d.Title)
	}
	s := &p.Phases[rw.phase].Deploys[rw.deploy].Steps[rw.step]
	return fmt.Sprintf("      %s · %s", s.ID, plans.Risk(s))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (r *reviewModel) detailTitle() string {
	rw, ok := r.Selected()
	if !ok {
		return ""
	}
	p := r.plan
	switch rw.kind {
	case rowPlan:
		return "Overview"
	case rowPhase:
		return "Phase " + string(p.Phases[rw.phase].Name)
	case rowDeploy:
		return fmt.Sprintf("Deploy %d: %s", rw.n, p.Phases[rw.phase].Deploys[rw.deploy].Title)
	}
	return "Step " + p.Phases[rw.phase].Deploys[rw.deploy].Steps[rw.step].ID
}

// fillDetail renders the selected row's details into the viewport when
// the selection or the width changed (View is called on every frame).
func (r *reviewModel) fillDetail(w int) {
	if r.detailFor == [2]int{r.sel, w} {
		return
	}
	r.detailFor = [2]int{r.sel, w}
	r.detail.SetContent(wrap(r.detailText(), max(w, 10)))
	r.detail.GotoTop()
}

// detailText is the selected row's details, plain text with light styling.
func (r *reviewModel) detailText() string {
	rw, ok := r.Selected()
	if !ok {
		return ""
	}
	d := detailWriter{st: r.st}
	p := r.plan
	switch rw.kind {
	case rowPlan:
		d.overview(p)
	case rowPhase:
		d.phase(&p.Phases[rw.phase])
	case rowDeploy:
		d.deploy(&p.Phases[rw.phase].Deploys[rw.deploy])
	case rowStep:
		ph := &p.Phases[rw.phase]
		dep := &ph.Deploys[rw.deploy]
		d.step(p, ph, dep, &dep.Steps[rw.step])
	}
	return strings.TrimRight(d.sb.String(), "\n")
}
