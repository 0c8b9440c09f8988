package tui

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db/monitor"
	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
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

// markersCap bounds the markers kept (the oldest go first).
const markersCap = 256

// panesModel draws the live panes: locks (sessions, blocking tree,
// cutover's sessions marked, the queue behind its DDL) and latency (probe
// p50/p99 and TPS charts over the last minutes, with step markers, lock
// waiters and replication lag). Offline they say they are not connected.
// Rendering is pure: samples in, text out.
//
// The locks pane can take the focus: a session of the blocking tree is
// then selected, and cancelling or terminating it is asked for (the model
// confirms and sends it to the Monitor).
type panesModel struct {
	st        styles
	connected bool
	source    string

	history *monitor.Ring[monitor.Sample]
	// pushed counts every sample pushed: the absolute index of the
	// history's samples, which the charts' columns are aligned to.
	pushed int
	// locks is the newest lock sample with data (a skipped tick keeps
	// the previous one on screen).
	locks   *monitor.LockSample
	markers []Marker
	// status is what the feed is doing while there is no sample
	// ("waiting for a plan", an error opening the monitor); statusErr
	// marks an error.
	status    string
	statusErr bool

	width, height int
	// stacked: the locks pane above the latency pane (narrow terminals),
	// else side by side.
	stacked bool
	// view caches View's result until a sample, a marker, a key or a
	// resize: frames drawn for other key presses reuse it.
	view string

	// focus: the locks pane has the keys; sel is the selected session's
	// pid, rows the sessions in the order shown.
	focus bool
	sel   int
	rows  []treeRow
	// confirm is the cancel or terminate waiting for a yes.
	confirm *pendingSignal
	// result is the outcome of the last cancel or terminate, shown in
	// the locks pane.
	result    string
	resultErr bool
}

// treeRow is one session line of the locks pane: its pid and its depth in
// the blocking tree.
type treeRow struct {
	pid   int
	depth int
}

// pendingSignal is a cancel or terminate asked for and not yet
// confirmed: the session as it was when selected.
type pendingSignal struct {
	terminate bool
	s         monitor.Session
	// blocked are the sessions waiting behind it, directly or not.
	blocked int
}

func newPanes(st styles, connected bool, source string) panesModel {
	return panesModel{st: st, connected: connected, source: source, history: monitor.NewRing[monitor.Sample](historyCap)}
}

// SetSize gives the panes their area (both, side by side when w is 120 or
// more, else one above the other).
func (p *panesModel) SetSize(w, h int) {
	if w != p.width || h != p.height {
		p.width, p.height, p.view = w, h, ""
		p.stacked = w < 120
	}
}

// Push adds a sample.
func (p *panesModel) Push(s monitor.Sample) {
	p.view = ""
	p.history.Push(s)
	p.pushed++
	if s.Locks != nil && !s.Locks.Skipped {
		p.locks = s.Locks
		p.rows = treeRows(s.Locks)
		p.keepSelection()
	}
}

// Mark adds a marker to the charts.
func (p *panesModel) Mark(m Marker) {
	p.view = ""
	p.markers = append(p.markers, m)
	if len(p.markers) > markersCap {
		p.markers = slices.Delete(p.markers, 0, len(p.markers)-markersCap)
	}
}

// setStatus says what the feed is doing while it has no sample.
func (p *panesModel) setStatus(s string, isErr bool) {
	p.view = ""
	p.status, p.statusErr = s, isErr
}

