package tui

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/cutover/cutover/db/monitor"
)

// SampleMsg delivers one db/monitor sample to the live panes. A live
// backend produces them from monitor.Monitor.Samples() in a tea.Cmd; the
// panes only render what they are given.
type SampleMsg struct{ monitor.Sample }

// Marker marks a moment on the latency charts: a step starting or ending.
type Marker struct {
	At    time.Time
	Label string
}

// historyCap is how many samples the charts keep (10 minutes at 1 s).
const historyCap = 600

// panesModel draws the live panes: locks (sessions, blocking tree,
// cutover's sessions marked, the queue behind its DDL) and latency (probe
// p50/p99 and TPS charts over the last minutes, with step markers, lock
// waiters and replication lag). Offline they say they are not connected.
// Rendering is pure: samples in, text out.
type panesModel struct {
	st        styles
	connected bool
	source    string

	history *monitor.Ring[monitor.Sample]
	// locks is the newest lock sample with data (a skipped tick keeps
	// the previous one on screen).
	locks   *monitor.LockSample
	markers []Marker

	width, height int
	// view caches View's result until a sample, a marker or a resize:
	// frames drawn for key presses reuse it.
	view string
}

func newPanes(st styles, connected bool, source string) panesModel {
	return panesModel{st: st, connected: connected, source: source, history: monitor.NewRing[monitor.Sample](historyCap)}
}

// SetSize gives the panes their area (both, side by side).
func (p *panesModel) SetSize(w, h int) {
	if w != p.width || h != p.height {
		p.width, p.height, p.view = w, h, ""
	}
}

// Push adds a sample.
func (p *panesModel) Push(s monitor.Sample) {
	p.view = ""
	p.history.Push(s)
	if s.Locks != nil && !s.Locks.Skipped {
		p.locks = s.Locks
	}
}

// Mark adds a marker to the charts.
func (p *panesModel) Mark(m Marker) {
	p.view = ""
	p.markers = append(p.markers, m)
}

func (p *panesModel) View() string {
	if p.width <= 0 || p.height <= 0 {
		return ""
	}
	if p.view == "" {
		p.view = p.render()
	}
	return p.view
}

func (p *panesModel) render() string {
	lw := p.width / 2
	rw := p.width - lw
	if !p.connected {
		msg := p.st.muted.Render("not connected: planning offline against " + p.source + ". Give --db URL to watch locks and latency while a plan runs.")
		return joinH(
			p.st.frame("Locks", wrap(msg, lw-2), lw, p.height, false),
			p.st.frame("Latency", wrap(msg, rw-2), rw, p.height, false))
	}
	lt, lb := p.locksView(lw-2, p.height-3)
	at, ab := p.latencyView(rw-2, p.height-3)
	return joinH(p.st.frame(lt, lb, lw, p.height, false), p.st.frame(at, ab, rw, p.height, false))
}

// locksView renders the newest lock sample: a title with the counts, the
// lock-queue trap first when there is one, then the blocking trees (head
// blockers first, waiters indented under what they wait for), then the
// other sessions.
func (p *panesModel) locksView(w, h int) (string, string) {
	ls := p.locks
	if ls == nil {
		if last, ok := p.history.Last(); ok && last.Locks != nil && last.Locks.Error != "" {
			return "Locks", p.st.err.Render("error: ") + last.Locks.Error
		}
		return "Locks", p.st.muted.Render("waiting for the first sample…")
	}
	title := fmt.Sprintf("Locks · %d session%s, %d waiting", len(ls.Sessions), plural(len(ls.Sessions)), ls.Waiting)
	if ls.Waiting > 0 {
		title += " (oldest " + durText(ls.OldestWait.D()) + ")"
	}
	var lines []string
	if ls.Error != "" {
		lines = append(lines, p.st.err.Render("error: ")+ls.Error)
	}
	for _, tr := range ls.Traps {
		// Wrapped, not cut: this is the line that matters most.
		trap := p.st.danger.Render("! lock queue: ") + fmt.Sprintf(
			"cutover pid %d waits %s for %s on %s; %d queued behind it (oldest %s)",
			tr.PID, durText(tr.Waiting.D()), tr.Mode, tr.Table, len(tr.Queue), durText(tr.OldestQueued.D()))
		lines = append(lines, strings.Split(wrap(trap, w), "\n")...)
	}
	byPID := make(map[int]*monitor.Session, len(ls.Sessions))
	for i := range ls.Sessions {
		byPID[ls.Sessions[i].PID] = &ls.Sessions[i]
	}
	shown := map[int]bool{}
	var walk func(s *monitor.Session, depth int)
	walk = func(s *monitor.Session, depth int) {
		if shown[s.PID] || len(lines) > h {
			return
		}
		shown[s.PID] = true
		lines = append(lines, p.sessionLine(s, depth))
		kids := append([]int(nil), s.Blocks...)
		sort.Ints(kids)
		for _, k := range kids {
			if c := byPID[k]; c != nil {
				walk(c, depth+1)
			}
		}
	}
	for i := range ls.Sessions {
		if s := &ls.Sessions[i]; s.HeadBlocker {
			walk(s, 0)
		}
	}
	for i := range ls.Sessions {
		walk(&ls.Sessions[i], 0)
	}
	if len(ls.Sessions) == 0 && ls.Error == "" {
		lines = append(lines, p.st.muted.Render("no session holds or awaits a lock on the tables"))
	}
	return title, strings.Join(lines, "\n")
}

