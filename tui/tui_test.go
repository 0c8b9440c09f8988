package tui

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/plans"
)

// Goldens are updated with: go test ./tui -update (the flag is defined by
// x/exp/golden, which teatest uses).

var sizes = []struct {
	name string
	w, h int
}{
	{"80x24", 80, 24},
	{"160x48", 160, 48},
}

// waitScreen waits until the program's output contains all of want.
func waitScreen(t *testing.T, tm *teatest.TestModel, want ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

// finalView quits the program and returns the final model's view.
func finalView(t *testing.T, tm *teatest.TestModel) (*Model, string) {
	t.Helper()
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	m := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*Model)
	return m, m.View()
}

// plannedRename starts the TUI with the email rename in the editor, waits
// for it to parse and plans it.
func plannedRename(t *testing.T, w, h int) *teatest.TestModel {
	t.Helper()
	tm := teatest.NewTestModel(t, newTestModel(t, renameSQL), teatest.WithInitialTermSize(w, h))
	waitScreen(t, tm, "parses")
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlP})
	return tm
}

func TestGoldenCompose(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			// Typed faster than the debounce: only the whole text is
			// checked.
			m := New(Options{Backend: pagilaBackend(), Renderer: asciiRenderer(), Debounce: 300 * time.Millisecond})
			tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(sz.w, sz.h))
			tm.Type("ALTER TABLE customer RENAM COLUMN email TO email_address;")
			// The schema is loaded too (the guided form's key shows then).
			waitScreen(t, tm, "error: line 1, column 22", "guided form")
			_, view := finalView(t, tm)
			golden.RequireEqual(t, []byte(view))
		})
	}
}

func TestGoldenReview(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			tm := plannedRename(t, sz.w, sz.h)
			waitScreen(t, tm, "Step E1-add-column-email-address")
			// The backfill step: its estimate and triggers.
			tm.Type("nn")
			waitScreen(t, tm, "Step B1-backfill-customer")
			m, view := finalView(t, tm)
			if s := m.review.SelectedStep(); s == nil || s.ID != "B1-backfill-customer" {
				t.Fatalf("selected step = %+v, want B1-backfill-customer", s)
			}
			golden.RequireEqual(t, []byte(view))
		})
	}
}

func TestGoldenExport(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			tm := plannedRename(t, sz.w, sz.h)
			waitScreen(t, tm, "Step E1")
			tm.Type("e")
			waitScreen(t, tm, "# cutover plan")
			_, view := finalView(t, tm)
			golden.RequireEqual(t, []byte(view))
		})
	}
}

func TestGoldenHelp(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			tm := plannedRename(t, sz.w, sz.h)
			waitScreen(t, tm, "Step E1")
			tm.Type("?")
			waitScreen(t, tm, "any key closes this")
			_, view := finalView(t, tm)
			golden.RequireEqual(t, []byte(view))
		})
	}
}

