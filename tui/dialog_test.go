package tui

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/plans"
)

// fakeRunBackend plans offline (pagila) but says it is connected and runs:
// its run was never applied, and Apply reports one backfill progress and
// then runs until cancelled. No database: the model's dialogs and layout
// are what is tested here (the engine is, in run_test.go).
type fakeRunBackend struct{ *OfflineBackend }

func (fakeRunBackend) Connected() bool { return true }

func (fakeRunBackend) ReadRun(ctx context.Context, p *plans.Plan) (*db.RunReport, error) {
	return nil, nil
}

func (fakeRunBackend) Apply(ctx context.Context, p *plans.Plan, req RunRequest) (*db.Outcome, error) {
	t0 := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	req.OnEvent(db.ApplyEvent{Kind: db.EventStepStarted, Time: t0, StepID: "B1-backfill-customer", Deploy: 2, Attempt: 1, Message: "start: Backfill"})
	req.OnEvent(db.ApplyEvent{Kind: db.EventBackfillProgress, Time: t0.Add(time.Second), StepID: "B1-backfill-customer", Deploy: 2, Message: "batch 1: 400 rows",
		Backfill: &db.BackfillProgress{Table: "public.customer", Batches: 1, Rows: 400, Estimated: 6000, BatchSize: 400, RowsPerSec: 400, ETA: 14 * time.Second}})
	<-ctx.Done()
	return nil, &db.ApplyError{Kind: db.Interrupted, Msg: "interrupted", Err: ctx.Err()}
}

// A dialog whose answers are enabled is on screen, whatever the layout:
// at each size, each of the run screen's dialogs (run the next deploy,
// the application release, the typed confirmation of an irreversible
// step, quit and abort while running) and the locks pane's cancel and
// terminate are opened from the plain screen, with the panes shown, after
// the locks pane had the focus, and over the help; after every key press
// the dialog's title and the line of its answers are in View() whenever
// y/n (or enter, typed) are enabled, and those keys are enabled only
// while a dialog is open.
func TestDialogsAlwaysVisible(t *testing.T) {
	for _, sz := range []struct{ w, h int }{{80, 24}, {100, 30}, {160, 48}, {60, 15}} {
		t.Run(strconv.Itoa(sz.w)+"x"+strconv.Itoa(sz.h), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m := New(Options{Backend: fakeRunBackend{pagilaBackend()}, Renderer: asciiRenderer(), SQL: renameSQL, Debounce: time.Millisecond, Context: ctx})
			l := newLoop(t, m, sz.w, sz.h)
			planAndOpenRun(l)
			check := func(stage string) {
				t.Helper()
				v := m.View()
				assertFits(t, v, sz.w, sz.h)
				k := &m.keys
				if !k.Yes.Enabled() && !k.No.Enabled() && !k.Submit.Enabled() {
					if m.run.dialog != dlgNone || m.panes.confirm != nil {
						t.Errorf("%s: a dialog is open but its keys are not enabled:\n%s", stage, v)
					}
					return
				}
				var want []string
				switch {
				case m.run.dialog != dlgNone:
					title, _, keep := m.run.dialogView(m.backend.Source())
					kl := strings.Split(keep, "\n")
					want = []string{title, kl[len(kl)-1]}
				case m.panes.confirm != nil:
					want = []string{"pid " + strconv.Itoa(m.panes.confirm.s.PID) + "?", "y yes, "}
				default:
					t.Fatalf("%s: y/n enabled with no dialog open:\n%s", stage, v)
				}
				for _, w := range want {
					if !strings.Contains(v, w) {
						t.Errorf("%s: y/n or enter are enabled but %q is not on screen:\n%s", stage, w, v)
					}
				}
			}
			press := func(stage string, ks ...string) {
				t.Helper()
				for _, k := range ks {
					l.keys(k)
					check(stage + " " + k)
				}
			}
			// Where the run starts: deploy index i.
			at := func(i int) {
				m.run.next = i
				m.syncKeys()
			}
			// The panes are shown by default on a large terminal.
			base := m.panesVisible()
			for _, layout := range []struct {
				name string
				keys []string
			}{{"plain", nil}, {"after the locks pane", []string{"L", "esc"}}, {"panes shown", []string{"v"}}} {
				stage := layout.name + ":"
				press(stage, layout.keys...)
				at(0)
				press(stage, "enter", "n")
				at(2)
				press(stage, "enter", "n")
				m.Plan().Phases[2].Deploys[0].Steps[0].Irreversible = true
				at(3)
				press(stage, "enter", "c", "esc")
				m.Plan().Phases[2].Deploys[0].Steps[0].Irreversible = false
				// Back to the plain layout for the next one.
				if m.panesVisible() != base {
					press(stage, "v")
				}
			}
			if m.panesVisible() != base || m.panes.focus {
				t.Fatalf("the panes are still shown:\n%s", m.View())
			}

			// The locks pane's questions.
			l.send(SampleMsg{trapSample(1)})
			press("locks pane:", "L", "t", "n", "c", "esc", "esc")
			if m.panesVisible() != base {
				t.Errorf("esc from the locks pane changed the layout:\n%s", m.View())
			}

			// While a deploy runs: quit and abort, plain, with the
			// locks pane focused, over the help, and over the locks pane's
			// question.
			at(1)
			press("running:", "enter", "y")
			l.until("the backfill's progress", func() bool { return m.run.backfill != nil })
			check("running")
			press("running:", "q", "n", "x", "n")
			press("running, locks pane:", "L", "q", "n", "t", "q", "n", "n", "esc")
			press("running, help:", "?", "q", "n")
			press("running, panes shown:", "v", "x", "n", "v")
			if !m.run.running {
				t.Fatal("the deploy stopped")
			}
		})
	}
}

// The reported case at 80x24: L then esc used to leave the panes in the
// screen's place, and enter then asked to run a deploy invisibly. Now esc
// gives the run screen back and the question is on it.
func TestLocksPaneEscRestoresLayout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(Options{Backend: fakeRunBackend{pagilaBackend()}, Renderer: asciiRenderer(), SQL: renameSQL, Debounce: time.Millisecond, Context: ctx})
	l := newLoop(t, m, 80, 24)
	planAndOpenRun(l)
	l.keys("L")
	if !m.panesReplaceBody() || !m.panes.focus {
		t.Fatalf("L at 80x24 should show the focused locks pane:\n%s", m.View())
	}
	l.keys("esc")
	if m.panesVisible() {
		t.Fatalf("esc should give the run screen back:\n%s", m.View())
	}
	if v := m.View(); !strings.Contains(v, "1/4 db  Expand the schema ← next") {
		t.Fatalf("the run screen is not back:\n%s", v)
	}
	l.keys("enter")
	if v := m.View(); !strings.Contains(v, "Run deploy 1/4: Expand the schema?") || !strings.Contains(v, "y run it · n not now") {
		t.Fatalf("the confirmation is not on screen:\n%s", v)
	}
	l.keys("n")
	// Shown with v, the panes stay after the focus.
	l.keys("v", "L", "esc")
	if !m.panesVisible() {
		t.Fatalf("panes shown before the focus were hidden by esc:\n%s", m.View())
	}
}
