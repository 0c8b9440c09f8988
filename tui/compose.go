package tui

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/schema"
)

// composeModel is the compose screen: a multi-line SQL editor whose input
// is parsed as you type (debounced, in a tea.Cmd), with the syntax error
// and its position shown under it.
type composeModel struct {
	st       styles
	editor   textarea.Model
	debounce time.Duration

	width, height int

	// seq counts edits; a check result is shown only if it is for the
	// latest edit.
	seq int
	// checked is the text of the last finished check, parseErr its result.
	checked  string
	parseErr error
	checking bool
	// targets are the relations the checked text names
	// (planner.Relations), shown first in the schema panel.
	targets []string

	// schema feeds the schema panel on wide terminals; nil until loaded.
	schema    *schema.Schema
	schemaErr error

	// runs are the lines about the database's runs in progress, shown
	// under the editor (Model.runLines).
	runs []string
}

// schemaMsg carries the backend's schema.
type schemaMsg struct {
	schema *schema.Schema
	err    error
}

// checkTickMsg fires debounce after an edit; it starts a check if no edit
// came since.
type checkTickMsg struct{ seq int }

// checkedMsg is the result of parsing the editor's text.
type checkedMsg struct {
	seq     int
	text    string
	targets []string
	err     error
}

func newCompose(st styles, sql string, debounce time.Duration) composeModel {
	ta := textarea.New()
	ta.Placeholder = "ALTER TABLE customer RENAME COLUMN email TO email_address;"
	ta.ShowLineNumbers = true
	ta.Prompt = ""
	ta.CharLimit = 0
	ta.MaxHeight = 0
	// ctrl+p plans; keep the arrows for moving up.
	ta.KeyMap.LinePrevious = key.NewBinding(key.WithKeys("up"))
	focused, blurred := textarea.DefaultStyles()
	for _, s := range []*textarea.Style{&focused, &blurred} {
		s.Base = st.r.NewStyle()
		s.CursorLine = st.r.NewStyle()
		s.CursorLineNumber = st.muted
		s.EndOfBuffer = st.muted
		s.LineNumber = st.muted
		s.Placeholder = st.muted
		s.Prompt = st.r.NewStyle()
		s.Text = st.r.NewStyle()
	}
	ta.FocusedStyle, ta.BlurredStyle = focused, blurred
	ta.Cursor.Style = st.r.NewStyle()
	ta.Cursor.TextStyle = st.r.NewStyle()
	// A static cursor: no blink ticks, so the screen only changes when
	// something happens.
	ta.Cursor.SetMode(cursor.CursorStatic)
	ta.SetValue(sql)
	ta.Focus()
	return composeModel{st: st, editor: ta, debounce: debounce}
}

// sideWidth is the schema panel's width: shown right of the editor on
// terminals of 120 columns or more.
func (c *composeModel) sideWidth() int {
	if c.width < 120 {
		return 0
	}
	return min(64, c.width/3)
}

// SetSize gives the screen its area.
func (c *composeModel) SetSize(w, h int) {
	c.width, c.height = w, h
	c.editor.SetWidth(max(w-c.sideWidth()-2, 10))
	c.editor.SetHeight(max(h-3-c.statusHeight(), 1))
}

// statusHeight is the lines under the editor: the check's result (a
// syntax error takes three: message, the line, a caret), after the
// lines about the runs in progress.
func (c *composeModel) statusHeight() int { return 4 + len(c.runs) }

// SetRuns sets the lines about the runs in progress (none: nil).
func (c *composeModel) SetRuns(lines []string) {
	c.runs = lines
	c.SetSize(c.width, c.height)
}

// Init starts a check of the initial text.
func (c *composeModel) Init() tea.Cmd {
	if strings.TrimSpace(c.editor.Value()) == "" {
		return nil
	}
	return c.check()
}

func (c *composeModel) check() tea.Cmd {
	seq, text := c.seq, c.editor.Value()
	c.checking = true
	return func() tea.Msg {
		t, err := planner.Relations(text)
		return checkedMsg{seq: seq, text: text, targets: t.Relations, err: err}
	}
}

// Update handles messages for the compose screen. Keys reach it only while
// the editor is focused.
func (c *composeModel) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case checkTickMsg:
		if msg.seq != c.seq {
			return nil
		}
		return c.check()
	case checkedMsg:
		if msg.seq != c.seq {
			return nil
		}
		c.checking = false
		c.checked, c.parseErr = msg.text, msg.err
		if msg.err == nil {
			c.targets = msg.targets
		}
		return nil
	case schemaMsg:
		c.schema, c.schemaErr = msg.schema, msg.err
		return nil
	}
	before := c.editor.Value()
	var cmd tea.Cmd
	c.editor, cmd = c.editor.Update(msg)
	if c.editor.Value() != before {
		c.seq++
		seq := c.seq
		c.checking = true
		tick := tea.Tick(c.debounce, func(time.Time) tea.Msg { return checkTickMsg{seq: seq} })
		return tea.Batch(cmd, tick)
	}
	return cmd
}

// Value is the SQL in the editor.
func (c *composeModel) Value() string { return c.editor.Value() }

