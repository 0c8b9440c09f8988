// Package tui is cutover's terminal UI (bubbletea): compose a change,
// review its plan, export the runbook; later, run it with live lock and
// latency panes.
//
// One root Model holds the screen state and what the screens share (size,
// styles, keys, the backend); each screen is a child component with
// SetSize, Update and View. All key bindings live in keys.go. The TUI does
// no database work itself: it calls a Backend from tea.Cmds, so the UI
// loop never waits on a database.
package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/plans"
)

// Options configure the TUI.
type Options struct {
	// Backend plans (and later runs) changes; required.
	Backend Backend
	// Renderer draws the styles; nil means lipgloss's default renderer
	// (standard output, colour profile from the terminal and NO_COLOR).
	Renderer *lipgloss.Renderer
	// SQL is put in the editor at start.
	SQL string
	// Debounce is how long typing must pause before the SQL is parsed;
	// 0 means 150 ms.
	Debounce time.Duration
	// Context bounds the backend calls; nil means context.Background().
	Context context.Context
	// Monitor feeds the live lock and latency panes with samples of the
	// plan's tables, and cancels or terminates sessions from the locks
	// pane (NewLiveMonitor); nil: the panes say they are not connected.
	// The caller closes it after the program ends.
	Monitor Monitor
	// Plan, when set, is shown on the review screen at start (a plan file:
	// the way to resume a run whose schema changes make its SQL plan
	// differently now); its input goes in the editor.
	Plan *plans.Plan
}

type screen int

const (
	screenCompose screen = iota
	screenReview
	screenRun
)

func (s screen) String() string {
	return [...]string{"Compose", "Review", "Run"}[s]
}

// Model is the root model of the TUI.
type Model struct {
	backend Backend
	ctx     context.Context
	st      styles
	keys    keyMap
	help    help.Model

	width, height int
	screen        screen
	showHelp      bool
	exporting     bool
	forming       bool

	compose composeModel
	review  reviewModel
	export  exportModel
	form    formModel
	panes   panesModel
	run     runModel
	// initialPlan is Options.Plan.
	initialPlan *plans.Plan
	// inProgress are the database's runs in progress (RunLister), listed
	// at start and after each run; the compose screen offers to resume
	// them.
	inProgress []db.RunInProgress
	// live is the panes' feed (panes.go).
	live liveState

	plan     *plans.Plan
	planErr  error
	planning bool
	// planSeq numbers plan requests; only the latest one's result is kept.
	planSeq int
	// exportPath is the last path exported to, proposed next time.
	exportPath string
	// flash is a one-line message in the footer until the next key.
	flash string
}

// plannedMsg is the backend's answer to a plan request.
type plannedMsg struct {
	seq  int
	plan *plans.Plan
	err  error
}

