package tui

import (
	"fmt"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/schema"
)

// formAction is one change the guided form can build.
type formAction struct {
	label string
	// column: the action is on a column of the table.
	column bool
	// param prompts for the action's parameter; "" when it has none.
	param string
	// build writes the naive statement; t is the quoted, qualified table,
	// c the quoted column, p the parameter as typed.
	build func(t, c, p string) string
}

// formActions are the changes of the guided form, in menu order. The form
// writes the naive SQL an operator would type; identifiers from the schema
// are quoted (schema.QuoteIdent), and what the operator types (a type, an
// expression, a new name) is checked by parsing the whole statement.
var formActions = []formAction{
	{"rename column", true, "new name", func(t, c, p string) string {
		return fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s;", t, c, schema.QuoteIdent(p))
	}},
	{"change column type", true, "new type (e.g. bigint, varchar(300))", func(t, c, p string) string {
		return fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s;", t, c, p)
	}},
	{"drop column", true, "", func(t, c, _ string) string {
		return fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s;", t, c)
	}},
	{"set NOT NULL", true, "", func(t, c, _ string) string {
		return fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;", t, c)
	}},
	{"drop NOT NULL", true, "", func(t, c, _ string) string {
		return fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL;", t, c)
	}},
	{"set default", true, "default expression", func(t, c, p string) string {
		return fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s;", t, c, p)
	}},
	{"add index", true, "", func(t, c, _ string) string {
		return fmt.Sprintf("CREATE INDEX ON %s (%s);", t, c)
	}},
	{"add foreign key", true, "references table(column)", func(t, c, p string) string {
		return fmt.Sprintf("ALTER TABLE %s ADD FOREIGN KEY (%s) REFERENCES %s;", t, c, p)
	}},
	{"add column", false, "column name and type (e.g. note text)", func(t, _, p string) string {
		return fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s;", t, p)
	}},
	{"rename table", false, "new name", func(t, _, p string) string {
		return fmt.Sprintf("ALTER TABLE %s RENAME TO %s;", t, schema.QuoteIdent(p))
	}},
	{"drop table", false, "", func(t, _, _ string) string {
		return fmt.Sprintf("DROP TABLE %s;", t)
	}},
}

type formStage int

const (
	stageTable formStage = iota
	stageAction
	stageColumn
	stageParam
)

// formModel is the guided form: pick a table, an action, a column, fill
// the parameter; it produces the same naive SQL the editor takes, and the
// root model plans it the same way.
type formModel struct {
	st     styles
	schema *schema.Schema

	stage  formStage
	filter string
	cursor int
	table  *schema.Table
	action *formAction
	column string
	input  textinput.Model
	err    string

	width, height int
}

// formDoneMsg carries the SQL the form built.
type formDoneMsg struct{ sql string }

func newForm(st styles) formModel {
	in := textinput.New()
	in.PromptStyle, in.TextStyle, in.PlaceholderStyle = st.label, st.r.NewStyle(), st.muted
	in.Cursor.Style, in.Cursor.TextStyle = st.r.NewStyle(), st.r.NewStyle()
	in.Cursor.SetMode(cursor.CursorStatic)
	return formModel{st: st, input: in}
}

// Open starts the form on s.
func (f *formModel) Open(s *schema.Schema) {
	*f = formModel{st: f.st, input: f.input, schema: s, width: f.width, height: f.height}
	f.input.SetValue("")
	f.input.Blur()
}

func (f *formModel) SetSize(w, h int) {
	f.width, f.height = w, h
	f.input.Width = max(w-4, 10)
}

// options are the current stage's choices, filtered by what was typed.
func (f *formModel) options() []string {
	var all []string
	switch f.stage {
	case stageTable:
		for k := range f.schema.Tables {
			all = append(all, k)
		}
		sort.Strings(all)
	case stageAction:
		for _, a := range formActions {
			all = append(all, a.label)
		}
	case stageColumn:
		for _, c := range f.table.Columns {
			all = append(all, c.Name)
		}
	}
	if f.filter == "" {
		return all
	}
	var out []string
	for _, o := range all {
		if strings.Contains(strings.ToLower(o), strings.ToLower(f.filter)) {
			out = append(out, o)
		}
	}
	return out
}