// sessionLine is one session: pid, who, state, the lock it waits for or
// the strongest it holds, and its query.
func (p *panesModel) sessionLine(s *monitor.Session, depth int) string {
	var b strings.Builder
	if depth > 0 {
		b.WriteString(strings.Repeat("  ", depth-1) + "└ ")
	}
	who := s.Application
	if who == "" {
		who = s.BackendType
	}
	fmt.Fprintf(&b, "%d %s", s.PID, who)
	if s.Cutover {
		b.WriteString(" " + p.st.title.Render("[cutover]"))
	}
	if s.HeadBlocker {
		b.WriteString(" " + p.st.danger.Render("BLOCKER"))
	}
	switch {
	case s.WaitingFor != nil:
		fmt.Fprintf(&b, " waits %s %s", durText(s.Waiting.D()), s.WaitingFor.Mode)
	default:
		if l := strongestHeld(s.Locks); l != nil {
			fmt.Fprintf(&b, " holds %s", l.Mode)
		}
		if s.State != "" && s.State != "active" {
			fmt.Fprintf(&b, " · %s", s.State)
		}
		if s.XactAge > 0 {
			fmt.Fprintf(&b, " · xact %s", durText(s.XactAge.D()))
		}
	}
	if s.Query != "" {
		b.WriteString(" " + p.st.muted.Render(s.Query))
	}
	return b.String()
}

// lockStrength orders lock modes as PostgreSQL's conflict table does.
var lockStrength = map[string]int{
	"AccessShareLock": 1, "RowShareLock": 2, "RowExclusiveLock": 3,
	"ShareUpdateExclusiveLock": 4, "ShareLock": 5, "ShareRowExclusiveLock": 6,
	"ExclusiveLock": 7, "AccessExclusiveLock": 8,
}

func strongestHeld(ls []monitor.Lock) *monitor.Lock {
	var best *monitor.Lock
	for i := range ls {
		if ls[i].Granted && (best == nil || lockStrength[ls[i].Mode] > lockStrength[best.Mode]) {
			best = &ls[i]
		}
	}
	return best
}