// New returns the root model.
func New(o Options) *Model {
	r := o.Renderer
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	if o.Debounce <= 0 {
		o.Debounce = 150 * time.Millisecond
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Plan != nil && o.SQL == "" {
		o.SQL = o.Plan.Input
	}
	st := newStyles(r)
	h := help.New()
	h.Styles = help.Styles{
		Ellipsis:       st.muted,
		ShortKey:       st.label,
		ShortDesc:      st.r.NewStyle(),
		ShortSeparator: st.muted,
		FullKey:        st.label,
		FullDesc:       st.r.NewStyle(),
		FullSeparator:  st.muted,
	}
	m := &Model{
		backend:     o.Backend,
		ctx:         o.Context,
		st:          st,
		keys:        defaultKeys(),
		help:        h,
		compose:     newCompose(st, o.SQL, o.Debounce),
		review:      newReview(st),
		export:      newExport(st),
		form:        newForm(st),
		panes:       newPanes(st, o.Monitor != nil || o.Backend.Connected(), o.Backend.Source()),
		live:        liveState{mon: o.Monitor},
		run:         newRun(st),
		initialPlan: o.Plan,
		exportPath:  DefaultExportPath,
		width:       80,
		height:      24,
	}
	if o.Monitor != nil {
		m.panes.setStatus("connected: waiting for a change naming a table to watch", false)
	}
	m.layout()
	m.syncKeys()
	return m
}

// Init implements tea.Model: check the initial SQL, load the schema.
func (m *Model) Init() tea.Cmd {
	b, ctx := m.backend, m.ctx
	load := func() tea.Msg {
		s, err := b.Schema(ctx)
		return schemaMsg{schema: s, err: err}
	}
	cmds := []tea.Cmd{m.compose.Init(), load, m.listRuns()}
	if p := m.initialPlan; p != nil {
		cmds = append(cmds, func() tea.Msg { return plannedMsg{seq: 0, plan: p} })
	}
	return tea.Batch(cmds...)
}

// Plan is the plan on the review screen, nil before the first one.
func (m *Model) Plan() *plans.Plan { return m.plan }

// Screen names the current screen ("Compose", "Review").
func (m *Model) Screen() string { return m.screen.String() }

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if l, ok := msg.(listenedMsg); ok {
		_, cmd := m.Update(l.msg)
		return m, tea.Batch(cmd, l.next)
	}
	if cmd, ok := m.runUpdate(msg); ok {
		return m, cmd
	}
	switch msg := msg.(type) {
	case runsListedMsg:
		if msg.err != nil {
			// Not worth a screen: the compose screen just offers nothing.
			return m, nil
		}
		m.inProgress = msg.runs
		m.compose.SetRuns(m.runLines())
		m.layout()
		m.syncKeys()
		return m, nil
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		if m.exporting {
			return m, m.export.render()
		}
		return m, nil
	case tea.KeyMsg:
		m.flash = ""
		cmd := m.key(msg)
		m.syncKeys()
		return m, cmd
	case plannedMsg:
		if msg.seq != m.planSeq {
			return m, nil
		}
		m.planning = false
		if msg.err != nil {
			m.planErr = msg.err
			return m, nil
		}
		m.planErr = nil
		m.plan = msg.plan
		m.review.SetPlan(msg.plan)
		m.screen = screenReview
		m.compose.Blur()
		m.layout()
		m.syncKeys()
		return m, m.watchPlan(msg.plan)
	case exportedMsg:
		if msg.err != nil {
			m.export.err = msg.err
			return m, nil
		}
		m.exporting = false
		m.exportPath = msg.path
		m.flash = fmt.Sprintf("wrote the runbook to %s (%d bytes)", msg.path, msg.bytes)
		m.syncKeys()
		return m, nil
	case renderedMsg:
		return m, m.export.Update(msg)
	case formDoneMsg:
		// The form's SQL goes into the editor and is planned like typed
		// SQL: both ways give the same plan.
		m.forming = false
		m.compose.editor.SetValue(msg.sql)
		m.compose.seq++
		cmd := tea.Batch(m.compose.check(), m.startPlan())
		m.syncKeys()
		return m, cmd
	case SampleMsg:
		m.panes.Push(msg.Sample)
		m.relayoutSummary()
		return m, nil
	case monitorStartedMsg, liveSampleMsg, monitorStoppedMsg, monitorRetryMsg, signalledMsg:
		cmd := m.updateLive(msg)
		m.relayoutSummary()
		m.syncKeys()
		return m, cmd
	case checkTickMsg, checkedMsg, schemaMsg:
		cmd := m.compose.Update(msg)
		m.syncKeys()
		if _, tick := msg.(checkTickMsg); !tick {
			// The SQL parsed or the schema came: until there is a plan,
			// the panes watch the tables the SQL names.
			cmd = tea.Batch(cmd, m.watchSQL())
		}
		return m, cmd
	}
	if m.screen == screenCompose {
		return m, m.compose.Update(msg)
	}
	return m, nil
}

