package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/plans"
)

// The run screen steps a plan through the live database with the apply
// engine, one deploy per key press: the engine runs in a tea.Cmd (off the
// UI loop) and its events come back as messages through a channel, so no
// key press ever waits on the database. Between key presses no engine is
// open and nothing is held: quitting leaves the run resumable, and
// opening the plan again (here or with cutover apply) goes on from the
// state the engine keeps in the database.

// Step states as the run screen shows them.
const (
	stPending     = "pending"
	stRunning     = "running"
	stRetrying    = "retrying"
	stDone        = "done"
	stFailed      = "failed"
	stInterrupted = "interrupted"
	stChecking    = "checking usage"
)

// App release states.
const (
	appPending   = "pending"
	appWaiting   = "waiting"
	appConfirmed = "confirmed"
)

type dialogKind int

const (
	dlgNone dialogKind = iota
	// dlgConfirm: run the next database deploy? (y/n)
	dlgConfirm
	// dlgTyped: type the table's name to run an irreversible step.
	dlgTyped
	// dlgApp: the application release's checklist, to confirm (y/n).
	dlgApp
	// dlgQuit: quit while a step runs? (y/n)
	dlgQuit
	// dlgAbort: abort the running deploy? (y/n)
	dlgAbort
)

type runDeploy struct {
	number int
	phase  plans.PhaseName
	d      *plans.Deploy
}

type runStep struct {
	status   string
	attempts int
	dur      time.Duration
	gate     *db.GateResult
	gateText string // "passed" / "failed" from the state
	// msg is shown under the step: the retry, the error, the usage check.
	msg string
}

type logLine struct {
	at   time.Time
	text string
	// progress is the step of a backfill progress line: the next one of
	// the same step replaces it (one line per backfill, as headless
	// output prints one every two seconds).
	progress string
}

// runModel is the run screen's state; the root model drives it (the
// engine's events change it, keys open its dialogs).
type runModel struct {
	st      styles
	plan    *plans.Plan
	deploys []runDeploy
	steps   map[string]*runStep
	apps    map[int]string
	// next indexes deploys: the deploy the next key press runs;
	// len(deploys) when the plan is done.
	next int
	// current is the step the engine works on ("" between steps).
	current string

	loading  bool
	running  bool
	quitting bool
	// seq numbers engine runs; events of an older one are dropped.
	seq int
	// runningDeploy is the deploy the engine runs now.
	runningDeploy int
	cancel        context.CancelFunc
	// done is closed when the engine of the latest run has stopped.
	done   chan struct{}
	pause  *db.PauseSwitch
	paused bool

	backfill     *db.BackfillProgress
	backfillStep string

	log []logLine
	// note says what the state said when the screen opened (resume,
	// another session holding the plan); status is how the last run
	// ended; err is its error, one line.
	note   string
	status string
	err    string

	// read is set once the state was read (the first read resumes,
	// later ones follow runs).
	read bool

	dialog   dialogKind
	input    textinput.Model
	inputErr string
	// typedName is the name the typed confirmation wants.
	typedName string

	width, height int
}

func newRun(st styles) runModel {
	in := textinput.New()
	in.Prompt = "> "
	in.CharLimit = 128
	return runModel{st: st, input: in}
}

// SetPlan shows p with every step pending (the state is read next).
func (r *runModel) SetPlan(p *plans.Plan) {
	r.plan = p
	r.deploys = r.deploys[:0]
	r.steps = map[string]*runStep{}
	r.apps = map[int]string{}
	r.next, r.current = 0, ""
	r.backfill, r.backfillStep = nil, ""
	r.log, r.note, r.status, r.err = nil, "", "", ""
	r.dialog = dlgNone
	r.read = false
	n := 0
	for pi := range p.Phases {
		ph := &p.Phases[pi]
		for di := range ph.Deploys {
			n++
			d := &ph.Deploys[di]
			r.deploys = append(r.deploys, runDeploy{number: n, phase: ph.Name, d: d})
			if d.Kind == plans.App {
				r.apps[n] = appPending
			}
			for si := range d.Steps {
				r.steps[d.Steps[si].ID] = &runStep{status: stPending}
			}
		}
	}
}

func (r *runModel) SetSize(w, h int) {
	r.width, r.height = w, h
	r.input.Width = max(min(w-16, 60), 10)
}

