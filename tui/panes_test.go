package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/cutover/cutover/db/monitor"
	"github.com/cutover/cutover/plans"
)

// connectedBackend plans offline but says it is connected, so the panes
// render the samples the tests give them.
type connectedBackend struct{ *OfflineBackend }

func (connectedBackend) Connected() bool { return true }
func (b connectedBackend) Plan(ctx context.Context, sql string) (*plans.Plan, error) {
	return b.OfflineBackend.Plan(ctx, sql)
}

var t0 = time.Date(2026, 11, 21, 7, 0, 0, 0, time.UTC)

func ms(f float64) monitor.Millis { return monitor.Millis(f * float64(time.Millisecond)) }
func fp(f float64) *float64       { return &f }

// trapSample is the lock-queue trap: an idle-in-transaction session holds
// a lock on customer, cutover's ALTER waits behind it, and a reader waits
// behind cutover.
func trapSample(seq int) monitor.Sample {
	return monitor.Sample{
		Seq:  int64(seq),
		Time: t0.Add(time.Duration(seq) * time.Second),
		Locks: &monitor.LockSample{
			Waiting: 2, OldestWait: ms(2300),
			Sessions: []monitor.Session{
				{PID: 100, Application: "shop-api", User: "shop", Client: "10.0.4.7:51544", State: "idle in transaction", XactAge: ms(12000),
					Query:  "UPDATE customer SET active = 1 WHERE customer_id = 7",
					Locks:  []monitor.Lock{{Table: "public.customer", Type: "relation", Mode: "RowExclusiveLock", Granted: true}},
					Blocks: []int{200}, HeadBlocker: true},
				{PID: 200, Application: "cutover", Cutover: true, State: "active",
					Query:      `ALTER TABLE "public"."customer" ADD COLUMN "email_address" text`,
					WaitingFor: &monitor.Lock{Table: "public.customer", Type: "relation", Mode: "AccessExclusiveLock"},
					Waiting:    ms(2300), BlockedBy: []int{100}, Blocks: []int{300}},
				{PID: 300, Application: "shop-web", State: "active", Query: "SELECT * FROM customer WHERE customer_id = 9",
					WaitingFor: &monitor.Lock{Table: "public.customer", Type: "relation", Mode: "AccessShareLock"},
					Waiting:    ms(1100), BlockedBy: []int{200}},
				{PID: 400, Application: "reports", State: "active", Query: "SELECT count(*) FROM rental",
					Locks: []monitor.Lock{{Table: "public.customer", Type: "relation", Mode: "AccessShareLock", Granted: true}}},
			},
			Traps: []monitor.Trap{{PID: 200, Table: "public.customer", Mode: "AccessExclusiveLock", Waiting: ms(2300),
				BlockedBy: []int{100}, Queue: []int{300}, OldestQueued: ms(1100)}},
		},
		Latency: latency(seq),
	}
}

// latency is a made-up but plausible series: steady, then the probe's p99
// climbs and TPS falls while cutover waits in the queue (ticks 40-50).
func latency(seq int) *monitor.LatencySample {
	p99, tps := 2.0+float64(seq%5)*0.2, 900.0+float64(seq%7)*10
	if seq >= 40 && seq <= 50 {
		p99, tps = 250+float64(seq-40)*100, 120
	}
	return &monitor.LatencySample{
		Rates: "ok", TPS: fp(tps), LockWaiters: 1, OldestWaiter: ms(1100),
		Statements: "ok", MeanExec: func() *monitor.Millis { m := ms(0.8); return &m }(),
		Probes: []monitor.Probe{{Table: "public.customer", Last: ms(p99), N: 30, P50: ms(p99 / 3), P95: ms(p99 * 0.9), P99: ms(p99), Max: ms(p99 * 1.2)}},
		Replicas: []monitor.Replica{{Name: "replica1", State: "streaming", SyncState: "async",
			ReplayLag: func() *monitor.Millis { m := ms(12); return &m }()}},
	}
}

func livePanes(w, h int) *panesModel {
	p := newPanes(newStyles(asciiRenderer()), true, "postgres://shop")
	for i := 1; i <= 60; i++ {
		p.Push(trapSample(i))
	}
	p.Mark(Marker{At: t0.Add(40 * time.Second), Label: "E1 start"})
	p.Mark(Marker{At: t0.Add(50*time.Second + 500*time.Millisecond), Label: "E1 done"})
	p.SetSize(w, h)
	return &p
}