// key handles a key press: global keys first, then the dialog or the
// screen that has the focus.
func (m *Model) key(msg tea.KeyMsg) tea.Cmd {
	k := &m.keys
	if cmd, ok := m.runKeyFirst(msg); ok {
		return cmd
	}
	if msg.String() == "ctrl+c" {
		return tea.Quit
	}
	if m.showHelp {
		// Any key closes the overlay; ? and esc only close it.
		m.showHelp = false
		if key.Matches(msg, k.Help) || msg.Type == tea.KeyEsc {
			return nil
		}
	}
	if cmd, ok := m.paneKey(msg); ok {
		return cmd
	}
	if m.forming {
		closeForm, cmd := m.form.Key(msg)
		if closeForm {
			m.forming = false
			return m.compose.Focus()
		}
		return cmd
	}
	if m.exporting {
		switch {
		case key.Matches(msg, k.Cancel):
			m.exporting = false
			return nil
		case key.Matches(msg, k.Write):
			return m.export.Write()
		case key.Matches(msg, k.PrevDn):
			m.export.preview.HalfPageDown()
			return nil
		case key.Matches(msg, k.PrevUp):
			m.export.preview.HalfPageUp()
			return nil
		}
		return m.export.Update(msg)
	}
	switch {
	case key.Matches(msg, k.Plan) && m.screen == screenCompose:
		return m.startPlan()
	case key.Matches(msg, k.Resume) && m.screen == screenCompose:
		return m.resumeRun()
	case key.Matches(msg, k.Form) && m.screen == screenCompose && m.compose.schema != nil:
		m.form.Open(m.compose.schema)
		m.forming = true
		m.compose.Blur()
		return nil
	case key.Matches(msg, k.Screen):
		return m.switchScreen()
	case key.Matches(msg, k.Help) && !m.typing():
		m.showHelp = true
		return nil
	case key.Matches(msg, k.Quit) && !m.typing():
		return tea.Quit
	}
	switch m.screen {
	case screenCompose:
		return m.composeKey(msg)
	case screenReview:
		return m.reviewKey(msg)
	}
	return nil
}

// typing reports whether printable keys are text (the editor has focus).
func (m *Model) typing() bool {
	return (m.screen == screenCompose && m.compose.Focused()) || m.run.dialog == dlgTyped
}

func (m *Model) composeKey(msg tea.KeyMsg) tea.Cmd {
	k := &m.keys
	if m.compose.Focused() {
		if key.Matches(msg, k.Leave) {
			m.compose.Blur()
			return nil
		}
		before := m.compose.Value()
		cmd := m.compose.Update(msg)
		if m.compose.Value() != before {
			m.planErr = nil
		}
		return cmd
	}
	switch {
	case key.Matches(msg, k.Edit):
		return m.compose.Focus()
	case key.Matches(msg, k.Review) && m.plan != nil:
		return m.switchScreen()
	}
	return nil
}

func (m *Model) reviewKey(msg tea.KeyMsg) tea.Cmd {
	k := &m.keys
	r := &m.review
	switch {
	case key.Matches(msg, k.Up):
		r.move(-1)
	case key.Matches(msg, k.Down):
		r.move(1)
	case key.Matches(msg, k.Top):
		r.moveTo(0)
	case key.Matches(msg, k.Bottom):
		r.moveTo(len(r.rows))
	case key.Matches(msg, k.NextStep):
		r.moveToStep(1)
	case key.Matches(msg, k.PrevStep):
		r.moveToStep(-1)
	case key.Matches(msg, k.DetailDn):
		r.detail.HalfPageDown()
	case key.Matches(msg, k.DetailUp):
		r.detail.HalfPageUp()
	case key.Matches(msg, k.Run):
		return m.openRun()
	case key.Matches(msg, k.Export) && m.plan != nil:
		m.exporting = true
		m.layout()
		return m.export.Open(m.plan, m.exportPath)
	case key.Matches(msg, k.Compose):
		return m.switchScreen()
	}
	return nil
}

// startPlan asks the backend for a plan of the editor's SQL.
func (m *Model) startPlan() tea.Cmd {
	sql := m.compose.Value()
	if strings.TrimSpace(sql) == "" {
		m.flash = "nothing to plan: type the change first"
		return nil
	}
	m.planSeq++
	m.planning = true
	m.planErr = nil
	seq, b, ctx := m.planSeq, m.backend, m.ctx
	return func() tea.Msg {
		p, err := b.Plan(ctx, sql)
		return plannedMsg{seq: seq, plan: p, err: err}
	}
}

