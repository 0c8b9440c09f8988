package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// styles are built from one lipgloss.Renderer, whose colour profile comes
// from the terminal and the environment: with NO_COLOR set (or output not
// a terminal) it is termenv.Ascii and nothing is coloured. Meaning never
// rests on colour alone: the selected row also has a "›" marker, errors
// say "error", risks are words.
type styles struct {
	r     *lipgloss.Renderer
	color bool

	header      lipgloss.Style
	tab         lipgloss.Style
	tabOn       lipgloss.Style
	muted       lipgloss.Style
	title       lipgloss.Style
	label       lipgloss.Style
	selected    lipgloss.Style
	err         lipgloss.Style
	warn        lipgloss.Style
	ok          lipgloss.Style
	danger      lipgloss.Style
	code        lipgloss.Style
	border      lipgloss.Style
	borderFocus lipgloss.Style
	overlay     lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	color := r.ColorProfile() != termenv.Ascii
	s := styles{r: r, color: color}
	ns := r.NewStyle
	s.header = ns().Bold(true)
	s.tab = ns().Padding(0, 1)
	s.tabOn = ns().Padding(0, 1).Bold(true).Reverse(true)
	s.muted = ns().Faint(true)
	s.title = ns().Bold(true)
	s.label = ns().Bold(true)
	s.selected = ns().Reverse(true)
	s.err = ns().Bold(true)
	s.warn = ns()
	s.ok = ns()
	s.danger = ns().Bold(true)
	s.code = ns()
	s.border = ns()
	s.borderFocus = ns()
	s.overlay = ns().Border(lipgloss.DoubleBorder()).Padding(0, 1)
	if color {
		s.header = s.header.Foreground(lipgloss.AdaptiveColor{Light: "#1f4e99", Dark: "#8ab4f8"})
		s.tabOn = s.tabOn.Foreground(lipgloss.AdaptiveColor{Light: "#1f4e99", Dark: "#8ab4f8"})
		s.title = s.title.Foreground(lipgloss.AdaptiveColor{Light: "#1f4e99", Dark: "#8ab4f8"})
		s.err = s.err.Foreground(lipgloss.Color("9"))
		s.warn = s.warn.Foreground(lipgloss.Color("11"))
		s.ok = s.ok.Foreground(lipgloss.Color("10"))
		s.danger = s.danger.Foreground(lipgloss.Color("9"))
		s.code = s.code.Foreground(lipgloss.AdaptiveColor{Light: "#444444", Dark: "#c0c0c0"})
		s.border = s.border.Foreground(lipgloss.Color("8"))
		s.borderFocus = s.borderFocus.Foreground(lipgloss.AdaptiveColor{Light: "#1f4e99", Dark: "#8ab4f8"})
	}
	return s
}

// frame draws a titled box exactly w by h cells (border included); body
// is clipped to fit, the title is the first line inside the box. It draws
// the border itself rather than with lipgloss's Border: this is on every
// frame's path and has to stay well under a millisecond at 160x48.
func (s styles) frame(title, body string, w, h int, focus bool) string {
	if w < 4 || h < 3 {
		return ""
	}
	b, bs := lipgloss.RoundedBorder(), s.border
	if focus {
		b, bs = lipgloss.ThickBorder(), s.borderFocus
	}
	iw, ih := w-2, h-2
	var lines []string
	if title != "" {
		lines = append(lines, s.title.Render(ansi.Truncate(title, iw, "…")))
		ih--
	}
	lines = append(lines, strings.Split(clip(body, iw, ih), "\n")...)
	if title != "" {
		ih++
	}
	var sb strings.Builder
	sb.Grow((w + 16) * h)
	sb.WriteString(bs.Render(b.TopLeft + strings.Repeat(b.Top, iw) + b.TopRight))
	left, right := bs.Render(b.Left), bs.Render(b.Right)
	for i := 0; i < ih; i++ {
		sb.WriteByte('\n')
		sb.WriteString(left)
		if i < len(lines) {
			sb.WriteString(padRight(lines[i], iw))
		} else {
			sb.WriteString(strings.Repeat(" ", iw))
		}
		sb.WriteString(right)
	}
	sb.WriteByte('\n')
	sb.WriteString(bs.Render(b.BottomLeft + strings.Repeat(b.Bottom, iw) + b.BottomRight))
	return sb.String()
}

// joinH puts blocks of the same height side by side (each line of each
// block is already exactly its block's width).
func joinH(blocks ...string) string {
	split := make([][]string, len(blocks))
	n := 0
	for i, b := range blocks {
		split[i] = strings.Split(b, "\n")
		n = max(n, len(split[i]))
	}
	var sb strings.Builder
	for l := 0; l < n; l++ {
		if l > 0 {
			sb.WriteByte('\n')
		}
		for _, lines := range split {
			if l < len(lines) {
				sb.WriteString(lines[l])
			}
		}
	}
	return sb.String()
}