func TestPanesRenderSamples(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			// What the model gives them: a strip below the screen at
			// 160x48, the screen's place (one above the other) at 80x24.
			h := 12
			if sz.h < 40 {
				h = sz.h - 2
			}
			p := livePanes(sz.w, h)
			v := p.View()
			lines := strings.Split(v, "\n")
			if len(lines) != h {
				t.Fatalf("%d lines, want %d", len(lines), h)
			}
			for i, l := range lines {
				if w := lipglossWidth(l); w != sz.w {
					t.Errorf("line %d is %d wide, want %d: %q", i+1, w, sz.w, l)
				}
			}
			wants := []string{"Locks · 4 sessions", "! lock queue: cutover pid 200", "Latency · probe p50", "┴"}
			if sz.w >= 160 {
				wants = append(wants,
					"Locks · 4 sessions, 2 waiting (oldest 2.3s)",
					"100 shop-api BLOCKER holds RowExclusiveLock · idle in transaction",
					"└ 200 cutover [cutover] waits 2.3s AccessExclusiveLock",
					"TPS 940/s · lock waiters 1 (oldest 1.1s)")
			}
			for _, want := range wants {
				if !strings.Contains(v, want) {
					t.Errorf("panes lack %q:\n%s", want, v)
				}
			}
			// The trap is never cut: wrapped, all of it is there.
			var left []string
			for _, l := range lines {
				if sz.w >= 120 {
					l = string([]rune(l)[:sz.w/2])
				}
				left = append(left, l)
			}
			flat := strings.Join(strings.Fields(strings.NewReplacer("│", " ").Replace(strings.Join(left, "\n"))), " ")
			if !strings.Contains(flat, "1 queued behind it (oldest 1.1s)") {
				t.Errorf("trap line cut:\n%s", v)
			}
			golden.RequireEqual(t, []byte(v))
		})
	}
}

// The blocking tree nests waiters under what they wait for, the head
// blocker first, and lists each session once.
func TestLocksTreeOrder(t *testing.T) {
	p := livePanes(200, 14)
	_, body := p.locksView(200, 12)
	var order []string
	for _, l := range strings.Split(body, "\n")[1:] {
		f := strings.Fields(strings.TrimLeft(l, " └"))
		order = append(order, f[0])
	}
	want := []string{"100", "200", "300", "400"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("order %v, want %v:\n%s", order, want, body)
	}
	if !strings.Contains(body, "  └ 300 shop-web waits 1.1s AccessShareLock") {
		t.Errorf("300 not nested two levels under 100:\n%s", body)
	}
}

func TestChart(t *testing.T) {
	got := chart([]float64{0, 1, 2, 4, nan()}, 2)
	want := []string{"   █ ", " ▄██ "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("chart = %q, want %q", got, want)
	}
}

func nan() float64 { var z float64; return z / z }

// A skipped lock tick keeps the previous sessions on screen.
func TestSkippedLockTickKeepsPrevious(t *testing.T) {
	p := livePanes(160, 12)
	p.Push(monitor.Sample{Seq: 61, Time: t0.Add(61 * time.Second), Locks: &monitor.LockSample{Skipped: true}, Latency: latency(61)})
	if !strings.Contains(p.View(), "4 sessions") {
		t.Fatal("a skipped tick cleared the locks pane")
	}
}

// The full screen with both panes populated and a full history (10
// minutes of samples, step markers), at 160x48 (issue 7: under 2 ms),
// without colours (NO_COLOR) and with 256 colours; with the panes as a
// strip, and with the locks pane focused (half the screen, a selection).
func BenchmarkViewFullScreen160x48(b *testing.B) {
	for _, prof := range []struct {
		name string
		p    termenv.Profile
	}{{"nocolor", termenv.Ascii}, {"256color", termenv.ANSI256}} {
		for _, focus := range []bool{false, true} {
			name := prof.name + "/strip"
			if focus {
				name = prof.name + "/focused"
			}
			b.Run(name, func(b *testing.B) {
				r := asciiRenderer()
				r.SetColorProfile(prof.p)
				m := New(Options{Backend: connectedBackend{pagilaBackend()}, Renderer: r, SQL: renameSQL})
				run(m, tea.WindowSizeMsg{Width: 160, Height: 48})
				keys(m, "ctrl+p", "n")
				for i := 1; i <= historyCap; i++ {
					run(m, SampleMsg{trapSample(i)})
					if i%60 == 0 {
						m.panes.Mark(Marker{At: t0.Add(time.Duration(i) * time.Second), Label: fmt.Sprintf("step %d", i/60)})
					}
				}
				if focus {
					keys(m, "L", "j")
				}
				b.Run("frame", func(b *testing.B) {
					b.ReportAllocs()
					for range b.N {
						_ = m.View()
					}
				})
				// A new sample every frame: the panes are drawn again.
				b.Run("sample", func(b *testing.B) {
					b.ReportAllocs()
					for i := range b.N {
						m.Update(SampleMsg{trapSample(historyCap + 1 + i)})
						_ = m.View()
					}
				})
			})
		}
	}
}