func (m *Model) switchScreen() tea.Cmd {
	if m.screen == screenCompose {
		m.screen = screenReview
		m.compose.Blur()
		m.layout()
		return nil
	}
	m.screen = screenCompose
	m.layout()
	return m.compose.Focus()
}

// layout sizes the children for the terminal: a header line, the screen,
// the live panes when there is room, and the help bar.
func (m *Model) layout() {
	if m.panes.focus && !m.panesVisible() {
		// The terminal shrank under the focused locks pane.
		m.panes.Focus(false)
		m.syncKeys()
	}
	m.live.summary = m.summaryRows()
	body := max(m.height-2-m.panesHeight()-m.live.summary, 3)
	if m.panesReplaceBody() {
		body = max(m.height-2, 3)
	}
	w := max(m.width, 20)
	m.compose.SetSize(w, body)
	m.review.SetSize(w, body)
	m.export.SetSize(w, body)
	m.form.SetSize(w, body)
	m.panes.SetSize(w, m.panesHeight())
	m.run.SetSize(w, body)
	if m.panesReplaceBody() {
		m.panes.SetSize(w, max(m.height-2-m.runLine(), 3))
	}
	m.help.Width = w
}

// runLine is 1 when the live panes take the run screen's place: a line
// above them then says where the run stands.
func (m *Model) runLine() int {
	if m.screen == screenRun && m.run.plan != nil && m.panesReplaceBody() {
		return 1
	}
	return 0
}

// syncKeys enables the bindings that mean something now, so help lists
// only keys that work.
func (m *Model) syncKeys() {
	k := &m.keys
	modal := m.exporting || m.forming
	compose, review := m.screen == screenCompose && !modal, m.screen == screenReview && !modal
	editing := compose && m.compose.Focused()
	k.Quit.SetEnabled(true)
	if editing || modal {
		k.Quit.SetKeys("ctrl+c")
		k.Quit.SetHelp("ctrl+c", "quit")
	} else {
		k.Quit.SetKeys("ctrl+c", "q")
		k.Quit.SetHelp("q", "quit")
	}
	k.Help.SetEnabled(!modal)
	if editing {
		k.Help.SetKeys("f1")
		k.Help.SetHelp("f1", "help")
	} else {
		k.Help.SetKeys("?", "f1")
		k.Help.SetHelp("?", "help")
	}
	k.Screen.SetEnabled(!modal)
	k.Plan.SetEnabled(compose)
	k.Form.SetEnabled(compose && m.compose.schema != nil)
	k.Resume.SetEnabled(compose && m.resumable() != nil && !m.run.running)
	k.Choose.SetEnabled(m.forming)
	k.Back.SetEnabled(m.forming)
	k.Leave.SetEnabled(editing)
	k.Edit.SetEnabled(compose && !editing)
	k.Review.SetEnabled(compose && !editing && m.plan != nil)
	for _, b := range []*key.Binding{&k.Up, &k.Down, &k.Top, &k.Bottom, &k.NextStep, &k.PrevStep, &k.DetailDn, &k.DetailUp, &k.Compose} {
		b.SetEnabled(review && m.plan != nil)
	}
	k.Compose.SetEnabled(review)
	k.Export.SetEnabled(review && m.plan != nil)
	for _, b := range []*key.Binding{&k.Write, &k.Cancel, &k.PrevDn, &k.PrevUp} {
		b.SetEnabled(m.exporting)
	}
	m.syncRunKeys()
	// Then the focused locks pane overrides the screen's keys, and last
	// an open dialog overrides every other.
	m.syncPaneKeys()
	m.syncDialogKeys()
}

// syncDialogKeys leaves only a dialog's answers enabled while it is open
// (the run screen's dialogs and the locks pane's confirmation take every
// key): the help bar then lists what answers it, and a dialog's keys are
// never enabled without the dialog on screen (View draws it over
// whatever the layout shows).
func (m *Model) syncDialogKeys() {
	r := &m.run
	if r.dialog == dlgNone && m.panes.confirm == nil {
		return
	}
	k := &m.keys
	for _, b := range k.all() {
		b.SetEnabled(false)
	}
	if r.dialog == dlgTyped {
		// Typing: enter confirms, esc cancels, ctrl+c quits (nothing
		// runs while the name is typed).
		k.Submit.SetEnabled(true)
		k.Quit.SetEnabled(true)
		k.Quit.SetKeys("ctrl+c")
		k.Quit.SetHelp("ctrl+c", "quit")
		return
	}
	k.Yes.SetEnabled(true)
	k.No.SetEnabled(true)
	if r.dialog == dlgNone && !r.running {
		// The locks pane's question: ctrl+c still quits.
		k.Quit.SetEnabled(true)
		k.Quit.SetKeys("ctrl+c")
		k.Quit.SetHelp("ctrl+c", "quit")
	}
}