// latencyView renders the newest latency figures and two charts over the
// history that fits the width: the worst probe's p99 and the TPS, with
// an axis row marking where steps started and ended.
func (p *panesModel) latencyView(w, h int) (string, string) {
	last, ok := p.history.Last()
	if !ok || last.Latency == nil {
		return "Latency", p.st.muted.Render("waiting for the first sample…")
	}
	l := last.Latency
	p50, p99 := worstProbe(l)
	title := fmt.Sprintf("Latency · probe p50 %s p99 %s", durText(p50), durText(p99))
	var head []string
	facts := []string{"TPS " + rateText(l.TPS), fmt.Sprintf("lock waiters %d", l.LockWaiters)}
	if l.LockWaiters > 0 {
		facts[1] += " (oldest " + durText(l.OldestWaiter.D()) + ")"
	}
	if l.MeanExec != nil {
		facts = append(facts, "mean exec "+durText(l.MeanExec.D()))
	}
	for _, r := range l.Replicas {
		lag := "—"
		if r.ReplayLag != nil {
			lag = durText(r.ReplayLag.D())
		}
		facts = append(facts, fmt.Sprintf("replica %s lag %s", r.Name, lag))
	}
	head = append(head, strings.Join(facts, " · "))
	if l.Error != "" {
		head = append(head, p.st.err.Render("error: ")+l.Error)
	}
	for _, pr := range l.Probes {
		if pr.TimedOut || pr.Error != "" {
			msg := "timed out (waiting in the lock queue?)"
			if pr.Error != "" {
				msg = pr.Error
			}
			head = append(head, p.st.danger.Render("! probe "+pr.Table+": ")+msg)
		}
	}
	rows := h - len(head)
	if rows < 3 {
		return title, strings.Join(head, "\n")
	}
	// Two charts sharing the rows, each with a label line; one axis row.
	chartRows := (rows - 3) / 2
	labelW := 9
	cols := w - labelW
	if chartRows < 1 || cols < 10 {
		return title, strings.Join(head, "\n")
	}
	n := min(p.history.Len(), cols)
	start := p.history.Len() - n
	p99s := make([]float64, n)
	tps := make([]float64, n)
	times := make([]time.Time, n)
	for i := range n {
		s := p.history.At(start + i)
		times[i] = s.Time
		p99s[i], tps[i] = math.NaN(), math.NaN()
		if s.Latency != nil {
			if _, v := worstProbe(s.Latency); v > 0 {
				p99s[i] = float64(v) / float64(time.Millisecond)
			}
			if s.Latency.TPS != nil {
				tps[i] = *s.Latency.TPS
			}
		}
	}
	// The newest sample is at the right edge.
	pad := strings.Repeat(" ", cols-n)
	lines := head
	lines = append(lines, p.st.label.Render("probe p99 (ms)"))
	lines = append(lines, labelled(chart(p99s, chartRows), pad, labelW, maxOf(p99s))...)
	lines = append(lines, p.st.label.Render("TPS"))
	lines = append(lines, labelled(chart(tps, chartRows), pad, labelW, maxOf(tps))...)
	lines = append(lines, strings.Repeat(" ", labelW)+pad+p.axis(times))
	return title, strings.Join(lines, "\n")
}

// axis is the row under the charts: "|" where a marker falls in a
// sample's tick, with the markers' labels listed after the span.
func (p *panesModel) axis(times []time.Time) string {
	row := []rune(strings.Repeat("─", len(times)))
	var labels []string
	for _, m := range p.markers {
		for i := range times {
			next := time.Time{}
			if i+1 < len(times) {
				next = times[i+1]
			}
			if !m.At.Before(times[i]) && (next.IsZero() || m.At.Before(next)) {
				row[i] = '┴'
				labels = append(labels, m.Label)
				break
			}
		}
	}
	out := string(row)
	if len(labels) > 0 {
		out += " " + strings.Join(labels, ", ")
	}
	return out
}

// worstProbe is the highest p50 and p99 among the probes.
func worstProbe(l *monitor.LatencySample) (p50, p99 time.Duration) {
	for _, pr := range l.Probes {
		p50 = max(p50, pr.P50.D())
		p99 = max(p99, pr.P99.D())
	}
	return p50, p99
}

var bars = []rune(" ▁▂▃▄▅▆▇█")

// chart draws values as columns of block characters, rows high, scaled to
// the largest value; NaN (unknown) is a blank column.
func chart(values []float64, rows int) []string {
	top := maxOf(values)
	grid := make([][]rune, rows)
	for r := range grid {
		grid[r] = []rune(strings.Repeat(" ", len(values)))
	}
	for c, v := range values {
		if math.IsNaN(v) || v <= 0 || top <= 0 {
			continue
		}
		eighths := int(math.Round(v / top * float64(rows*8)))
		eighths = max(eighths, 1)
		for r := 0; r < rows && eighths > 0; r++ {
			cell := min(eighths, 8)
			grid[rows-1-r][c] = bars[cell]
			eighths -= cell
		}
	}
	out := make([]string, rows)
	for r := range grid {
		out[r] = string(grid[r])
	}
	return out
}

// labelled puts the scale's top value left of the chart's first row, and
// pad between it and the chart.
func labelled(rows []string, pad string, w int, top float64) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		label := ""
		if i == 0 && top > 0 {
			label = compactNumber(top)
		}
		out[i] = fmt.Sprintf("%*s ", w-1, label) + pad + r
	}
	return out
}

func maxOf(vs []float64) float64 {
	top := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) && v > top {
			top = v
		}
	}
	return top
}

func compactNumber(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func rateText(v *float64) string {
	if v == nil {
		return "—"
	}
	return compactNumber(*v) + "/s"
}

// durText writes a duration compactly: 850µs, 12.3ms, 4.2s, 3m05s.
func durText(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}