// applyReport takes the state of the run from the database: where it
// stands, and so where the next key press resumes.
func (r *runModel) applyReport(rep *db.RunReport) {
	r.note = ""
	if rep == nil || rep.Run == nil {
		r.note = "not applied to this database yet: enter runs the first deploy"
		r.computeNext()
		return
	}
	run := rep.Run
	if run.Hash != rep.Hash {
		r.err = fmt.Sprintf("this database has a run of a different plan for the same change (content %.12s there, %.12s here): finish or roll back that run first", run.Hash, rep.Hash)
	}
	done := 0
	for id, s := range r.steps {
		st := rep.Steps[id]
		if st == nil {
			continue
		}
		s.status = st.Status
		switch {
		case st.Status == "running" && rep.Holder == "":
			s.status = stInterrupted
			s.msg = "interrupted; its work is checked against the catalog when it runs again"
			if r.stepPlan(id).Backfill != nil {
				s.msg = "interrupted; it resumes after its last committed batch"
			}
		case st.Status == "failed" && st.Error != "":
			s.msg = st.Error
		case st.Status == "done":
			done++
		}
		s.attempts, s.dur, s.gateText = st.Attempts, st.Duration, st.Gate
	}
	for n, a := range rep.Apps {
		if _, ok := r.apps[n]; !ok {
			continue
		}
		if a.ConfirmedAt != nil {
			r.apps[n] = appConfirmed
		} else {
			r.apps[n] = appWaiting
		}
	}
	r.computeNext()
	verb := "resuming"
	switch {
	case run.Status == "done":
		verb = "applied"
	case r.read:
		verb = "state"
	}
	r.read = true
	r.note = fmt.Sprintf("%s: %d of %d steps done; run started by %s from %s at %s (status %s)",
		verb, done, len(r.steps), run.StartedBy, run.ClientHost, run.StartedAt.Format("2006-01-02 15:04"), run.Status)
	if rep.Holder != "" {
		r.note = "being applied now by " + rep.Holder + ": wait for it to finish before running here"
	}
}

// stepPlan returns the plan's step with the id.
func (r *runModel) stepPlan(id string) *plans.Step {
	for _, d := range r.deploys {
		for si := range d.d.Steps {
			if d.d.Steps[si].ID == id {
				return &d.d.Steps[si]
			}
		}
	}
	return nil
}

// computeNext finds the first deploy not complete: a database deploy
// with a step not done (or whose gate has not passed), or an application
// release not confirmed.
func (r *runModel) computeNext() {
	r.next = len(r.deploys)
	for i, d := range r.deploys {
		if d.d.Kind == plans.App {
			if r.apps[d.number] != appConfirmed {
				r.next = i
				return
			}
			continue
		}
		for si := range d.d.Steps {
			s := &d.d.Steps[si]
			st := r.steps[s.ID]
			if st.status != stDone || (s.Gate != nil && st.gateText != "passed" && (st.gate == nil || !st.gate.Passed)) {
				r.next = i
				return
			}
		}
	}
}

// nextDeploy is the deploy the next key press runs, nil when done.
func (r *runModel) nextDeploy() *runDeploy {
	if r.next < len(r.deploys) {
		return &r.deploys[r.next]
	}
	return nil
}

// irreversible returns the first irreversible step of d not done yet.
func (r *runModel) irreversible(d *runDeploy) *plans.Step {
	for si := range d.d.Steps {
		s := &d.d.Steps[si]
		if s.Irreversible && r.steps[s.ID].status != stDone {
			return s
		}
	}
	return nil
}

// event applies one engine event.
func (r *runModel) event(ev db.ApplyEvent) {
	s := r.steps[ev.StepID]
	line := logLine{at: ev.Time, text: eventSubject(ev) + ": " + oneLineText(ev.Message)}
	if ev.Kind == db.EventBackfillProgress && ev.Backfill != nil && !ev.Backfill.Done && !ev.Backfill.Paused {
		line.progress = ev.StepID
	}
	if n := len(r.log); n > 0 && line.progress != "" && r.log[n-1].progress == line.progress {
		r.log[n-1] = line
	} else {
		r.addLog(line)
	}
	switch ev.Kind {
	case db.EventStepStarted:
		r.current = ev.StepID
		if s != nil {
			s.status, s.msg = stRunning, ""
			s.attempts = max(s.attempts, ev.Attempt)
		}
	case db.EventStepRetry:
		if s != nil {
			s.status, s.msg = stRetrying, oneLineText(ev.Message)
		}
	case db.EventStepDone, db.EventStepSkipped:
		if s != nil {
			s.status, s.msg, s.dur = stDone, "", ev.Duration
		}
		if r.current == ev.StepID {
			r.current = ""
		}
	case db.EventStepFailed:
		if s != nil {
			s.status, s.msg = stFailed, oneLineText(ev.Message)
		}
	case db.EventRepair:
		if s != nil {
			s.msg = oneLineText(ev.Message)
		}
	case db.EventUsageCheck:
		// The usage check before a removal: it may wait for the
		// observation window.
		r.current = ev.StepID
		if s != nil {
			s.status, s.msg = stChecking, oneLineText(ev.Message)
		}
	case db.EventGate:
		if s != nil && ev.Gate != nil {
			s.gate = ev.Gate
			s.gateText = "failed"
			if ev.Gate.Passed {
				s.gateText = "passed"
			}
		}
	case db.EventBackfillProgress:
		if s != nil && s.status == stRetrying {
			// The retried batch committed.
			s.status, s.msg = stRunning, ""
		}
		if ev.Backfill != nil {
			b := *ev.Backfill
			r.backfill, r.backfillStep = &b, ev.StepID
			if b.Paused {
				r.paused = true
			} else if !b.Done {
				r.paused = false
			}
		}
	case db.EventWaitingForApp:
		r.apps[ev.Deploy] = appWaiting
		r.current = ""
	case db.EventAppConfirmed:
		r.apps[ev.Deploy] = appConfirmed
	}
}

func (r *runModel) addLog(l logLine) {
	const keep = 200
	r.log = append(r.log, l)
	if len(r.log) > keep {
		r.log = append(r.log[:0], r.log[len(r.log)-keep:]...)
	}
}

