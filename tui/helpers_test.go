package tui

import (
	"io"
	"os"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

const renameSQL = "ALTER TABLE customer RENAME COLUMN email TO email_address;"

// asciiRenderer has no colours (what NO_COLOR gives), so goldens are the
// same on every terminal.
func asciiRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	r.SetHasDarkBackground(true)
	return r
}

// pagilaDump is the pagila schema of the repository's testdata, read once.
var pagilaDump = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile("../testdata/pagila/schema.sql")
	return string(b), err
})

func pagilaBackend() *OfflineBackend {
	dump, err := pagilaDump()
	if err != nil {
		panic("tui tests need ../testdata/pagila/schema.sql: " + err.Error())
	}
	return NewOfflineBackend("pagila sample", dump)
}

func newTestModel(t testing.TB, sql string) *Model {
	t.Helper()
	return New(Options{Backend: pagilaBackend(), Renderer: asciiRenderer(), SQL: sql, Debounce: time.Millisecond})
}

// run feeds msg to m and runs the commands it returns (synchronously,
// recursively), as the bubbletea loop would, except ticks: they are run
// at once.
func run(m *Model, msg tea.Msg) {
	_, cmd := m.Update(msg)
	drain(m, cmd)
}

func drain(m *Model, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	msg := cmd()
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			drain(m, c)
		}
	case tea.QuitMsg:
	default:
		_, next := m.Update(msg)
		drain(m, next)
	}
}

func keys(m *Model, ks ...string) {
	for _, k := range ks {
		run(m, keyMsg(k))
	}
}

func keyMsg(k string) tea.KeyMsg {
	switch k {
	case "ctrl+p":
		return tea.KeyMsg{Type: tea.KeyCtrlP}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	case "ctrl+g":
		return tea.KeyMsg{Type: tea.KeyCtrlG}
	case "ctrl+d":
		return tea.KeyMsg{Type: tea.KeyCtrlD}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	case "f1":
		return tea.KeyMsg{Type: tea.KeyF1}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

func lipglossWidth(s string) int { return lipgloss.Width(s) }
