package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/glamour"
	glamourstyles "github.com/charmbracelet/glamour/styles"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/cutover/cutover/plans"
)

// DefaultExportPath is the file the export prompt proposes.
const DefaultExportPath = "cutover-plan.md"

// exportModel is the export dialog of the review screen: a path prompt
// over a rendered preview of the Markdown runbook (plans.Markdown).
type exportModel struct {
	st      styles
	input   textinput.Model
	preview viewport.Model

	md string
	// renderedFor is the wrap width the preview was rendered for; -1 when
	// a render is due.
	renderedFor int
	rendering   bool
	err         error

	width, height int
}

// renderedMsg carries a rendered preview of md at a width.
type renderedMsg struct {
	md    string
	width int
	out   string
}

// exportedMsg reports the end of a write.
type exportedMsg struct {
	path  string
	bytes int
	err   error
}

func newExport(st styles) exportModel {
	in := textinput.New()
	in.Prompt = "Write the runbook to: "
	in.PromptStyle = st.label
	in.TextStyle = st.r.NewStyle()
	in.PlaceholderStyle = st.muted
	in.Cursor.Style = st.r.NewStyle()
	in.Cursor.TextStyle = st.r.NewStyle()
	in.Placeholder = DefaultExportPath
	in.Cursor.SetMode(cursor.CursorStatic)
	return exportModel{st: st, input: in, preview: viewport.New(0, 0), renderedFor: -1}
}

// Open starts the dialog for p with path proposed.
func (e *exportModel) Open(p *plans.Plan, path string) tea.Cmd {
	e.md = plans.Markdown(p)
	e.err = nil
	e.input.SetValue(path)
	e.input.CursorEnd()
	e.renderedFor = -1
	e.preview.SetContent("")
	return tea.Batch(e.input.Focus(), e.render())
}

// SetSize gives the dialog its area; the preview is rendered again for a
// new width.
func (e *exportModel) SetSize(w, h int) {
	e.width, e.height = w, h
	e.input.Width = max(w-len(e.input.Prompt)-4, 10)
	e.preview.Width, e.preview.Height = max(w-2, 1), max(h-5, 1)
}

func (e *exportModel) previewWidth() int { return max(e.width-4, 20) }

// render renders the Markdown off the UI loop when the width changed.
func (e *exportModel) render() tea.Cmd {
	w := e.previewWidth()
	if e.md == "" || e.renderedFor == w || e.rendering {
		return nil
	}
	e.rendering = true
	md, color := e.md, e.st.color
	profile := e.st.r.ColorProfile()
	return func() tea.Msg {
		return renderedMsg{md: md, width: w, out: renderMarkdown(md, w, color, profile)}
	}
}

// renderMarkdown renders md with glamour: the dark style in colour, the
// ASCII style without (NO_COLOR). If glamour fails, the Markdown itself
// is the preview.
func renderMarkdown(md string, width int, color bool, profile termenv.Profile) string {
	style := glamourstyles.AsciiStyle
	if color {
		style = glamourstyles.DarkStyle
	}
	r, err := glamour.NewTermRenderer(glamour.WithStandardStyle(style), glamour.WithColorProfile(profile), glamour.WithWordWrap(width))
	if err != nil {
		return md
	}
	out, err := r.Render(md)
	if err != nil {
		return md
	}
	return strings.Trim(out, "\n")
}

// Update handles the dialog's messages; keys other than the dialog's own
// (enter, esc: handled by the root model) go to the path prompt.
func (e *exportModel) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case renderedMsg:
		e.rendering = false
		if msg.md == e.md {
			e.renderedFor = msg.width
			e.preview.SetContent(msg.out)
		}
		// The width may have changed while rendering.
		return e.render()
	case tea.KeyMsg:
		var cmd tea.Cmd
		e.input, cmd = e.input.Update(msg)
		e.err = nil
		return cmd
	}
	return nil
}

// Path is the path typed, or the default.
func (e *exportModel) Path() string {
	p := strings.TrimSpace(e.input.Value())
	if p == "" {
		return DefaultExportPath
	}
	return p
}

// Write writes the runbook to Path, atomically, off the UI loop.
func (e *exportModel) Write() tea.Cmd {
	path, md := e.Path(), e.md
	return func() tea.Msg {
		err := writeFileAtomic(path, []byte(md))
		return exportedMsg{path: path, bytes: len(md), err: err}
	}
}

func (e *exportModel) View() string {
	var top []string
	top = append(top, e.input.View())
	if e.err != nil {
		top = append(top, e.st.err.Render("error: ")+e.err.Error())
	} else {
		top = append(top, e.st.muted.Render("enter writes it (atomically: a temporary file renamed into place), esc cancels"))
	}
	body := e.preview.View()
	if e.renderedFor < 0 {
		body = e.st.muted.Render("rendering preview…")
	}
	title := "Export runbook (Markdown) · preview"
	if e.preview.TotalLineCount() > e.preview.Height {
		title += fmt.Sprintf(" (%d%%)", int(e.preview.ScrollPercent()*100))
	}
	box := e.st.frame(title, body, e.width, e.height-2, true)
	return lipgloss.JoinVertical(lipgloss.Left, clip(strings.Join(top, "\n"), e.width, 2), box)
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory renamed into place, so the file is either the old one or the
// whole new one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	return nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