func eventSubject(ev db.ApplyEvent) string {
	switch {
	case ev.StepID != "":
		return ev.StepID
	case ev.Deploy > 0:
		return fmt.Sprintf("deploy %d", ev.Deploy)
	}
	return "run"
}

func oneLineText(s string) string { return strings.Join(strings.Fields(s), " ") }

// shortID is a step id's prefix for chart markers: "E1" of
// "E1-add-column-email-address".
func shortID(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return id
}

// Messages of the run screen.
type (
	// runStateMsg is the state read when the screen opens or after a run.
	runStateMsg struct {
		plan   *plans.Plan
		report *db.RunReport
		err    error
	}
	// runEventMsg is one engine event of run seq.
	runEventMsg struct {
		seq int
		ev  db.ApplyEvent
	}
	// runDoneMsg says run seq's engine stopped.
	runDoneMsg struct {
		seq int
		out *db.Outcome
		err error
	}
)

// runner is the backend's run side, nil offline.
func (m *Model) runner() Runner {
	r, _ := m.backend.(Runner)
	return r
}

// openRun shows the run screen for the reviewed plan and reads its run's
// state (so a run in progress resumes at the right step).
func (m *Model) openRun() tea.Cmd {
	rn := m.runner()
	if rn == nil || m.plan == nil {
		return nil
	}
	m.screen = screenRun
	if m.run.plan != m.plan {
		m.run.SetPlan(m.plan)
	}
	m.layout()
	if m.run.running {
		return nil
	}
	return m.readRun()
}

func (m *Model) readRun() tea.Cmd {
	rn, p, ctx := m.runner(), m.run.plan, m.ctx
	m.run.loading = true
	return func() tea.Msg {
		rep, err := rn.ReadRun(ctx, p)
		return runStateMsg{plan: p, report: rep, err: err}
	}
}

// runUpdate handles the run screen's messages; ok is false for others.
func (m *Model) runUpdate(msg tea.Msg) (tea.Cmd, bool) {
	r := &m.run
	switch msg := msg.(type) {
	case runStateMsg:
		if msg.plan != r.plan || r.running {
			return nil, true
		}
		r.loading = false
		if msg.err != nil {
			r.err = "cannot read the run's state: " + oneLineText(msg.err.Error())
			return nil, true
		}
		r.applyReport(msg.report)
		m.syncKeys()
		return nil, true
	case runEventMsg:
		if msg.seq != r.seq {
			return nil, true
		}
		r.event(msg.ev)
		switch msg.ev.Kind {
		case db.EventStepStarted:
			m.panes.Mark(Marker{At: msg.ev.Time, Label: shortID(msg.ev.StepID) + " start"})
		case db.EventStepDone:
			m.panes.Mark(Marker{At: msg.ev.Time, Label: shortID(msg.ev.StepID) + " end"})
		case db.EventStepFailed:
			m.panes.Mark(Marker{At: msg.ev.Time, Label: shortID(msg.ev.StepID) + " failed"})
		}
		m.syncKeys()
		return nil, true
	case runDoneMsg:
		if msg.seq != r.seq {
			return nil, true
		}
		r.running, r.cancel, r.paused = false, nil, false
		r.current = ""
		m.runFinished(msg.out, msg.err)
		if r.quitting {
			return tea.Quit, true
		}
		m.syncKeys()
		// The state says where the run stands now; the schema changed.
		b, ctx := m.backend, m.ctx
		reload := func() tea.Msg {
			s, err := b.Schema(ctx)
			return schemaMsg{schema: s, err: err}
		}
		return tea.Batch(m.readRun(), reload, m.listRuns()), true
	}
	return nil, false
}

// runFinished records how the engine stopped.
func (m *Model) runFinished(out *db.Outcome, err error) {
	r := &m.run
	if err != nil {
		var ae *db.ApplyError
		if errors.As(err, &ae) && ae.Kind == db.Interrupted {
			r.status = "aborted: the database is consistent and the run resumable (enter goes on from where it stopped)"
			r.err = ""
			return
		}
		r.status = ""
		r.err = oneLineText(err.Error())
		return
	}
	r.err = ""
	switch out.Status {
	case "done":
		r.status = "plan applied: every step is done"
	case "waiting":
		r.status = fmt.Sprintf("waiting for application release %d: %s", out.WaitingDeploy, out.Waiting.Title)
	default:
		r.status = "deploy done"
	}
}

// startRun runs the engine through deploy d in a tea.Cmd; its events come
// back as runEventMsgs through ch, then a runDoneMsg.
func (m *Model) startRun(d *runDeploy, req RunRequest) tea.Cmd {
	rn := m.runner()
	r := &m.run
	r.seq++
	r.running, r.paused, r.status, r.err = true, false, "", ""
	r.backfill, r.backfillStep = nil, ""
	r.runningDeploy = d.number
	ctx, cancel := context.WithCancel(m.ctx)
	r.cancel = cancel
	r.pause = db.NewPauseSwitch()
	seq, p := r.seq, r.plan
	ch := make(chan tea.Msg, 256)
	req.ThroughDeploy = d.number
	req.Pause = r.pause
	req.OnEvent = func(ev db.ApplyEvent) { ch <- runEventMsg{seq: seq, ev: ev} }
	done := make(chan struct{})
	r.done = done
	apply := func() tea.Msg {
		defer close(done)
		defer cancel()
		out, err := rn.Apply(ctx, p, req)
		ch <- runDoneMsg{seq: seq, out: out, err: err}
		close(ch)
		return nil
	}
	m.syncKeys()
	return tea.Batch(apply, listen(ch))
}

