package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key binding of the TUI, in one place. The help bar and
// the help overlay (?) list them with bubbles/help; each screen enables
// the bindings that mean something on it (see Model.syncKeys), so help
// only ever shows keys that work.
type keyMap struct {
	// Global.
	Quit   key.Binding
	Help   key.Binding
	Screen key.Binding

	// Compose.
	Plan   key.Binding
	Edit   key.Binding
	Leave  key.Binding
	Review key.Binding
	Form   key.Binding
	// Resume opens the run in progress listed on the compose screen at
	// the deploy it goes on with.
	Resume key.Binding

	// Guided form.
	Choose key.Binding
	Back   key.Binding

	// Review.
	Up       key.Binding
	Down     key.Binding
	Top      key.Binding
	Bottom   key.Binding
	NextStep key.Binding
	PrevStep key.Binding
	DetailDn key.Binding
	DetailUp key.Binding
	Export   key.Binding
	Compose  key.Binding

	// Live panes (panes.go): show or hide them, focus the locks pane,
	// pick a session, cancel or terminate it (confirmed with Yes/No).
	Panes     key.Binding
	Locks     key.Binding
	LockUp    key.Binding
	LockDown  key.Binding
	CancelPID key.Binding
	KillPID   key.Binding
	LeaveLock key.Binding

	// Export prompt.
	Write  key.Binding
	Cancel key.Binding
	PrevUp key.Binding
	PrevDn key.Binding

	// Run screen (run.go).
	Run      key.Binding
	RunNext  key.Binding
	RunPause key.Binding
	RunAbort key.Binding
	RunBack  key.Binding
	Yes      key.Binding
	No       key.Binding
	Submit   key.Binding
}

func defaultKeys() keyMap {
	return keyMap{
		Quit:   key.NewBinding(key.WithKeys("ctrl+c", "q"), key.WithHelp("q", "quit")),
		Help:   key.NewBinding(key.WithKeys("?", "f1"), key.WithHelp("?", "help")),
		Screen: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "switch screen")),

		Plan:   key.NewBinding(key.WithKeys("ctrl+p"), key.WithHelp("ctrl+p", "plan")),
		Edit:   key.NewBinding(key.WithKeys("i", "enter"), key.WithHelp("i", "edit SQL")),
		Leave:  key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "stop editing")),
		Review: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "review plan")),
		Form:   key.NewBinding(key.WithKeys("ctrl+g"), key.WithHelp("ctrl+g", "guided form")),
		Resume: key.NewBinding(key.WithKeys("ctrl+o"), key.WithHelp("ctrl+o", "resume run")),

		Choose: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "choose")),
		Back:   key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),

		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Top:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g", "top")),
		Bottom:   key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G", "bottom")),
		NextStep: key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "next step")),
		PrevStep: key.NewBinding(key.WithKeys("N"), key.WithHelp("N", "previous step")),
		DetailDn: key.NewBinding(key.WithKeys("pgdown", "ctrl+d"), key.WithHelp("pgdn", "scroll detail")),
		DetailUp: key.NewBinding(key.WithKeys("pgup", "ctrl+u"), key.WithHelp("pgup", "scroll detail back")),
		Export:   key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "export runbook")),
		Compose:  key.NewBinding(key.WithKeys("c", "esc"), key.WithHelp("c", "back to compose")),

		Panes:     key.NewBinding(key.WithKeys("v", "f2"), key.WithHelp("v", "live panes")),
		Locks:     key.NewBinding(key.WithKeys("L", "f3"), key.WithHelp("L", "locks pane")),
		LockUp:    key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "previous")),
		LockDown:  key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "next")),
		CancelPID: key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "cancel query")),
		KillPID:   key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "terminate session")),
		LeaveLock: key.NewBinding(key.WithKeys("esc", "L", "f3"), key.WithHelp("esc", "leave pane")),

		Write:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "write file")),
		Cancel: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
		PrevUp: key.NewBinding(key.WithKeys("pgup", "ctrl+u"), key.WithHelp("pgup", "scroll preview back")),
		PrevDn: key.NewBinding(key.WithKeys("pgdown", "ctrl+d"), key.WithHelp("pgdn", "scroll preview")),

		Run:      key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "run on the database")),
		RunNext:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "run next deploy")),
		RunPause: key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "pause/resume backfill")),
		RunAbort: key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "abort")),
		RunBack:  key.NewBinding(key.WithKeys("esc", "b"), key.WithHelp("esc", "back to review")),
		Yes:      key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yes")),
		No:       key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n", "no")),
		Submit:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "confirm")),
	}
}

// ShortHelp is the one-line help bar: the bindings enabled now, most
// useful first.
func (k keyMap) ShortHelp() []key.Binding {
	// What the screen is for first, then help and quit (so they survive
	// a narrow terminal's truncation), then moving around.
	return enabled(
		k.Yes, k.No, k.Submit, k.RunNext, k.RunPause, k.RunAbort, k.RunBack, k.Run,
		k.CancelPID, k.KillPID, k.LockDown, k.LockUp, k.LeaveLock,
		k.Write, k.Cancel, k.Choose, k.Back,
		k.Plan, k.Form, k.Export, k.Leave, k.Edit, k.Review,
		k.Help, k.Quit,
		// The compose screen's run-in-progress line names it too.
		k.Resume,
		k.Down, k.Up, k.NextStep, k.Compose, k.Screen,
		k.Panes, k.Locks,
	)
}

// FullHelp is the help overlay: one column per group.
func (k keyMap) FullHelp() [][]key.Binding {
	cols := [][]key.Binding{
		enabled(k.Plan, k.Resume, k.Form, k.Edit, k.Leave, k.Review, k.Choose, k.Back),
		enabled(k.Up, k.Down, k.Top, k.Bottom, k.NextStep, k.PrevStep, k.DetailDn, k.DetailUp),
		enabled(k.Export, k.Compose, k.Write, k.Cancel, k.PrevDn, k.PrevUp),
		enabled(k.Run, k.RunNext, k.RunPause, k.RunAbort, k.RunBack, k.Yes, k.No, k.Submit),
		enabled(k.LockUp, k.LockDown, k.CancelPID, k.KillPID, k.LeaveLock),
		enabled(k.Screen, k.Panes, k.Locks, k.Help, k.Quit),
	}
	out := cols[:0]
	for _, c := range cols {
		if len(c) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// all is every binding, to switch them off at once (an open dialog).
func (k *keyMap) all() []*key.Binding {
	return []*key.Binding{
		&k.Quit, &k.Help, &k.Screen,
		&k.Plan, &k.Edit, &k.Leave, &k.Review, &k.Form, &k.Resume,
		&k.Choose, &k.Back,
		&k.Up, &k.Down, &k.Top, &k.Bottom, &k.NextStep, &k.PrevStep, &k.DetailDn, &k.DetailUp, &k.Export, &k.Compose,
		&k.Panes, &k.Locks, &k.LockUp, &k.LockDown, &k.CancelPID, &k.KillPID, &k.LeaveLock,
		&k.Write, &k.Cancel, &k.PrevUp, &k.PrevDn,
		&k.Run, &k.RunNext, &k.RunPause, &k.RunAbort, &k.RunBack, &k.Yes, &k.No, &k.Submit,
	}
}

func enabled(bs ...key.Binding) []key.Binding {
	out := make([]key.Binding, 0, len(bs))
	for _, b := range bs {
		if b.Enabled() {
			out = append(out, b)
		}
	}
	return out
}