// treeRows orders the sessions as the pane shows them: each blocking tree
// from its head blocker, waiters under what they wait for, then the other
// sessions; each once.
func treeRows(ls *monitor.LockSample) []treeRow {
	byPID := make(map[int]*monitor.Session, len(ls.Sessions))
	for i := range ls.Sessions {
		byPID[ls.Sessions[i].PID] = &ls.Sessions[i]
	}
	rows := make([]treeRow, 0, len(ls.Sessions))
	shown := map[int]bool{}
	var walk func(s *monitor.Session, depth int)
	walk = func(s *monitor.Session, depth int) {
		if shown[s.PID] {
			return
		}
		shown[s.PID] = true
		rows = append(rows, treeRow{s.PID, depth})
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
	return rows
}

// session returns the newest sample's session pid, nil when it is gone.
func (p *panesModel) session(pid int) *monitor.Session {
	if p.locks == nil {
		return nil
	}
	for i := range p.locks.Sessions {
		if p.locks.Sessions[i].PID == pid {
			return &p.locks.Sessions[i]
		}
	}
	return nil
}

// selIndex is the selected row's index, -1 when none.
func (p *panesModel) selIndex() int {
	return slices.IndexFunc(p.rows, func(r treeRow) bool { return r.pid == p.sel })
}

// keepSelection keeps the selected session selected across samples; when
// it is gone, the first row is (a head blocker when there is one).
func (p *panesModel) keepSelection() {
	if !p.focus {
		return
	}
	if p.selIndex() < 0 {
		p.sel = 0
		if len(p.rows) > 0 {
			p.sel = p.rows[0].pid
		}
	}
}

// Focus gives the locks pane the keys (or takes them back).
func (p *panesModel) Focus(on bool) {
	p.view = ""
	p.focus = on
	p.confirm = nil
	if on {
		// A new visit: the last action's result is old news.
		p.result, p.resultErr = "", false
		p.keepSelection()
	}
}

// move moves the selection by d rows.
func (p *panesModel) move(d int) {
	if len(p.rows) == 0 {
		return
	}
	p.view = ""
	i := min(max(p.selIndex()+d, 0), len(p.rows)-1)
	p.sel = p.rows[i].pid
}

// ask asks to cancel or terminate the selected session; false when there
// is none.
func (p *panesModel) ask(terminate bool) bool {
	s := p.session(p.sel)
	if s == nil {
		return false
	}
	p.view = ""
	p.confirm = &pendingSignal{terminate: terminate, s: *s, blocked: p.behind(s.PID)}
	return true
}

// behind counts the sessions waiting behind pid, directly or not.
func (p *panesModel) behind(pid int) int {
	seen := map[int]bool{pid: true}
	next := []int{pid}
	n := 0
	for len(next) > 0 {
		s := p.session(next[0])
		next = next[1:]
		if s == nil {
			continue
		}
		for _, b := range s.Blocks {
			if !seen[b] {
				seen[b] = true
				n++
				next = append(next, b)
			}
		}
	}
	return n
}

// setResult shows the outcome of a cancel or terminate in the locks pane.
func (p *panesModel) setResult(msg string, isErr bool) {
	p.view = ""
	p.result, p.resultErr = msg, isErr
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
	// Side by side, or (narrow) the locks above the latency.
	lw, lh, rw, rh := p.width/2, p.height, p.width-p.width/2, p.height
	if p.stacked {
		lw, lh, rw, rh = p.width, p.height/2, p.width, p.height-p.height/2
	}
	join := func(a, b string) string {
		if p.stacked {
			return a + "\n" + b
		}
		return joinH(a, b)
	}
	if !p.connected {
		msg := p.st.muted.Render("not connected: planning offline against " + p.source + ". Give --db URL to watch locks and latency while a plan runs.")
		return join(
			p.st.frame("Locks", wrap(msg, lw-2), lw, lh, false),
			p.st.frame("Latency", wrap(msg, rw-2), rw, rh, false))
	}
	lt, lb := p.locksView(lw-2, lh-3)
	at, ab := p.latencyView(rw-2, rh-3)
	return join(p.st.frame(lt, lb, lw, lh, p.focus), p.st.frame(at, ab, rw, rh, false))
}

// waiting is a pane's body before its first sample.
func (p *panesModel) waiting() string {
	switch {
	case p.statusErr:
		return p.st.err.Render("error: ") + p.status
	case p.status != "":
		return p.st.muted.Render(p.status)
	}
	return p.st.muted.Render("waiting for the first sample…")
}

// locksView renders the newest lock sample: a title with the counts, the
// lock-queue trap first when there is one, then the blocking trees (head
// blockers first, waiters indented under what they wait for), then the
// other sessions. With the focus, the selected session is marked "›" and
// kept in view.
func (p *panesModel) locksView(w, h int) (string, string) {
	ls := p.locks
	var lines []string
	if p.result != "" {
		style := p.st.ok
		if p.resultErr {
			style = p.st.err
		}
		lines = append(lines, strings.Split(wrap(style.Render(p.result), w), "\n")...)
	}
	if ls == nil {
		if last, ok := p.history.Last(); ok && last.Locks != nil && last.Locks.Error != "" {
			lines = append(lines, p.st.err.Render("error: ")+last.Locks.Error)
		} else {
			lines = append(lines, p.waiting())
		}
		return "Locks", strings.Join(lines, "\n")
	}
	title := fmt.Sprintf("Locks · %d session%s, %d waiting", len(ls.Sessions), plural(len(ls.Sessions)), ls.Waiting)
	if ls.Waiting > 0 {
		title += " (oldest " + durText(ls.OldestWait.D()) + ")"
	}
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
	// The session lines, scrolled so that the selected one is in view.
	first := 0
	if i := p.selIndex(); p.focus && i >= 0 {
		if room := h - len(lines); room > 0 && i >= room {
			first = i - room + 1
		}
	}
	for _, r := range p.rows[first:] {
		if len(lines) > h {
			break
		}
		s := p.session(r.pid)
		if s == nil {
			continue
		}
		line := p.sessionLine(s, r.depth)
		if p.focus {
			if r.pid == p.sel {
				line = p.st.selected.Render("›") + " " + line
			} else {
				line = "  " + line
			}
		}
		lines = append(lines, line)
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

// confirmView is the confirmation of a cancel or terminate: what the
// session is, what it holds, who waits behind it, and what the signal
// does.
func (p *panesModel) confirmView(w int) string {
	c := p.confirm
	s := &c.s
	verb, what := "Cancel the query of", "pg_cancel_backend: its current statement is cancelled; the session stays connected and its transaction, if any, stays open."
	if c.terminate {
		verb, what = "Terminate", "pg_terminate_backend: its transaction is rolled back, its locks are released and its client is disconnected."
	}
	if !c.terminate && strings.HasPrefix(s.State, "idle in transaction") {
		what = "pg_cancel_backend: it runs no statement, so nothing is cancelled and it keeps its locks: terminate it (X) to release them."
	}
	who := s.Application
	if who == "" {
		who = s.BackendType
	}
	row := func(label, v string) string {
		return p.st.label.Render(fmt.Sprintf("%-8s", label)) + " " + v
	}
	lines := []string{
		p.st.title.Render(fmt.Sprintf("%s pid %d?", verb, s.PID)),
		"",
		row("session", fmt.Sprintf("%s · user %s · %s", orDash(who), orDash(s.User), orDash(s.Client))),
		row("state", orDash(s.State)+xactText(s)),
		row("query", orDash(s.Query)),
		row("holds", heldText(s.Locks)),
	}
	if s.WaitingFor != nil {
		lines = append(lines, row("waits", fmt.Sprintf("%s %s for %s", s.WaitingFor.Mode, lockOn(*s.WaitingFor), durText(s.Waiting.D()))))
	}
	if c.blocked > 0 {
		lines = append(lines, row("blocks", fmt.Sprintf("%d session%s wait%s behind it", c.blocked, plural(c.blocked), map[bool]string{true: "s", false: ""}[c.blocked == 1])))
	}
	lines = append(lines, "", wrap(what, w))
	if s.Cutover {
		lines = append(lines, wrap(p.st.danger.Render("This is cutover's own session: ")+"ending it fails the step it runs; the run stays resumable.", w))
	}
	lines = append(lines, "", p.st.label.Render("y")+" yes, "+strings.ToLower(strings.Fields(verb)[0])+" it   "+p.st.label.Render("n/esc")+" no")
	return strings.Join(lines, "\n")
}

func xactText(s *monitor.Session) string {
	if s.XactAge <= 0 {
		return ""
	}
	return " · transaction open " + durText(s.XactAge.D())
}

// heldText lists the granted locks of a session on the target tables,
// strongest first.
func heldText(ls []monitor.Lock) string {
	var held []monitor.Lock
	for _, l := range ls {
		if l.Granted {
			held = append(held, l)
		}
	}
	if len(held) == 0 {
		return "no lock on the tables"
	}
	sort.SliceStable(held, func(i, j int) bool { return lockStrength[held[i].Mode] > lockStrength[held[j].Mode] })
	parts := make([]string, len(held))
	for i, l := range held {
		parts[i] = l.Mode + " " + lockOn(l)
	}
	return strings.Join(parts, ", ")
}

func lockOn(l monitor.Lock) string {
	if l.Table != "" {
		return "on " + l.Table
	}
	return "on a " + l.Type
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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

// latencyView renders the newest latency figures and charts over the
// history kept (up to 10 minutes), several samples a column when it is
// longer than the width: the probes' p50 and p99 (the worst probe's), the
// TPS, and, when there is room, the lock waiters; an axis row marks where
// steps started and ended.
func (p *panesModel) latencyView(w, h int) (string, string) {
	last, ok := p.history.Last()
	if !ok || last.Latency == nil {
		return "Latency", p.waiting()
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
	labelW := 9
	cols := w - labelW
	// Two or three charts sharing the rows, each with a label line; one
	// axis row.
	nCharts := 2
	if (rows-4)/3 >= 3 {
		nCharts = 3
	}
	chartRows := (rows - 1 - nCharts) / nCharts
	if chartRows < 1 || cols < 10 {
		return title, strings.Join(head, "\n")
	}
	c := p.columns(cols)
	// The newest column is at the right edge.
	pad := strings.Repeat(" ", cols-len(c.times))
	lines := head
	lines = append(lines, p.st.label.Render("probe p50 █ p99 ░ (ms)")+p.st.muted.Render(" · "+c.span()))
	// The latency chart gets the rows left over.
	first := rows - 1 - nCharts - (nCharts-1)*chartRows
	lines = append(lines, labelled(band(c.p50, c.p99, first), pad, labelW, maxOf(c.p99))...)
	lines = append(lines, p.st.label.Render("TPS"))
	lines = append(lines, labelled(chart(c.tps, chartRows), pad, labelW, maxOf(c.tps))...)
	if nCharts == 3 {
		lines = append(lines, p.st.label.Render("lock waiters"))
		lines = append(lines, labelled(chart(c.waiters, chartRows), pad, labelW, maxOf(c.waiters))...)
	}
	lines = append(lines, fmt.Sprintf("%*s ", labelW-1, "-"+spanText(c.total))+pad+p.axis(c.times))
	return title, strings.Join(lines, "\n")
}

// chartColumns is the history folded into at most cols columns: per
// column the worst p50 and p99, the mean TPS, the most lock waiters, and
// the time of its first sample.
type chartColumns struct {
	p50, p99, tps, waiters []float64
	times                  []time.Time
	// per is how many samples a column holds; total the time the columns
	// cover.
	per   int
	total time.Duration
}

func (c chartColumns) span() string {
	s := "last " + spanText(c.total)
	if c.per > 1 {
		s += fmt.Sprintf(", %d samples a column", c.per)
	}
	return s
}

// columns folds the history into at most cols columns. Columns are
// aligned to the samples' absolute count, so a new sample only ever
// changes the newest column (or starts one), and the chart does not
// shimmer as it scrolls.
func (p *panesModel) columns(cols int) chartColumns {
	n := p.history.Len()
	per := max(1, (n+cols-1)/cols)
	base := p.pushed - n // absolute index of the history's first sample
	// The first column shown: the newest cols columns.
	lastCol := (p.pushed - 1) / per
	firstCol := max(base/per, lastCol-cols+1)
	k := lastCol - firstCol + 1
	c := chartColumns{per: per,
		p50: make([]float64, k), p99: make([]float64, k), tps: make([]float64, k), waiters: make([]float64, k),
		times: make([]time.Time, k)}
	tpsN := make([]int, k)
	for i := range k {
		c.p50[i], c.p99[i], c.tps[i], c.waiters[i] = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	}
	start := max(0, firstCol*per-base)
	for i := start; i < n; i++ {
		s := p.history.At(i)
		col := (base+i)/per - firstCol
		if c.times[col].IsZero() {
			c.times[col] = s.Time
		}
		l := s.Latency
		if l == nil {
			continue
		}
		if v50, v99 := worstProbe(l); v99 > 0 {
			c.p50[col] = maxNaN(c.p50[col], float64(v50)/float64(time.Millisecond))
			c.p99[col] = maxNaN(c.p99[col], float64(v99)/float64(time.Millisecond))
		}
		if l.TPS != nil {
			if tpsN[col] == 0 {
				c.tps[col] = 0
			}
			c.tps[col] += *l.TPS
			tpsN[col]++
		}
		c.waiters[col] = maxNaN(c.waiters[col], float64(l.LockWaiters))
	}
	for i := range k {
		if tpsN[i] > 0 {
			c.tps[i] /= float64(tpsN[i])
		}
	}
	if n > start {
		c.total = p.history.At(n - 1).Time.Sub(p.history.At(start).Time)
	}
	return c
}

func maxNaN(a, b float64) float64 {
	if math.IsNaN(a) || b > a {
		return b
	}
	return a
}

// spanText writes a chart's span: 45s, 3m, 9m30s.
func spanText(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// axis is the row under the charts: "┴" where a marker falls in a
// column, its label written on the axis after it (or before it, at the
// right edge), cut short when the next marker comes first.
func (p *panesModel) axis(times []time.Time) string {
	row := []rune(strings.Repeat("─", len(times)))
	type mark struct {
		col   int
		label string
	}
	var marks []mark
	for _, m := range p.markers {
		for i := range times {
			next := time.Time{}
			if i+1 < len(times) {
				next = times[i+1]
			}
			if !m.At.Before(times[i]) && (next.IsZero() || m.At.Before(next)) {
				marks = append(marks, mark{i, m.Label})
				break
			}
		}
	}
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].col < marks[j].col })
	for _, mk := range marks {
		row[mk.col] = '┴'
	}
	for j, mk := range marks {
		end := len(row)
		if j+1 < len(marks) {
			end = marks[j+1].col
		}
		label := []rune(" " + mk.label + " ")
		if room := end - mk.col - 1; room >= len(label) {
			copy(row[mk.col+1:], label)
			continue
		}
		if j+1 == len(marks) {
			// At the right edge: before the marker, when the
			// previous one leaves room.
			begin := 0
			if j > 0 {
				begin = marks[j-1].col + 1
			}
			if mk.col-begin >= len(label) {
				copy(row[mk.col-len(label):], label)
				continue
			}
		}
		if room := end - mk.col - 1; room >= 3 {
			copy(row[mk.col+1:], []rune(ansi.Truncate(string(label[:len(label)-1]), room, "…")))
		}
	}
	return string(row)
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

// band draws two series where lo <= hi, such as a p50 and a p99: lo as
// solid columns of block characters, and the cells between lo and hi
// shaded "░"; scaled to the largest hi. NaN is a blank column.
func band(lo, hi []float64, rows int) []string {
	top := maxOf(hi)
	grid := make([][]rune, rows)
	for r := range grid {
		grid[r] = []rune(strings.Repeat(" ", len(hi)))
	}
	for c := range hi {
		h, l := hi[c], lo[c]
		if math.IsNaN(h) || h <= 0 || top <= 0 {
			continue
		}
		if math.IsNaN(l) {
			l = 0
		}
		hiE := max(int(math.Round(h/top*float64(rows*8))), 1)
		loE := int(math.Round(min(l, h) / top * float64(rows*8)))
		for r := range rows {
			inLo, inHi := min(max(loE-r*8, 0), 8), min(max(hiE-r*8, 0), 8)
			switch {
			case inLo > 0:
				grid[rows-1-r][c] = bars[inLo]
			case inHi > 0:
				grid[rows-1-r][c] = '░'
			}
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

// liveState is the model's side of the live panes: the feed, and whether
// the panes are shown.
type liveState struct {
	mon Monitor
	// gen numbers the feeds started; messages of older ones are dropped.
	gen int
	// tables are what the feed watches (or is starting on); ch is where
	// its samples arrive.
	tables []string
	ch     <-chan monitor.Sample
	// show: 0 the default (shown on terminals of 120x36 and more), 1
	// shown, -1 hidden (the Panes key).
	show int
	// showBefore is show when the locks pane took the focus: leaving
	// the pane brings that layout back.
	showBefore int
	// summary is the summary line's rows at the last layout.
	summary int
}

// relayoutSummary lays the screen out again when the summary line comes
// or goes.
func (m *Model) relayoutSummary() {
	if m.summaryRows() != m.live.summary {
		m.layout()
	}
}

// monitorRetryMsg restarts a feed that failed or stopped.
type monitorRetryMsg struct{ gen int }

// monitorRetry is how long a feed that failed waits before trying again.
const monitorRetry = 5 * time.Second

// Mark marks now on the latency charts (the run screen marks where each
// step starts and ends).
func (m *Model) Mark(label string) {
	m.panes.Mark(Marker{At: time.Now(), Label: label})
}

// watchSQL points the live feed at the tables the editor's SQL names
// (as it last parsed, those of them the schema has), while there is no
// plan: the panes show the database from the start, before planning. A
// plan's tables take over (watchPlan); SQL naming no known table leaves
// the feed as it is.
func (m *Model) watchSQL() tea.Cmd {
	if m.live.mon == nil || m.plan != nil {
		return nil
	}
	tables := sqlTables(m.compose.targets, m.compose.schema)
	if len(tables) == 0 || (m.live.gen > 0 && slices.Equal(tables, m.live.tables)) {
		return nil
	}
	m.live.tables = tables
	return m.restartFeed()
}

// sqlTables are the tables among targets (planner.Relations keys) that s
// has, in order, as quoted identifiers (as planTables gives them).
func sqlTables(targets []string, s *schema.Schema) []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, k := range targets {
		t := s.Tables[k]
		if t == nil {
			continue
		}
		if q := (pgx.Identifier{t.Schema, t.Name}).Sanitize(); !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	return out
}

// watchPlan points the live feed at the tables p's steps lock; nothing
// happens when they are the ones already watched.
func (m *Model) watchPlan(p *plans.Plan) tea.Cmd {
	tables := planTables(p)
	if m.live.mon == nil || (m.live.gen > 0 && slices.Equal(tables, m.live.tables)) {
		return nil
	}
	m.live.tables = tables
	return m.restartFeed()
}

// restartFeed starts the feed again on m.live.tables, as a new
// generation.
func (m *Model) restartFeed() tea.Cmd {
	m.live.gen++
	m.live.ch = nil
	if len(m.live.tables) > 0 {
		m.panes.setStatus("connecting to watch "+strings.Join(m.live.tables, ", ")+"…", false)
	}
	return startMonitor(m.ctx, m.live.mon, m.live.gen, m.live.tables)
}

// updateLive handles the feed's messages and the results of cancel and
// terminate.
func (m *Model) updateLive(msg tea.Msg) tea.Cmd {
	l := &m.live
	retry := func(gen int) tea.Cmd {
		return tea.Tick(monitorRetry, func(time.Time) tea.Msg { return monitorRetryMsg{gen} })
	}
	switch msg := msg.(type) {
	case monitorStartedMsg:
		if msg.gen != l.gen {
			// An older Start that finished after a newer one may have
			// replaced it: start the current tables again.
			if msg.ch != nil {
				return m.restartFeed()
			}
			return nil
		}
		switch {
		case msg.err != nil:
			m.panes.setStatus(fmt.Sprintf("cannot watch %s: %v; trying again in %s", strings.Join(msg.tables, ", "), msg.err, monitorRetry), true)
			return retry(msg.gen)
		case msg.ch == nil && len(msg.tables) == 0:
			m.panes.setStatus("connected: plan a change and the panes watch its tables", false)
			return nil
		case msg.ch == nil:
			m.panes.setStatus("none of the change's tables exists yet: nothing to watch", false)
			return nil
		}
		l.ch = msg.ch
		m.panes.setStatus("watching "+strings.Join(msg.tables, ", ")+": waiting for the first sample…", false)
		return nextSample(msg.gen, msg.ch)
	case liveSampleMsg:
		if msg.gen != l.gen {
			return nil
		}
		m.panes.Push(msg.s)
		return nextSample(msg.gen, l.ch)
	case monitorStoppedMsg:
		if msg.gen != l.gen {
			return nil
		}
		l.ch = nil
		m.panes.setStatus("the monitor stopped; trying again in "+monitorRetry.String(), true)
		return retry(msg.gen)
	case monitorRetryMsg:
		if msg.gen != l.gen {
			return nil
		}
		return m.restartFeed()
	case signalledMsg:
		if msg.err != nil {
			m.panes.setResult(msg.err.Error(), true)
		} else {
			m.panes.setResult(msg.res.Message, false)
		}
	}
	return nil
}

// largeTerminal: the panes fit below the screen.
func (m *Model) largeTerminal() bool { return m.width >= 120 && m.height >= 36 }

// panesVisible reports whether the live panes are on screen.
func (m *Model) panesVisible() bool {
	return m.live.show > 0 || (m.live.show == 0 && m.largeTerminal())
}

// panesReplaceBody: on a small terminal, shown panes take the screen's
// place (the Panes key brings the screen back).
func (m *Model) panesReplaceBody() bool { return m.panesVisible() && !m.largeTerminal() }

// panesHeight is the height of the live panes: a strip below the screen
// on terminals of 120x36 and more (half the screen while the locks pane
// has the focus), all of the screen's place on smaller ones, 0 hidden.
func (m *Model) panesHeight() int {
	switch {
	case !m.panesVisible():
		return 0
	case !m.largeTerminal():
		return max(m.height-2, 0)
	case m.panes.focus:
		return max(12, (m.height-2)/2)
	}
	return min(12, m.height/4)
}

// paneKey handles the keys of the live panes: the confirmation of a
// cancel or terminate, the focused locks pane, showing the panes and
// focusing the locks pane. ok reports whether the key was theirs.
func (m *Model) paneKey(msg tea.KeyMsg) (cmd tea.Cmd, ok bool) {
	k := &m.keys
	p := &m.panes
	if c := p.confirm; c != nil {
		switch {
		case key.Matches(msg, k.Yes):
			p.confirm = nil
			p.view = ""
			if m.live.mon == nil {
				p.setResult("not connected: nothing was signalled", true)
				return nil, true
			}
			verb := "cancelling the query of"
			if c.terminate {
				verb = "terminating"
			}
			p.setResult(fmt.Sprintf("%s pid %d…", verb, c.s.PID), false)
			return signal(m.ctx, m.live.mon, c.s.PID, c.terminate), true
		case key.Matches(msg, k.No), msg.Type == tea.KeyEsc:
			p.confirm = nil
			p.view = ""
		}
		// Nothing else while the question is open.
		return nil, true
	}
	if p.focus {
		switch {
		case key.Matches(msg, k.LeaveLock):
			// Back to the layout the operator had: on a small terminal
			// the panes shown for the focus give the screen back.
			p.Focus(false)
			m.live.show = m.live.showBefore
		case key.Matches(msg, k.LockUp):
			p.move(-1)
		case key.Matches(msg, k.LockDown):
			p.move(1)
		case key.Matches(msg, k.CancelPID), key.Matches(msg, k.KillPID):
			if !p.ask(key.Matches(msg, k.KillPID)) {
				m.flash = "no session selected: the locks pane is empty"
			}
		case key.Matches(msg, k.Panes):
			p.Focus(false)
			m.live.show = -1
		case key.Matches(msg, k.Help), key.Matches(msg, k.Quit), key.Matches(msg, k.Screen):
			return nil, false
		}
		m.layout()
		return nil, true
	}
	switch {
	case key.Matches(msg, k.Panes):
		if m.panesVisible() {
			m.live.show = -1
		} else {
			m.live.show = 1
		}
	case key.Matches(msg, k.Locks):
		m.live.showBefore = m.live.show
		if !m.panesVisible() {
			m.live.show = 1
		}
		p.Focus(true)
	default:
		return nil, false
	}
	m.layout()
	return nil, true
}

// syncPaneKeys enables the live panes' keys; with the locks pane focused
// the screen's keys are off (its keys take theirs).
func (m *Model) syncPaneKeys() {
	k := &m.keys
	p := &m.panes
	modal := m.exporting || m.forming
	if m.typing() {
		k.Panes.SetKeys("f2")
		k.Panes.SetHelp("f2", "live panes")
		k.Locks.SetKeys("f3")
		k.Locks.SetHelp("f3", "locks pane")
	} else {
		k.Panes.SetKeys("v", "f2")
		k.Panes.SetHelp("v", "live panes")
		k.Locks.SetKeys("L", "f3")
		k.Locks.SetHelp("L", "locks pane")
	}
	confirm := p.confirm != nil
	k.Panes.SetEnabled(!modal && !confirm)
	k.Locks.SetEnabled(!modal && !confirm && !p.focus && p.connected)
	for _, b := range []*key.Binding{&k.LockUp, &k.LockDown, &k.CancelPID, &k.KillPID, &k.LeaveLock} {
		b.SetEnabled(p.focus && !confirm)
	}
	if p.focus || confirm {
		for _, b := range []*key.Binding{&k.Up, &k.Down, &k.Top, &k.Bottom, &k.NextStep, &k.PrevStep,
			&k.DetailDn, &k.DetailUp, &k.Export, &k.Compose, &k.Edit, &k.Review, &k.Plan, &k.Form,
			&k.Run, &k.RunNext, &k.RunPause, &k.RunAbort, &k.RunBack, &k.Submit, &k.Yes, &k.No} {
			b.SetEnabled(false)
		}
	}
	if confirm {
		k.Yes.SetEnabled(true)
		k.No.SetEnabled(true)
		k.Screen.SetEnabled(false)
	}
}

// confirmOverlay draws the confirmation of a cancel or terminate in a box
// over the screen.
func (m *Model) confirmOverlay(body string) string {
	w := min(m.width-4, 100) - 4
	text := strings.Split(m.panes.confirmView(w), "\n")
	if room := lipgloss.Height(body) - 2; len(text) > room && room >= 3 {
		// Too short for all of it: the question, what was cut, and the
		// last lines (the answers) stay.
		cut := len(text) - room + 1
		text = append([]string{text[0], m.st.warn.Render(fmt.Sprintf("… %d more lines: a taller terminal shows them", cut))}, text[len(text)-(room-2):]...)
	}
	box := m.st.overlay.Render(clip(strings.Join(text, "\n"), w, len(text)))
	h := max(lipgloss.Height(body), lipgloss.Height(box))
	placed := lipgloss.Place(m.width, h, lipgloss.Center, lipgloss.Center, box,
		lipgloss.WithWhitespaceChars(" "))
	return clip(placed, m.width, lipgloss.Height(body))
}

// summaryRows is 1 when the panes are hidden but connected: a line above
// the help bar then keeps the newest figures in view (a run at 80x24
// still shows the lock queue and the probe's latency).
func (m *Model) summaryRows() int {
	p := &m.panes
	if p.connected && (p.history.Len() > 0 || p.status != "") && !m.panesVisible() && m.height >= 12 {
		return 1
	}
	return 0
}

// Summary is the panes in one line of w cells: the lock-queue trap or the
// lock counts, the probe's latency, the TPS, the lock waiters.
func (p *panesModel) Summary(w int) string {
	var parts []string
	last, ok := p.history.Last()
	switch {
	case !ok && p.statusErr:
		parts = append(parts, p.st.err.Render("error: ")+p.status)
	case !ok:
		parts = append(parts, p.st.muted.Render(p.status))
	default:
		if ls := p.locks; ls != nil {
			if len(ls.Traps) > 0 {
				tr := ls.Traps[0]
				parts = append(parts, p.st.danger.Render("! lock queue: ")+fmt.Sprintf("pid %d waits %s, %d behind", tr.PID, durText(tr.Waiting.D()), len(tr.Queue)))
			} else {
				parts = append(parts, fmt.Sprintf("locks %d session%s, %d waiting", len(ls.Sessions), plural(len(ls.Sessions)), ls.Waiting))
			}
		}
		if l := last.Latency; l != nil {
			p50, p99 := worstProbe(l)
			parts = append(parts, fmt.Sprintf("p50/p99 %s/%s", durText(p50), durText(p99)), "TPS "+rateText(l.TPS))
			if l.LockWaiters > 0 {
				parts = append(parts, fmt.Sprintf("waiters %d", l.LockWaiters))
			}
		}
	}
	return padRight(p.st.label.Render("live")+" "+strings.Join(parts, " · "), w)
}