// WaitRun waits up to d for the engine of a running deploy to stop (after
// the program ended: a cancelled context stops it); it reports whether no
// engine is left running.
func (m *Model) WaitRun(d time.Duration) bool {
	if m.run.done == nil {
		return true
	}
	select {
	case <-m.run.done:
		return true
	case <-time.After(d):
		return false
	}
}

// listen delivers the next message of ch, then listens again.
func listen(ch <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		msg, ok := <-ch
		if !ok {
			return nil
		}
		return listenedMsg{msg: msg, next: listen(ch)}
	}
}

// listenedMsg wraps a channel message with the command reading the next.
type listenedMsg struct {
	msg  tea.Msg
	next tea.Cmd
}

// runKeyFirst handles the keys that must reach the run screen before any
// other: its dialogs, and quitting while a step runs. handled is false
// when the key is not for it.
func (m *Model) runKeyFirst(msg tea.KeyMsg) (tea.Cmd, bool) {
	r := &m.run
	k := &m.keys
	quit := msg.String() == "ctrl+c" || (key.Matches(msg, k.Quit) && r.dialog != dlgTyped)
	if r.dialog != dlgNone {
		return m.dialogKey(msg), true
	}
	if r.running && quit {
		r.dialog = dlgQuit
		m.showHelp = false
		return nil, true
	}
	if m.screen != screenRun || m.showHelp {
		return nil, false
	}
	switch {
	case key.Matches(msg, k.RunNext):
		return m.askRunNext(), true
	case key.Matches(msg, k.RunPause):
		if r.running && r.pause != nil && r.pause.InBackfill() {
			if r.pause.Paused() {
				r.pause.Resume()
				r.paused = false
				m.flash = "backfill resumed"
			} else {
				r.pause.Pause()
				r.paused = true
				m.flash = "pausing the backfill after its current batch"
			}
		}
		return nil, true
	case key.Matches(msg, k.RunAbort):
		if r.running {
			r.dialog = dlgAbort
		}
		return nil, true
	case key.Matches(msg, k.RunBack):
		if !r.running {
			m.screen = screenReview
			m.layout()
		}
		return nil, true
	}
	return nil, false
}

// askRunNext opens the dialog for the next deploy.
func (m *Model) askRunNext() tea.Cmd {
	r := &m.run
	if r.running || r.loading {
		return nil
	}
	d := r.nextDeploy()
	if d == nil {
		m.flash = "the plan is applied: nothing left to run"
		return nil
	}
	switch {
	case d.d.Kind == plans.App:
		r.dialog = dlgApp
	case r.irreversible(d) != nil:
		s := r.irreversible(d)
		r.typedName = s.Table
		if r.typedName == "" {
			r.typedName = s.ID
		}
		r.dialog = dlgTyped
		r.inputErr = ""
		r.input.SetValue("")
		return r.input.Focus()
	default:
		r.dialog = dlgConfirm
	}
	return nil
}

// dialogKey handles a key while a dialog is open.
func (m *Model) dialogKey(msg tea.KeyMsg) tea.Cmd {
	r := &m.run
	k := &m.keys
	// The bindings' keys, enabled or not: an open dialog has every key
	// (the locks pane's focus may have disabled the bindings).
	yes, no := slices.Contains(k.Yes.Keys(), msg.String()), slices.Contains(k.No.Keys(), msg.String())
	switch r.dialog {
	case dlgConfirm:
		if yes {
			r.dialog = dlgNone
			return m.startRun(r.nextDeploy(), RunRequest{})
		}
	case dlgApp:
		if yes {
			r.dialog = dlgNone
			d := r.nextDeploy()
			return m.startRun(d, RunRequest{ConfirmApp: d.number})
		}
	case dlgTyped:
		switch {
		case msg.Type == tea.KeyEsc:
			r.dialog = dlgNone
			r.input.Blur()
			return nil
		case msg.Type == tea.KeyEnter:
			got := strings.TrimSpace(r.input.Value())
			if got != r.typedName {
				r.inputErr = fmt.Sprintf("%q is not %s: nothing was run; type the name exactly, or esc", got, r.typedName)
				r.input.SetValue("")
				return nil
			}
			r.dialog = dlgNone
			r.input.Blur()
			return m.startRun(r.nextDeploy(), RunRequest{ConfirmIrreversible: []string{r.typedName}})
		case msg.String() == "ctrl+c":
			// Nothing runs while the name is typed.
			r.dialog = dlgNone
			return tea.Quit
		}
		var cmd tea.Cmd
		r.input, cmd = r.input.Update(msg)
		return cmd
	case dlgQuit:
		if yes || msg.String() == "ctrl+c" {
			r.dialog = dlgNone
			if !r.running {
				return tea.Quit
			}
			r.quitting = true
			r.cancel()
			if r.pause != nil {
				r.pause.Resume()
			}
			m.flash = "stopping: the engine records where the run stopped, then cutover quits"
			return nil
		}
	case dlgAbort:
		if yes {
			r.dialog = dlgNone
			if r.running {
				r.cancel()
				m.flash = "aborting: the running statement is cancelled; committed work stays"
			}
			return nil
		}
	}
	if no {
		r.dialog = dlgNone
	}
	return nil
}