// The review screen with both live panes populated, at 160x48: what the
// run screen will show around the current step.
func TestGoldenReviewWithLivePanes(t *testing.T) {
	m := New(Options{Backend: connectedBackend{pagilaBackend()}, Renderer: asciiRenderer(), SQL: renameSQL})
	run(m, tea.WindowSizeMsg{Width: 160, Height: 48})
	keys(m, "ctrl+p")
	for i := 1; i <= 60; i++ {
		run(m, SampleMsg{trapSample(i)})
	}
	m.panes.Mark(Marker{At: t0.Add(40 * time.Second), Label: "E1 start"})
	v := m.View()
	if !strings.Contains(v, "Locks · 4 sessions") || !strings.Contains(v, "Step E1-add-column-email-address") {
		t.Fatalf("screen lacks the panes or the step:\n%s", v)
	}
	golden.RequireEqual(t, []byte(v))
}

// livePanesModel is the review screen of the rename with the live panes
// fed 60 deterministic samples (the lock-queue trap; a latency spike while
// E1 waits, between its markers).
func livePanesModel(w, h int) *Model {
	m := New(Options{Backend: connectedBackend{pagilaBackend()}, Renderer: asciiRenderer(), SQL: renameSQL})
	run(m, tea.WindowSizeMsg{Width: w, Height: h})
	keys(m, "ctrl+p")
	for i := 1; i <= 60; i++ {
		run(m, SampleMsg{trapSample(i)})
	}
	m.panes.Mark(Marker{At: t0.Add(40 * time.Second), Label: "E1 start"})
	m.panes.Mark(Marker{At: t0.Add(50*time.Second + 500*time.Millisecond), Label: "E1 done"})
	return m
}

// The panes on demand, in the program (teatest): at 80x24 the panes key
// shows them in the screen's place, one above the other; at 160x48 they
// are a strip below the screen, and focusing the locks pane gives it half
// the height, the head blocker selected. The confirmation of a terminate
// names the session, what it holds and who waits behind it.
func TestGoldenLivePanes(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			m := livePanesModel(sz.w, sz.h)
			tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(sz.w, sz.h))
			if sz.w < 120 {
				tm.Type("v")
			}
			tm.Type("L")
			waitScreen(t, tm, "c cancel query")
			tm.Type("j")
			tm.Type("t")
			waitScreen(t, tm, "Terminate pid 200?")
			tm.Type("n")
			tm.Type("k")
			waitScreen(t, tm, "› 100 shop-api")
			m, view := finalView(t, tm)
			if m.panes.sel != 100 || m.panes.confirm != nil {
				t.Fatalf("selected %d, confirm %v; want 100 and none", m.panes.sel, m.panes.confirm)
			}
			golden.RequireEqual(t, []byte(view))
		})
	}
}

// The confirmation overlay, at both sizes.
func TestGoldenLivePanesConfirm(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			m := livePanesModel(sz.w, sz.h)
			keys(m, "L", "t")
			v := m.View()
			for _, want := range []string{"Terminate pid 100?", "shop-api · user", "idle in transaction · transaction open 12.0s",
				"RowExclusiveLock on public.customer", "2 sessions wait behind it", "y yes, terminate it"} {
				if !strings.Contains(v, want) {
					t.Errorf("confirmation lacks %q:\n%s", want, v)
				}
			}
			golden.RequireEqual(t, []byte(v))
		})
	}
}

// At 80x24 with the panes hidden, a line above the help bar keeps the
// live figures in view.
func TestLiveSummaryLine(t *testing.T) {
	m := livePanesModel(80, 24)
	v := m.View()
	if !strings.Contains(v, "live ! lock queue: pid 200 waits 2.3s, 1 behind · p50/p99 666µs/2.0ms") {
		t.Fatalf("no summary line:\n%s", v)
	}
	assertFits(t, v, 80, 24)
	keys(m, "v")
	if v := m.View(); strings.Contains(v, "live ! lock queue") || !strings.Contains(v, "Locks · 4 sessions") {
		t.Fatalf("with the panes shown, no summary line but the panes:\n%s", v)
	}
}

// The terminal shrinking under the focused locks pane gives the keys back
// to the screen (the panes are hidden by default at 80x24).
func TestShrinkUnfocusesLocks(t *testing.T) {
	m := livePanesModel(160, 48)
	keys(m, "L")
	if !m.panes.focus {
		t.Fatal("L did not focus the locks pane")
	}
	run(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	if m.panes.focus || m.keys.CancelPID.Enabled() {
		t.Fatal("the hidden locks pane kept the focus")
	}
	keys(m, "j")
	if s := m.review.SelectedStep(); s == nil || s.ID == "E1-add-column-email-address" {
		t.Fatalf("j did not move the review selection: %+v", s)
	}
}

// The p50/p99 band: p50 solid from the bottom, p99 shaded above it.
func TestBand(t *testing.T) {
	got := band([]float64{1, 0.5, nan()}, []float64{2, 2, nan()}, 2)
	want := []string{"░░ ", "█▄ "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("band = %q, want %q", got, want)
	}
}
