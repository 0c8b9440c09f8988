package tui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db/monitor"
	"github.com/cutover/cutover/plans"
)

// Monitor feeds the live panes: db/monitor samples of the plan's tables,
// and the locks pane's actions. The model calls it only from tea.Cmds, so
// the UI loop never waits on the database. NewLiveMonitor is the
// implementation over db/monitor; tests may give their own.
type Monitor interface {
	// Start samples tables, replacing what it sampled before (the
	// previous channel is closed), and returns the channel the samples
	// arrive on. The channel is closed when sampling stops: ctx done,
	// another Start, Close. It connects to the database: call it off the
	// UI loop. With no tables it samples nothing and returns nil, nil.
	Start(ctx context.Context, tables []string) (<-chan monitor.Sample, error)
	// Cancel cancels the current query of the backend pid
	// (pg_cancel_backend).
	Cancel(ctx context.Context, pid int) (monitor.SignalResult, error)
	// Terminate ends the backend pid (pg_terminate_backend).
	Terminate(ctx context.Context, pid int) (monitor.SignalResult, error)
	// Close stops sampling and closes the connections.
	Close() error
}

// LiveMonitor is the Monitor over db/monitor: one monitor.Monitor, opened
// on Start and run in a goroutine, reopened when the tables change.
type LiveMonitor struct {
	url  string
	opts monitor.Options

	mu     sync.Mutex
	mon    *monitor.Monitor
	tables []string
	stop   context.CancelFunc
	done   chan struct{}
	closed bool
}

// NewLiveMonitor returns a Monitor of the database at url (as db.Connect
// reads it: "" takes DATABASE_URL, else the PG* variables). It connects on
// the first Start; the caller closes it when the TUI ends.
func NewLiveMonitor(url string, opts monitor.Options) *LiveMonitor {
	return &LiveMonitor{url: url, opts: opts}
}

// errMonitorClosed is Start's error after Close.
var errMonitorClosed = errors.New("the monitor is closed")

// Start implements Monitor. A table that does not exist (yet: a table the
// plan creates) is left out; when none exists it samples nothing.
func (l *LiveMonitor) Start(ctx context.Context, tables []string) (<-chan monitor.Sample, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errMonitorClosed
	}
	l.stopLocked()
	if len(tables) == 0 {
		return nil, nil
	}
	m, err := monitor.Open(ctx, l.url, tables, l.opts)
	if errors.Is(err, monitor.ErrUnknownTable) {
		// Keep the tables that exist, each checked on its own.
		var known []string
		for _, t := range tables {
			one, err := monitor.Open(ctx, l.url, []string{t}, l.opts)
			if err == nil {
				one.Close()
				known = append(known, t)
			} else if !errors.Is(err, monitor.ErrUnknownTable) {
				return nil, err
			}
		}
		if len(known) == 0 {
			return nil, nil
		}
		m, err = monitor.Open(ctx, l.url, known, l.opts)
	}
	if err != nil {
		return nil, err
	}
	run, stop := context.WithCancel(context.WithoutCancel(ctx))
	// The run ends with the caller's context too.
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-run.Done():
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(run)
	}()
	l.mon, l.tables, l.stop, l.done = m, slices.Clone(tables), stop, done
	return m.Samples(), nil
}

// stopLocked stops the running monitor and closes it. l.mu is held.
func (l *LiveMonitor) stopLocked() {
	if l.mon == nil {
		return
	}
	l.stop()
	<-l.done
	l.mon.Close()
	l.mon, l.tables, l.stop, l.done = nil, nil, nil, nil
}

// current returns the running monitor, or an error saying there is none.
func (l *LiveMonitor) current() (*monitor.Monitor, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mon == nil {
		return nil, errors.New("the monitor is not running: plan a change against the database first")
	}
	return l.mon, nil
}

// Cancel implements Monitor.
func (l *LiveMonitor) Cancel(ctx context.Context, pid int) (monitor.SignalResult, error) {
	m, err := l.current()
	if err != nil {
		return monitor.SignalResult{PID: pid, Action: "cancel"}, err
	}
	return m.Cancel(ctx, pid)
}

// Terminate implements Monitor.
func (l *LiveMonitor) Terminate(ctx context.Context, pid int) (monitor.SignalResult, error) {
	m, err := l.current()
	if err != nil {
		return monitor.SignalResult{PID: pid, Action: "terminate"}, err
	}
	return m.Terminate(ctx, pid)
}

// Close implements Monitor: it stops sampling and closes the connections.
// Start fails after it.
func (l *LiveMonitor) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopLocked()
	l.closed = true
	return nil
}

// planTables are the tables a plan's steps lock, in order, each once, as
// quoted identifiers (the monitor resolves them with to_regclass, which
// parses its argument as SQL would).
func planTables(p *plans.Plan) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, ref := range p.Steps() {
		t := ref.Step.Table
		if t == "" {
			continue
		}
		var id pgx.Identifier
		if schema, name, ok := strings.Cut(t, "."); ok {
			id = pgx.Identifier{schema, name}
		} else {
			id = pgx.Identifier{t}
		}
		if q := id.Sanitize(); !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	return out
}

// The messages of the live feed. gen numbers the feeds: a message of an
// older one (before a retarget) is dropped.
type (
	monitorStartedMsg struct {
		gen    int
		tables []string
		ch     <-chan monitor.Sample
		err    error
	}
	liveSampleMsg struct {
		gen int
		s   monitor.Sample
	}
	monitorStoppedMsg struct{ gen int }
	// signalledMsg is the result of a cancel or terminate.
	signalledMsg struct {
		res monitor.SignalResult
		err error
	}
)

// startMonitor returns the command that (re)starts the feed on tables.
func startMonitor(ctx context.Context, mon Monitor, gen int, tables []string) tea.Cmd {
	return func() tea.Msg {
		ch, err := mon.Start(ctx, tables)
		return monitorStartedMsg{gen: gen, tables: tables, ch: ch, err: err}
	}
}

// nextSample returns the command that waits for the feed's next sample.
// It runs in its own goroutine (a tea.Cmd): the UI loop never waits.
func nextSample(gen int, ch <-chan monitor.Sample) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		s, ok := <-ch
		if !ok {
			return monitorStoppedMsg{gen: gen}
		}
		return liveSampleMsg{gen: gen, s: s}
	}
}

// signal returns the command that cancels or terminates pid.
func signal(ctx context.Context, mon Monitor, pid int, terminate bool) tea.Cmd {
	return func() tea.Msg {
		var res monitor.SignalResult
		var err error
		if terminate {
			res, err = mon.Terminate(ctx, pid)
		} else {
			res, err = mon.Cancel(ctx, pid)
		}
		return signalledMsg{res: res, err: err}
	}
}