// syncRunKeys enables the run screen's bindings (called by syncKeys).
func (m *Model) syncRunKeys() {
	k := &m.keys
	r := &m.run
	on := m.screen == screenRun && !m.exporting && !m.forming
	dlg := on && r.dialog != dlgNone
	k.Run.SetEnabled(m.screen == screenReview && !m.exporting && !m.forming && m.plan != nil && m.runner() != nil)
	k.RunNext.SetEnabled(on && !dlg && !r.running && r.nextDeploy() != nil)
	k.RunPause.SetEnabled(on && !dlg && r.running && r.backfill != nil && !r.backfill.Done)
	k.RunAbort.SetEnabled(on && !dlg && r.running)
	k.RunBack.SetEnabled(on && !dlg && !r.running)
	k.Yes.SetEnabled(dlg && r.dialog != dlgTyped)
	k.No.SetEnabled(dlg && r.dialog != dlgTyped)
	k.Submit.SetEnabled(dlg && r.dialog == dlgTyped)
	if on {
		k.Screen.SetEnabled(false)
		k.Help.SetEnabled(r.dialog != dlgTyped)
	}
	if on && r.dialog == dlgTyped {
		// q is text here.
		k.Quit.SetKeys("ctrl+c")
		k.Quit.SetHelp("ctrl+c", "quit")
	}
}

// View draws the run screen: the plan with each step's state, the
// current activity (backfill progress, the outcome) and the engine's
// events. An open dialog is drawn by the root model over whatever is on
// screen (Model.View), so that it is seen whatever the layout.
func (r *runModel) View() string {
	if r.plan == nil {
		return r.st.frame("Run", r.st.muted.Render("No plan yet."), r.width, r.height, false)
	}
	w, h := r.width, r.height
	var body string
	if w >= 120 {
		lw := min(76, w*9/20)
		rw := w - lw
		sh := min(10, h/2)
		list := r.st.frame(r.listTitle(), r.listView(lw-2, h-3), lw, h, true)
		status := r.st.frame(r.statusTitle(), r.statusView(rw-2), rw, sh, false)
		events := r.st.frame("Events", r.logView(rw-2, h-sh-3), rw, h-sh, false)
		body = joinH(list, status+"\n"+events)
	} else {
		// The status box as tall as its lines (4 to 8), the list as tall
		// as the plan, the events in what is left (when 4 lines or more;
		// else the list has it, less one line for the latest event: what
		// the engine did last is always in view).
		sh := min(max(strings.Count(r.statusView(w-2), "\n")+4, 4), 8)
		lh := min(r.listLines(w-2)+3, max(h-sh, 4))
		eh := h - lh - sh
		last := 0
		if eh < 4 {
			lh += eh
			eh = 0
			if len(r.log) > 0 && lh > 4 {
				lh, last = lh-1, 1
			}
		}
		parts := []string{
			r.st.frame(r.listTitle(), r.listView(w-2, lh-3), w, lh, true),
			r.st.frame(r.statusTitle(), r.statusView(w-2), w, sh, false),
		}
		if eh > 0 {
			parts = append(parts, r.st.frame("Events", r.logView(w-2, eh-3), w, eh, false))
		}
		if last > 0 {
			parts = append(parts, padRight(r.st.label.Render("last event ")+r.logView(w-12, 1), w))
		}
		body = strings.Join(parts, "\n")
	}
	return body
}

// line is the run in one line of w cells, for when the live panes take
// the screen's place: where the run stands, the backfill's progress, the
// last error, and that v brings the run screen back.
func (r *runModel) line(w int) string {
	parts := []string{r.st.title.Render(r.statusTitle())}
	if b := r.backfill; b != nil && r.running && !b.Done {
		p := "backfill " + thousandsInt(b.Rows) + " rows"
		if b.Estimated > 0 {
			p += fmt.Sprintf(" (%.0f%%)", min(float64(b.Rows)/float64(b.Estimated), 1)*100)
		}
		if r.paused {
			p += " paused"
		}
		parts = append(parts, p)
	}
	if r.err != "" {
		parts = append(parts, r.st.err.Render("error: ")+r.err)
	}
	parts = append(parts, r.st.muted.Render("v shows the run"))
	return padRight(strings.Join(parts, " · "), w)
}

func (r *runModel) listTitle() string {
	done, all := 0, len(r.steps)
	for _, s := range r.steps {
		if s.status == stDone {
			done++
		}
	}
	return fmt.Sprintf("Run: %d of %d steps done", done, all)
}