// View implements tea.Model.
func (m *Model) View() string {
	if m.width < 20 || m.height < 6 {
		return "cutover: the terminal is too small"
	}
	var body string
	switch {
	case m.forming:
		body = m.form.View()
	case m.exporting:
		body = m.export.View()
	case m.screen == screenCompose:
		body = m.compose.View(m.planErr)
	case m.screen == screenRun:
		body = m.run.View()
	default:
		body = m.review.View()
	}
	if m.panesReplaceBody() {
		body = m.panes.View()
		if m.runLine() > 0 {
			body = m.run.line(m.width) + "\n" + body
		}
	}
	if m.showHelp {
		body = m.helpOverlay(body)
	}
	// The dialogs last, over whatever the layout shows (the screen or the
	// panes in its place, the help): a question whose keys are active is
	// always on screen. The run's dialog takes the keys first, so it is
	// drawn on top.
	if m.panes.confirm != nil {
		body = m.confirmOverlay(body)
	}
	if m.run.dialog != dlgNone {
		title, text, keep := m.run.dialogView(m.backend.Source())
		body = m.run.overlay(body, title, text, keep)
	}
	parts := []string{m.headerView(), body}
	if m.panesHeight() > 0 && !m.panesReplaceBody() {
		parts = append(parts, m.panes.View())
	}
	if m.summaryRows() > 0 {
		parts = append(parts, m.panes.Summary(m.width))
	}
	parts = append(parts, m.footerView())
	// Every part is exactly m.width wide, except the header and the help
	// bar, which are padded here.
	parts[0] = padRight(parts[0], m.width)
	parts[len(parts)-1] = padRight(parts[len(parts)-1], m.width)
	return strings.Join(parts, "\n")
}

func (m *Model) headerView() string {
	tabs := ""
	screens := []screen{screenCompose, screenReview}
	if m.runner() != nil {
		screens = append(screens, screenRun)
	}
	for _, s := range screens {
		if s == m.screen {
			tabs += m.st.tabOn.Render(s.String())
		} else {
			tabs += m.st.tab.Render(s.String())
		}
	}
	left := m.st.header.Render("cutover") + " " + tabs
	state := "offline"
	if m.backend.Connected() {
		state = "connected"
	}
	right := m.backend.Source() + " · " + state
	if m.panesHeight() == 0 && !m.backend.Connected() {
		right += " (panes: not connected)"
	}
	if m.planning {
		right = "planning… · " + right
	}
	gap := m.width - lipgloss.Width(left) - lipgloss.Width(right) - 1
	if gap < 1 {
		return clip(left+"  "+m.st.muted.Render(right), m.width, 1)
	}
	return left + strings.Repeat(" ", gap) + m.st.muted.Render(right)
}

func (m *Model) footerView() string {
	if m.flash != "" {
		return clip(m.st.ok.Render(m.flash), m.width, 1)
	}
	return clip(m.help.ShortHelpView(m.keys.ShortHelp()), m.width, 1)
}

// helpOverlay draws the full key help in a box over the screen.
func (m *Model) helpOverlay(body string) string {
	full := m.help.FullHelpView(m.keys.FullHelp())
	box := m.st.overlay.Render(m.st.title.Render("Keys") + "\n\n" + full + "\n\n" + m.st.muted.Render("any key closes this"))
	h := lipgloss.Height(body)
	placed := lipgloss.Place(m.width, h, lipgloss.Center, lipgloss.Center, box,
		lipgloss.WithWhitespaceChars(" "))
	return clip(placed, m.width, h)
}
