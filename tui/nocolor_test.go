package tui

import (
	"bytes"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// NO_COLOR turns every colour off, even where colours are forced
// otherwise; the selected row keeps its "›" marker.
func TestNoColor(t *testing.T) {
	t.Setenv("CLICOLOR_FORCE", "1")
	t.Setenv("NO_COLOR", "")
	if p := lipgloss.NewRenderer(&bytes.Buffer{}).ColorProfile(); p == termenv.Ascii {
		t.Skip("CLICOLOR_FORCE gives no colour profile here; cannot tell NO_COLOR's effect")
	}
	colored := reviewScreen(t, lipgloss.NewRenderer(&bytes.Buffer{}))
	if !strings.Contains(colored, "\x1b[") {
		t.Fatal("no escape sequences with colours forced: the test proves nothing")
	}

	t.Setenv("NO_COLOR", "1")
	plain := reviewScreen(t, lipgloss.NewRenderer(&bytes.Buffer{}))
	if strings.Contains(plain, "\x1b[") {
		t.Fatalf("escape sequences with NO_COLOR set:\n%q", plain)
	}
	if !strings.Contains(plain, "› ") {
		t.Fatal("the selected row has no marker without colour")
	}
}

func reviewScreen(t *testing.T, r *lipgloss.Renderer) string {
	m := New(Options{Backend: pagilaBackend(), Renderer: r, SQL: renameSQL})
	run(m, tea.WindowSizeMsg{Width: 160, Height: 48})
	drain(m, m.Init())
	keys(m, "ctrl+p")
	return m.View()
}