// listRows renders the plan's lines, and the index of the current one.
func (r *runModel) listRows(w int) ([]string, int) {
	var rows []string
	cur := -1
	var phase plans.PhaseName
	for i := range r.deploys {
		d := &r.deploys[i]
		if d.phase != phase {
			phase = d.phase
			rows = append(rows, r.st.label.Render(strings.ToUpper(string(phase))))
		}
		kind, state := "db ", ""
		if d.d.Kind == plans.App {
			kind = "app"
			state = r.apps[d.number]
		}
		line := fmt.Sprintf("%d/%d %s %s", d.number, len(r.deploys), kind, d.d.Title)
		if state != "" {
			line += " · " + state
		}
		isNext := i == r.next && r.current == ""
		if isNext {
			cur = len(rows)
			if r.running {
				line = "▶ " + line
			} else {
				line = "› " + line + " ← next"
			}
		} else {
			line = "  " + line
		}
		rows = append(rows, line)
		for si := range d.d.Steps {
			s := &d.d.Steps[si]
			st := r.steps[s.ID]
			mark := map[string]string{stPending: "·", stRunning: "▶", stRetrying: "↻", stDone: "✓", stFailed: "✗", stInterrupted: "!", stChecking: "…"}[st.status]
			if mark == "" {
				mark = "·"
			}
			text := fmt.Sprintf("    %s %s %s", mark, s.ID, st.status)
			if st.status == stDone && st.dur > 0 {
				text += " " + durText(st.dur)
			}
			if s.Irreversible && st.status != stDone {
				text += " · irreversible"
			}
			if s.ID == r.current {
				cur = len(rows)
			}
			rows = append(rows, text)
			if s.Gate != nil && st.gateText != "" {
				g := "      gate " + st.gateText + ": " + s.Gate.Description
				if st.gate != nil {
					g += " (returned " + st.gate.Value + ")"
				}
				rows = append(rows, r.st.muted.Render(g))
			}
			if st.msg != "" {
				style := r.st.muted
				if st.status == stFailed || st.status == stRetrying {
					style = r.st.err
				}
				for _, l := range strings.Split(wrap("↳ "+st.msg, max(w-6, 10)), "\n") {
					rows = append(rows, "      "+style.Render(l))
				}
			}
		}
	}
	return rows, cur
}

func (r *runModel) listLines(w int) int {
	rows, _ := r.listRows(w)
	return len(rows)
}

func (r *runModel) listView(w, h int) string {
	rows, cur := r.listRows(w)
	off := 0
	if cur >= h {
		off = min(cur-h/2, len(rows)-h)
	}
	var sb strings.Builder
	for i := off; i < len(rows) && i < off+h; i++ {
		line := rows[i]
		if i == cur {
			line = r.st.selected.Render(padRight(line, w))
		}
		if i > off {
			sb.WriteByte('\n')
		}
		sb.WriteString(line)
	}
	return sb.String()
}

func (r *runModel) statusTitle() string {
	switch {
	case r.loading:
		return "Run · reading the run's state…"
	case r.running && r.current != "":
		return fmt.Sprintf("Run · deploy %d/%d · %s %s", r.runningDeploy, len(r.deploys), r.current, r.steps[r.current].status)
	case r.running:
		return fmt.Sprintf("Run · deploy %d/%d", r.runningDeploy, len(r.deploys))
	}
	if d := r.nextDeploy(); d != nil {
		if d.d.Kind == plans.App && r.apps[d.number] == appWaiting {
			return fmt.Sprintf("Run · waiting for application release %d/%d", d.number, len(r.deploys))
		}
		return fmt.Sprintf("Run · next: deploy %d/%d (%s)", d.number, len(r.deploys), d.d.Title)
	}
	return "Run · done"
}

// statusView is the current activity: the backfill's progress, the
// outcome of the last run or its error, what the state said.
func (r *runModel) statusView(w int) string {
	var lines []string
	if r.err != "" {
		lines = append(lines, strings.Split(wrap(r.st.err.Render("error: ")+r.err, w), "\n")...)
	}
	if r.status != "" {
		lines = append(lines, r.st.ok.Render(r.status))
	}
	if b := r.backfill; b != nil {
		lines = append(lines, r.backfillView(b, w)...)
	}
	if d := r.nextDeploy(); d != nil && !r.running && d.d.Kind == plans.App && r.apps[d.number] == appWaiting {
		lines = append(lines, "the engine stopped at application release "+fmt.Sprint(d.number)+": deploy it, then enter confirms its checklist")
	}
	if r.running && r.backfill == nil {
		lines = append(lines, "running… (x aborts; the database stays consistent)")
	}
	if r.note != "" && !r.running {
		lines = append(lines, r.st.muted.Render(r.note))
	}
	if len(lines) == 0 && !r.running {
		lines = append(lines, "enter runs the next deploy")
	}
	return strings.Join(lines, "\n")
}