// Every line of every screen fits the terminal, at both sizes and after a
// live resize.
func TestViewFitsTerminal(t *testing.T) {
	m := newTestModel(t, renameSQL)
	drain(m, m.Init())
	check := func(stage string) {
		t.Helper()
		v := m.View()
		lines := strings.Split(v, "\n")
		if len(lines) != m.height {
			t.Errorf("%s at %dx%d: %d lines", stage, m.width, m.height, len(lines))
		}
		for i, l := range lines {
			if w := lipglossWidth(l); w > m.width {
				t.Errorf("%s at %dx%d: line %d is %d wide: %q", stage, m.width, m.height, i+1, w, l)
			}
		}
	}
	for _, sz := range [][2]int{{80, 24}, {160, 48}, {100, 30}, {200, 60}, {60, 15}} {
		run(m, tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		m.screen = screenCompose
		m.layout()
		check("compose")
		if m.plan == nil {
			keys(m, "ctrl+p")
		} else {
			keys(m, "tab")
		}
		check("review")
		keys(m, "e")
		check("export")
		keys(m, "esc", "?")
		check("help")
		keys(m, "esc", "tab", "ctrl+g")
		if !m.forming {
			t.Fatalf("ctrl+g did not open the form at %dx%d (screen %s, schema %v, err %v)", m.width, m.height, m.Screen(), m.compose.schema != nil, m.compose.schemaErr)
		}
		check("form")
		keys(m, "esc")
	}
}

func TestComposeSyntaxError(t *testing.T) {
	sql := "ALTER TABLE customer\n  RENAME COLUM email TO email_address;"
	m := newTestModel(t, sql)
	run(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	drain(m, m.Init())
	se := m.compose.SyntaxError()
	if se == nil {
		t.Fatalf("no syntax error for %q", sql)
	}
	_, want := planner.Relations(sql)
	var wse *planner.SyntaxError
	if !errors.As(want, &wse) || *wse != *se {
		t.Fatalf("syntax error = %+v, want the planner's %+v", se, want)
	}
	v := m.View()
	for _, w := range []string{"error: line 2, column 16", "   2 │   RENAME COLUM email TO email_address;"} {
		if !strings.Contains(v, w) {
			t.Errorf("view lacks %q:\n%s", w, v)
		}
	}
	// The caret is under the column.
	lines := strings.Split(v, "\n")
	for i, l := range lines {
		if strings.Contains(l, "   2 │") {
			caret := lines[i+1]
			if got := strings.Index(caret, "^"); got != len("   2 │ ")-2+se.Column-1+2-2+2 {
				// "   2 │ " is 7 cells; the caret is at 7+Column-1.
				if got != 7+se.Column-1 {
					t.Errorf("caret at byte %d, want cell %d: %q", got, 7+se.Column-1, caret)
				}
			}
		}
	}
	// Fixing the text clears the error once it is checked again.
	keys(m, "up")
	for range len("  RENAME COLUM") {
		keys(m, "right")
	}
	run(m, tea.KeyMsg{Type: tea.KeyEnd})
	m.compose.editor.SetValue(renameSQL)
	run(m, keyMsg(" "))
	if se := m.compose.SyntaxError(); se != nil {
		t.Fatalf("still a syntax error after the fix: %v", se)
	}
	if v := m.View(); !strings.Contains(v, "parses") {
		t.Fatalf("fixed text not reported as parsing:\n%s", v)
	}
}

// A check that finishes after a later edit is not shown: only the latest
// text's result counts.
func TestComposeStaleCheckIgnored(t *testing.T) {
	m := newTestModel(t, "")
	run(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	m.compose.Update(keyMsg("x")) // seq 1, tick pending
	stale := checkedMsg{seq: 0, text: "x", err: errors.New("old")}
	run(m, stale)
	if m.compose.parseErr != nil {
		t.Fatal("a stale check result was shown")
	}
}

func TestComposePlanError(t *testing.T) {
	m := newTestModel(t, "ALTER TABLE customer RENAME COLUMN nope TO other;")
	run(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	drain(m, m.Init())
	keys(m, "ctrl+p")
	if m.Screen() != "Compose" || m.Plan() != nil {
		t.Fatalf("screen %s, plan %v: want to stay on compose without a plan", m.Screen(), m.Plan())
	}
	if v := m.View(); !strings.Contains(v, "cannot plan:") || !strings.Contains(v, "nope") {
		t.Fatalf("plan error not shown:\n%s", v)
	}
	// Editing clears it.
	keys(m, "x")
	if m.planErr != nil {
		t.Fatal("plan error kept after an edit")
	}
}

// Compose by SQL → review → export: the file written is the plan's
// Markdown runbook, byte for byte.
func TestComposeReviewExport(t *testing.T) {
	dir := t.TempDir()
	m := newTestModel(t, "")
	run(m, tea.WindowSizeMsg{Width: 100, Height: 30})
	for _, r := range renameSQL {
		keys(m, string(r))
	}
	keys(m, "ctrl+p")
	if m.Screen() != "Review" || m.Plan() == nil {
		t.Fatalf("after ctrl+p: screen %s, plan %v", m.Screen(), m.Plan())
	}
	want, err := pagilaBackend().Plan(context.Background(), renameSQL)
	if err != nil {
		t.Fatal(err)
	}
	if m.Plan().Hash() != want.Hash() {
		t.Fatal("the TUI's plan differs from planning the same SQL directly")
	}
	// Walk every step with n, then back with N.
	var ids []string
	for _, ref := range want.Steps() {
		ids = append(ids, ref.Step.ID)
	}
	for i, id := range ids {
		if i > 0 {
			keys(m, "n")
		}
		if s := m.review.SelectedStep(); s == nil || s.ID != id {
			t.Fatalf("step %d: selected %+v, want %s", i, s, id)
		}
		if v := m.View(); !strings.Contains(v, "Step "+id) {
			t.Fatalf("detail of %s not shown:\n%s", id, v)
		}
	}
	keys(m, "n") // past the last step: stays
	if s := m.review.SelectedStep(); s.ID != ids[len(ids)-1] {
		t.Fatalf("n past the end moved to %s", s.ID)
	}
	keys(m, "g")
	if rw, _ := m.review.Selected(); rw.kind != rowPlan {
		t.Fatalf("g selected %+v, want the plan row", rw)
	}
	if v := m.View(); !strings.Contains(v, "Warnings") {
		t.Fatalf("overview without warnings:\n%s", v)
	}

	path := filepath.Join(dir, "runbook.md")
	keys(m, "e")
	if !m.exporting {
		t.Fatal("e did not open the export prompt")
	}
	m.export.input.SetValue("")
	for _, r := range path {
		keys(m, string(r))
	}
	keys(m, "enter")
	if m.exporting {
		t.Fatalf("export still open: %v", m.export.err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != plans.Markdown(want) {
		t.Fatal("exported runbook differs from plans.Markdown")
	}
	if !strings.Contains(m.View(), "wrote the runbook to "+path) {
		t.Fatalf("no confirmation:\n%s", m.View())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}

	// A path that cannot be written: the error is shown, the dialog stays.
	keys(m, "e")
	m.export.input.SetValue(filepath.Join(dir, "missing", "x.md"))
	keys(m, "enter")
	if !m.exporting || m.export.err == nil {
		t.Fatal("a failed write closed the dialog or showed no error")
	}
	if v := m.View(); !strings.Contains(v, "error: cannot write") {
		t.Fatalf("write error not shown:\n%s", v)
	}
	keys(m, "esc")
	if m.exporting {
		t.Fatal("esc did not close the export prompt")
	}
}

// Keys that mean nothing on a screen are not in its help.
func TestHelpListsOnlyLiveKeys(t *testing.T) {
	m := newTestModel(t, renameSQL)
	run(m, tea.WindowSizeMsg{Width: 160, Height: 48})
	short := m.help.ShortHelpView(m.keys.ShortHelp())
	if strings.Contains(short, "export") || strings.Contains(short, "q quit") {
		t.Errorf("compose (editing) help lists review keys or q: %s", short)
	}
	keys(m, "ctrl+p")
	short = m.help.ShortHelpView(m.keys.ShortHelp())
	if !strings.Contains(short, "export") || strings.Contains(short, "ctrl+p") {
		t.Errorf("review help: %s", short)
	}
	// q quits on review, but is text while editing.
	m2 := newTestModel(t, "")
	run(m2, tea.WindowSizeMsg{Width: 80, Height: 24})
	keys(m2, "q")
	if m2.compose.Value() != "q" {
		t.Errorf("q while editing: value %q", m2.compose.Value())
	}
}

func BenchmarkViewReview160x48(b *testing.B) {
	m := newTestModel(b, renameSQL)
	run(m, tea.WindowSizeMsg{Width: 160, Height: 48})
	keys(m, "ctrl+p", "n", "n")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_ = m.View()
	}
}

// On a wide terminal the schema panel shows the tables the SQL names
// first, with their columns.
func TestComposeSchemaPanel(t *testing.T) {
	m := newTestModel(t, renameSQL)
	run(m, tea.WindowSizeMsg{Width: 160, Height: 48})
	drain(m, m.Init())
	v := m.View()
	for _, want := range []string{"Schema · pagila sample · 22 tables", "public.customer · 10 cols", "  email ", "other tables", "public.actor · 4 cols"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	if strings.Index(v, "public.customer · 10 cols") > strings.Index(v, "public.actor") {
		t.Error("the named table is not listed first")
	}
	// Not at 80 columns: the editor has the width.
	run(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	if strings.Contains(m.View(), "22 tables") {
		t.Error("schema panel shown at 80 columns")
	}
}

// The guided form builds the naive SQL from the schema and plans it: the
// same plan as typing the SQL.
func TestGuidedFormSamePlan(t *testing.T) {
	m := newTestModel(t, "")
	run(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	drain(m, m.Init())
	keys(m, "ctrl+g")
	if !m.forming {
		t.Fatal("ctrl+g did not open the form")
	}
	// Table: filter to customer.
	for _, r := range "public.customer" {
		keys(m, string(r))
	}
	if v := m.View(); !strings.Contains(v, "› public.customer") {
		t.Fatalf("customer not selected after filtering:\n%s", v)
	}
	keys(m, "enter")
	keys(m, "r", "e", "n", "a", "m", "e", " ", "c", "o", "l") // "rename column"
	keys(m, "enter")
	keys(m, "e", "m", "a", "i", "l")
	keys(m, "enter")
	if m.form.stage != stageParam {
		t.Fatalf("stage %d after picking the column, want the parameter", m.form.stage)
	}
	for _, r := range "email_address" {
		keys(m, string(r))
	}
	if v := m.View(); !strings.Contains(v, "ALTER TABLE public.customer RENAME COLUMN email TO email_address;") {
		t.Fatalf("statement preview missing:\n%s", v)
	}
	keys(m, "enter")
	if m.forming || m.Screen() != "Review" || m.Plan() == nil {
		t.Fatalf("after the form: forming %v, screen %s, plan %v, planErr %v", m.forming, m.Screen(), m.Plan() != nil, m.planErr)
	}
	typed, err := pagilaBackend().Plan(context.Background(), renameSQL)
	if err != nil {
		t.Fatal(err)
	}
	// The inputs differ only in spelling; the steps are the same.
	got, want := m.Plan().Steps(), typed.Steps()
	if len(got) != len(want) {
		t.Fatalf("%d steps from the form, %d typed", len(got), len(want))
	}
	for i := range got {
		if got[i].Step.ID != want[i].Step.ID || got[i].Step.SQL != want[i].Step.SQL {
			t.Errorf("step %d: form %s %q, typed %s %q", i, got[i].Step.ID, got[i].Step.SQL, want[i].Step.ID, want[i].Step.SQL)
		}
	}
	if m.compose.Value() != "ALTER TABLE public.customer RENAME COLUMN email TO email_address;" {
		t.Errorf("editor holds %q", m.compose.Value())
	}
}

// A parameter that does not parse keeps the form open with the error; esc
// walks back and finally closes it.
func TestGuidedFormBadParam(t *testing.T) {
	m := newTestModel(t, "")
	run(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	drain(m, m.Init())
	keys(m, "ctrl+g")
	for _, r := range "public.film" {
		keys(m, string(r))
	}
	keys(m, "enter")
	for _, r := range "change column type" {
		keys(m, string(r))
	}
	keys(m, "enter")
	for _, r := range "length" {
		keys(m, string(r))
	}
	keys(m, "enter")
	for _, r := range "big int(" {
		keys(m, string(r))
	}
	keys(m, "enter")
	if !m.forming || m.form.err == "" {
		t.Fatalf("bad type accepted: forming %v, err %q", m.forming, m.form.err)
	}
	if v := m.View(); !strings.Contains(v, "error: syntax error") {
		t.Fatalf("error not shown:\n%s", v)
	}
	keys(m, "esc", "esc", "esc", "esc")
	if m.forming {
		t.Fatalf("esc x4 did not close the form (stage %d)", m.form.stage)
	}
	if m.Plan() != nil {
		t.Fatal("a plan was made")
	}
}

func TestGoldenForm(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			tm := teatest.NewTestModel(t, newTestModel(t, ""), teatest.WithInitialTermSize(sz.w, sz.h))
			waitScreen(t, tm, "guided form")
			tm.Send(tea.KeyMsg{Type: tea.KeyCtrlG})
			tm.Type("customer")
			tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
			tm.Send(tea.KeyMsg{Type: tea.KeyDown})
			waitScreen(t, tm, "Pick the change", "› change column type")
			_, view := finalView(t, tm)
			golden.RequireEqual(t, []byte(view))
		})
	}
}

// esc or ? closes the help overlay and does nothing else.
func TestHelpOverlayCloses(t *testing.T) {
	m := newTestModel(t, renameSQL)
	run(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	keys(m, "ctrl+p", "?")
	if !m.showHelp || !strings.Contains(m.View(), "any key closes this") {
		t.Fatal("? did not open the help overlay")
	}
	keys(m, "esc")
	if m.showHelp || m.Screen() != "Review" {
		t.Fatalf("after esc: help %v, screen %s", m.showHelp, m.Screen())
	}
	keys(m, "?", "?")
	if m.showHelp {
		t.Fatal("? did not close the overlay")
	}
	keys(m, "?", "j") // any other key closes it and acts
	if m.showHelp {
		t.Fatal("j did not close the overlay")
	}
}