// Focused reports whether keys go to the editor.
func (c *composeModel) Focused() bool { return c.editor.Focused() }

func (c *composeModel) Focus() tea.Cmd { return c.editor.Focus() }
func (c *composeModel) Blur()          { c.editor.Blur() }

// SyntaxError is the current text's syntax error, nil when it parses (or
// has not been checked yet).
func (c *composeModel) SyntaxError() *planner.SyntaxError {
	var se *planner.SyntaxError
	if errors.As(c.parseErr, &se) {
		return se
	}
	return nil
}

// View draws the editor in a box and the check's result under it.
func (c *composeModel) View(planErr error) string {
	title := "SQL to plan"
	if !c.editor.Focused() {
		title += " (press i to edit)"
	}
	body := c.editor.View()
	sw, bh := c.sideWidth(), c.height-c.statusHeight()
	box := c.st.frame(title, body, c.width-sw, bh, c.editor.Focused())
	if sw > 0 {
		box = joinH(box, c.st.frame(c.schemaTitle(), c.schemaView(sw-2), sw, bh, false))
	}
	for _, l := range c.runs {
		box += "\n" + padRight(clip(l, c.width, 1), c.width)
	}
	return box + "\n" + c.statusView(planErr)
}

// statusView is the check's result: a syntax error with its line and a
// caret under the column, a planning error, or "parses".
func (c *composeModel) statusView(planErr error) string {
	w := c.width
	var lines []string
	text := c.editor.Value()
	switch {
	case strings.TrimSpace(text) == "":
		lines = append(lines, c.st.muted.Render("Type or paste the change as you would run it; ctrl+p plans it."))
	case c.parseErr != nil && c.checked == text:
		if se := c.SyntaxError(); se != nil {
			lines = append(lines, c.st.err.Render(fmt.Sprintf("error: line %d, column %d: %s", se.Line, se.Column, se.Message)))
			src := strings.Split(text, "\n")
			if se.Line >= 1 && se.Line <= len(src) {
				l := strings.ReplaceAll(src[se.Line-1], "\t", " ")
				num := fmt.Sprintf("%4d │ ", se.Line)
				lines = append(lines, c.st.muted.Render(num)+l)
				lines = append(lines, strings.Repeat(" ", len([]rune(num))+se.Column-1)+c.st.err.Render("^"))
			}
		} else {
			lines = append(lines, c.st.err.Render("error: "+c.parseErr.Error()))
		}
	case planErr != nil:
		lines = append(lines, c.st.err.Render("cannot plan: ")+planErr.Error())
	case c.checked == text:
		lines = append(lines, c.st.ok.Render("✓ parses")+c.st.muted.Render(" · ctrl+p plans it"))
	default:
		lines = append(lines, c.st.muted.Render("checking…"))
	}
	out := wrap(strings.Join(lines, "\n"), max(w, 10))
	lines = strings.Split(padLines(clip(out, w, 4), 4), "\n")
	for i := range lines {
		lines[i] = padRight(lines[i], w)
	}
	return strings.Join(lines, "\n")
}

func (c *composeModel) schemaTitle() string {
	if c.schema == nil {
		return "Schema"
	}
	return fmt.Sprintf("Schema · %s · %d tables", c.schema.Source, len(c.schema.Tables))
}

// schemaView is the schema panel: the tables the SQL names, with their
// columns, then every other table with its column count.
func (c *composeModel) schemaView(w int) string {
	switch {
	case c.schemaErr != nil:
		return c.st.err.Render("error: ") + c.schemaErr.Error()
	case c.schema == nil:
		return c.st.muted.Render("loading…")
	}
	var lines []string
	named := map[string]bool{}
	for _, key := range c.targets {
		t := c.schema.Tables[key]
		if t == nil {
			continue
		}
		named[key] = true
		lines = append(lines, c.st.label.Render(key)+c.st.muted.Render(tableNote(t)))
		nameW := 0
		for _, col := range t.Columns {
			nameW = max(nameW, len([]rune(col.Name)))
		}
		for _, col := range t.Columns {
			null := ""
			if col.NotNull {
				null = " not null"
			}
			lines = append(lines, "  "+padRight(col.Name, min(nameW, w/2))+" "+c.st.muted.Render(col.Type+null))
		}
		lines = append(lines, "")
	}
	keys := make([]string, 0, len(c.schema.Tables))
	for k := range c.schema.Tables {
		if !named[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(named) > 0 {
		lines = append(lines, c.st.muted.Render("other tables"))
	}
	for _, k := range keys {
		lines = append(lines, k+c.st.muted.Render(tableNote(c.schema.Tables[k])))
	}
	return strings.Join(lines, "\n")
}

func tableNote(t *schema.Table) string {
	n := fmt.Sprintf(" · %d col", len(t.Columns))
	if len(t.Columns) != 1 {
		n += "s"
	}
	if t.RowEstimate >= 0 {
		n += " · ~" + groupDigits(t.RowEstimate) + " rows"
	}
	if t.Partitioned {
		n += " · partitioned"
	}
	return n
}