// backfillView is the progress bar with rows, rate, ETA, batch size and
// the throttling reason.
func (r *runModel) backfillView(b *db.BackfillProgress, w int) []string {
	head := "backfill " + b.Table
	if r.backfillStep != "" {
		head = r.backfillStep + " · " + b.Table
	}
	var frac float64 = -1
	if b.Estimated > 0 {
		frac = min(float64(b.Rows)/float64(b.Estimated), 1)
	}
	if b.Done {
		frac = 1
	}
	barW := max(min(w-36, 50), 10)
	bar := progressBar(frac, barW)
	count := fmt.Sprintf("%s rows", thousandsInt(b.Rows))
	if b.Estimated >= 0 {
		count = fmt.Sprintf("%s / ~%s rows", thousandsInt(b.Rows), thousandsInt(b.Estimated))
	}
	pct := "  ?%"
	if frac >= 0 {
		pct = fmt.Sprintf("%3.0f%%", frac*100)
	}
	eta := "—"
	if b.ETA >= 0 {
		eta = durText(b.ETA)
	}
	if b.Done {
		eta = "— (finished)"
	}
	workers := ""
	if b.Workers > 1 {
		workers = fmt.Sprintf(" · %d workers", b.Workers)
	}
	lines := []string{
		head,
		bar + " " + pct + "  " + count,
		fmt.Sprintf("%s rows/s · ETA %s · batch %s keys%s · %s batches · %s elapsed", thousandsInt(int64(b.RowsPerSec)), eta, thousandsInt(int64(b.BatchSize)), workers, thousandsInt(int64(b.Batches)), durText(b.Elapsed)),
	}
	switch {
	case r.paused && r.running:
		lines = append(lines, r.st.warn.Render("paused after its last batch: p resumes, x aborts (committed batches stay)"))
	case b.Throttled != "":
		t := "throttled: " + b.Throttled
		if b.Pause > 0 {
			t += " (pausing " + durText(b.Pause) + ")"
		}
		lines = append(lines, r.st.warn.Render(t))
	default:
		lines = append(lines, r.st.muted.Render("throttle: none (batches at their target duration)"))
	}
	return lines
}

func progressBar(frac float64, w int) string {
	if frac < 0 {
		return "[" + strings.Repeat("░", w) + "]"
	}
	n := int(frac*float64(w) + 0.5)
	return "[" + strings.Repeat("█", n) + strings.Repeat("░", w-n) + "]"
}