// Key handles a key; it returns true when the form is to close (esc on
// its first stage), and a command (formDoneMsg when the SQL is built).
func (f *formModel) Key(msg tea.KeyMsg) (closeForm bool, cmd tea.Cmd) {
	if f.stage == stageParam {
		switch msg.String() {
		case "esc":
			f.back()
			return false, nil
		case "enter":
			return false, f.finish()
		}
		f.err = ""
		f.input, cmd = f.input.Update(msg)
		return false, cmd
	}
	opts := f.options()
	switch msg.String() {
	case "esc":
		if f.filter != "" {
			f.filter, f.cursor = "", 0
			return false, nil
		}
		if f.stage == stageTable {
			return true, nil
		}
		f.back()
	case "up":
		f.cursor = max(0, f.cursor-1)
	case "down":
		f.cursor = max(0, min(len(opts)-1, f.cursor+1))
	case "backspace":
		if r := []rune(f.filter); len(r) > 0 {
			f.filter, f.cursor = string(r[:len(r)-1]), 0
		}
	case "enter":
		if f.cursor < len(opts) {
			return false, f.choose(opts[f.cursor])
		}
	default:
		if msg.Type == tea.KeyRunes {
			f.filter += string(msg.Runes)
			f.cursor = 0
		}
	}
	return false, nil
}

func (f *formModel) choose(opt string) tea.Cmd {
	f.filter, f.cursor = "", 0
	switch f.stage {
	case stageTable:
		f.table = f.schema.Tables[opt]
		f.stage = stageAction
	case stageAction:
		for i := range formActions {
			if formActions[i].label == opt {
				f.action = &formActions[i]
			}
		}
		if f.action.column {
			f.stage = stageColumn
			return nil
		}
		return f.toParam()
	case stageColumn:
		f.column = opt
		return f.toParam()
	}
	return nil
}

// toParam asks for the parameter, or finishes when there is none.
func (f *formModel) toParam() tea.Cmd {
	if f.action.param == "" {
		return f.finish()
	}
	f.stage = stageParam
	f.input.SetValue("")
	f.input.Prompt = f.action.param + ": "
	return f.input.Focus()
}

func (f *formModel) back() {
	f.filter, f.cursor, f.err = "", 0, ""
	switch f.stage {
	case stageParam:
		f.input.Blur()
		if f.action.column {
			f.stage = stageColumn
		} else {
			f.stage = stageAction
		}
	case stageColumn:
		f.stage = stageAction
	case stageAction:
		f.stage = stageTable
	}
}

// SQL is the statement the choices so far build.
func (f *formModel) SQL() string {
	t := schema.QuoteIdent(f.table.Schema) + "." + schema.QuoteIdent(f.table.Name)
	return f.action.build(t, schema.QuoteIdent(f.column), strings.TrimSpace(f.input.Value()))
}

// finish builds the SQL; a parameter that does not parse keeps the form
// open with the error.
func (f *formModel) finish() tea.Cmd {
	if f.action.param != "" && strings.TrimSpace(f.input.Value()) == "" {
		f.err = "type the " + f.action.param
		return nil
	}
	sql := f.SQL()
	if _, err := planner.Relations(sql); err != nil {
		f.err = err.Error()
		return nil
	}
	return func() tea.Msg { return formDoneMsg{sql: sql} }
}

func (f *formModel) View() string {
	var lines []string
	crumbs := []string{"table"}
	if f.table != nil {
		crumbs[0] = "table " + f.table.Schema + "." + f.table.Name
	}
	if f.action != nil && f.stage > stageAction {
		crumbs = append(crumbs, f.action.label)
	}
	if f.column != "" && f.stage > stageColumn {
		crumbs = append(crumbs, "column "+f.column)
	}
	lines = append(lines, f.st.muted.Render(strings.Join(crumbs, " › ")), "")
	if f.stage == stageParam {
		lines = append(lines, f.input.View(), "")
		lines = append(lines, f.st.muted.Render("statement: ")+f.SQL())
		if f.err != "" {
			lines = append(lines, f.st.err.Render("error: ")+f.err)
		}
		return f.st.frame("Guided change · "+f.action.label, strings.Join(lines, "\n"), f.width, f.height, true)
	}
	prompt := [...]string{"Pick the table", "Pick the change", "Pick the column"}[f.stage]
	lines = append(lines, f.st.label.Render(prompt)+f.st.muted.Render(" (type to filter: "+f.filter+"▏)"))
	opts := f.options()
	h := max(f.height-7, 1)
	start := max(0, min(f.cursor-h/2, len(opts)-h))
	for i := start; i < len(opts) && i < start+h; i++ {
		label := opts[i]
		if f.stage == stageColumn {
			for _, c := range f.table.Columns {
				if c.Name == label {
					label = padRight(label, 24) + " " + f.st.muted.Render(c.Type)
				}
			}
		}
		if i == f.cursor {
			lines = append(lines, f.st.selected.Render("› "+label))
		} else {
			lines = append(lines, "  "+label)
		}
	}
	if len(opts) == 0 {
		lines = append(lines, f.st.muted.Render("  nothing matches"))
	}
	return f.st.frame("Guided change", strings.Join(lines, "\n"), f.width, f.height, true)
}