func thousandsInt(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// logView is the newest events that fit, oldest first.
func (r *runModel) logView(w, h int) string {
	if len(r.log) == 0 {
		return r.st.muted.Render("the engine's events show here")
	}
	var lines []string
	for i := len(r.log) - 1; i >= 0 && len(lines) < h; i-- {
		l := r.log[i]
		lines = append(lines, r.st.muted.Render(l.at.Format("15:04:05"))+" "+l.text)
	}
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	return strings.Join(lines, "\n")
}

// dialogView is the open dialog: its title, its text, and its last
// lines, which are kept when the terminal is too short for the whole
// text (the input and the keys that answer it).
func (r *runModel) dialogView(where string) (title, text, keep string) {
	title, text = r.dialogText(where)
	if i := strings.LastIndex(text, "\n\n"); i >= 0 {
		text, keep = text[:i], text[i+2:]
	}
	if r.dialog == dlgTyped {
		// The input and its refusal stay with the keys.
		if i := strings.LastIndex(text, "\n\n"); i >= 0 {
			text, keep = text[:i], text[i+2:]+"\n\n"+keep
		}
	}
	return title, text, keep
}

// dialogText is the open dialog's title and text.
func (r *runModel) dialogText(where string) (string, string) {
	d := r.nextDeploy()
	var b strings.Builder
	switch r.dialog {
	case dlgConfirm:
		fmt.Fprintf(&b, "Database: %s\n\n", where)
		for si := range d.d.Steps {
			s := &d.d.Steps[si]
			lock := string(s.Lock)
			if s.Table != "" {
				lock += " on " + s.Table
			}
			fmt.Fprintf(&b, "• %s: %s (%s)\n", s.ID, s.Summary, lock)
		}
		b.WriteString("\ny run it · n not now")
		return fmt.Sprintf("Run deploy %d/%d: %s?", d.number, len(r.deploys), d.d.Title), b.String()
	case dlgTyped:
		s := r.irreversible(d)
		fmt.Fprintf(&b, "Step %s is irreversible: %s\n\n", s.ID, s.IrreversibleReason)
		fmt.Fprintf(&b, "Type %s to run deploy %d/%d on %s:\n\n", r.st.label.Render(r.typedName), d.number, len(r.deploys), where)
		b.WriteString(r.input.View())
		if r.inputErr != "" {
			b.WriteString("\n" + r.st.err.Render("refused: ") + r.inputErr)
		}
		b.WriteString("\n\nenter confirm · esc cancel")
		return "Irreversible step", b.String()
	case dlgApp:
		fmt.Fprintf(&b, "Deploy %d/%d: %s\n\n", d.number, len(r.deploys), d.d.Title)
		b.WriteString("Deploy it everywhere; confirm when every item is done:\n\n")
		for _, in := range d.d.Instructions {
			b.WriteString("[ ] " + oneLineText(in) + "\n")
		}
		b.WriteString("\ny all of this is deployed everywhere · n not yet")
		return "Application release", b.String()
	case dlgQuit:
		b.WriteString("A deploy is running. Quit now?\n\n")
		b.WriteString("The engine cancels the running statement (a backfill keeps its committed batches) and records where the run stopped; it stays resumable: the database keeps the plan with the run, and the compose screen offers to resume it next time (or run cutover apply --plan FILE).\n\n")
		b.WriteString("y quit · n keep running")
		return "Quit?", b.String()
	case dlgAbort:
		b.WriteString("Abort the running deploy?\n\n")
		b.WriteString("The running statement is cancelled (a backfill keeps its committed batches); the table stays consistent and the run resumable: enter goes on.\n\n")
		b.WriteString("y abort · n keep running")
		return "Abort?", b.String()
	}
	return "", ""
}

// overlay draws a dialog box over the middle of body, the screen around
// it still visible. When body is too short for the whole box, the text is
// cut (saying so) and keep, the lines that answer the dialog, stays.
func (r *runModel) overlay(body string, title, text, keep string) string {
	w := min(r.width-4, 80)
	inner := max(w-4, 10)
	lines := strings.Split(body, "\n")
	textLines := strings.Split(wrap(text, inner), "\n")
	keepLines := strings.Split(wrap(keep, inner), "\n")
	// The box: two border lines, the title and a blank line, the text, a
	// blank line, the kept lines.
	room := len(lines) - 4 - 1 - len(keepLines)
	if len(textLines) > room {
		cut := len(textLines) - max(room-1, 0)
		textLines = append(textLines[:max(room-1, 0):max(room-1, 0)],
			r.st.warn.Render(fmt.Sprintf("… %d more lines: a taller terminal shows them", cut)))
	}
	content := r.st.title.Render(title) + "\n\n" + strings.Join(textLines, "\n") + "\n\n" + strings.Join(keepLines, "\n")
	box := strings.Split(r.st.overlay.Width(inner+2).Render(content), "\n")
	if len(box) > len(lines) {
		// Too short even so: the bottom, which answers it, stays.
		box = box[len(box)-len(lines):]
	}
	bw := lipgloss.Width(box[0])
	left := max((r.width-bw)/2, 0)
	top := max((len(lines)-len(box))/2, 0)
	for i, bl := range box {
		if top+i >= len(lines) {
			break
		}
		l := padRight(lines[top+i], r.width)
		lines[top+i] = ansi.Truncate(l, left, "") + bl + ansi.TruncateLeft(l, left+bw, "")
	}
	return strings.Join(lines, "\n")
}

// runsListedMsg is the backend's list of the runs in progress.
type runsListedMsg struct {
	runs []db.RunInProgress
	err  error
}

// listRuns lists the runs in progress on the database, off the UI loop;
// nil offline.
func (m *Model) listRuns() tea.Cmd {
	rl, ok := m.backend.(RunLister)
	if !ok || m.runner() == nil {
		return nil
	}
	ctx := m.ctx
	return func() tea.Msg {
		runs, err := rl.RunsInProgress(ctx)
		return runsListedMsg{runs: runs, err: err}
	}
}

// resumable is the run in progress the resume key opens: the first one
// listed (the most recently updated) with a stored plan.
func (m *Model) resumable() *db.RunInProgress {
	for i := range m.inProgress {
		if m.inProgress[i].Plan != nil {
			return &m.inProgress[i]
		}
	}
	return nil
}

// resumeRun opens the plan stored with the run in progress on the run
// screen, which reads the run's state and so stands at the deploy the
// run goes on with. Its SQL goes in the editor.
func (m *Model) resumeRun() tea.Cmd {
	ip := m.resumable()
	if ip == nil || m.run.running {
		return nil
	}
	p := ip.Plan
	// A plan request still running is for other SQL: drop its answer.
	m.planSeq++
	m.planning, m.planErr = false, nil
	m.plan = p
	m.review.SetPlan(p)
	m.compose.editor.SetValue(p.Input)
	m.compose.seq++
	m.compose.Blur()
	return tea.Batch(m.compose.check(), m.watchPlan(p), m.openRun())
}

// runLines are the compose screen's lines about the runs in progress,
// at most maxRunLines.
func (m *Model) runLines() []string {
	const maxRunLines = 3
	var lines []string
	keyed := m.resumable()
	for i := range m.inProgress {
		if len(lines) == maxRunLines-1 && len(m.inProgress) > maxRunLines {
			lines = append(lines, m.st.muted.Render(fmt.Sprintf("… and %d more runs in progress: %s offers the next once this one is done", len(m.inProgress)-i, m.keys.Resume.Help().Key)))
			break
		}
		r := &m.inProgress[i]
		sql, _, _ := strings.Cut(strings.TrimSpace(r.Input), "\n")
		at := fmt.Sprintf("deploy %d/%d", r.NextDeploy, r.Deploys)
		var where string
		switch {
		case r.Plan == nil:
			where = "no plan stored with it: cutover --db URL --plan FILE resumes it"
		case r.Holder != "":
			where = "at " + at + ", being applied now by " + r.Holder
		case r.Status == "failed":
			where = "failed at " + at
		case r.Status == "waiting":
			where = "waiting at " + at
		case r.Status == "rolling back":
			where = "rolling back"
		case r.Status == "running":
			where = "interrupted at " + at
		default:
			where = "next: " + at
		}
		if r == keyed {
			where += " · " + m.keys.Resume.Help().Key + " resumes it"
		}
		// The SQL last: a narrow terminal clips it, not the key.
		lines = append(lines, m.st.warn.Render("run in progress")+fmt.Sprintf(" · plan %.12s · %s · %s", r.PlanID, where, sql))
	}
	return lines
}
