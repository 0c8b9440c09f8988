package tui

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/db/monitor"
)

// feed drives a Model as the bubbletea runtime does: each command runs in
// its own goroutine and its message comes back to the one loop updating
// the model, so the live feed's receive never blocks the loop.
type feed struct {
	t    *testing.T
	m    *Model
	msgs chan tea.Msg
}

func newFeed(t *testing.T, m *Model, w, h int) *feed {
	f := &feed{t: t, m: m, msgs: make(chan tea.Msg, 256)}
	f.handle(tea.WindowSizeMsg{Width: w, Height: h})
	f.spawn(m.Init())
	return f
}

func (f *feed) spawn(cmd tea.Cmd) {
	if cmd != nil {
		go func() { f.msgs <- cmd() }()
	}
}

func (f *feed) handle(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil, tea.QuitMsg:
	case tea.BatchMsg:
		for _, c := range msg {
			f.spawn(c)
		}
	default:
		_, cmd := f.m.Update(msg)
		f.spawn(cmd)
	}
}

func (f *feed) keys(ks ...string) {
	for _, k := range ks {
		f.handle(keyMsg(k))
	}
}

// until handles messages until cond holds, checked between messages.
func (f *feed) until(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case msg := <-f.msgs:
			f.handle(msg)
		case <-deadline:
			f.t.Fatalf("timed out waiting for %s; screen:\n%s", what, f.m.View())
		}
	}
}

// appConn connects with an application_name, closed when the test ends.
func appConn(t *testing.T, dbURL, app string) (*pgx.Conn, int) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	conn := dbtest.Connect(t, u.String())
	return conn, int(conn.PgConn().PID())
}

func exec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func background(conn *pgx.Conn, sql string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), sql)
		done <- err
	}()
	return done
}

// activity is pid's pg_stat_activity state, "" when it has no session.
func activity(t *testing.T, admin *pgx.Conn, pid int) string {
	t.Helper()
	var state string
	err := admin.QueryRow(context.Background(), "SELECT coalesce(state, '') FROM pg_stat_activity WHERE pid = $1", pid).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// The live feed end to end on a real server: the model plans the email
// rename (offline, pagila), so the feed watches public.customer; a session
// holds a lock on it, cutover's ALTER waits behind it and a reader queues
// behind the ALTER. The locks pane shows the tree and the trap; the
// blocker, selected in the focused pane, is cancelled (a running query)
// or terminated (an idle transaction) after the confirmation, and
// pg_stat_activity says so.
func TestLiveLocksPaneCancelTerminate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		terminate bool
	}{{"cancel a running query", false}, {"terminate an idle transaction", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dbURL := dbtest.NewDatabase(t)
			dbtest.LoadSQL(t, dbURL, `CREATE TABLE customer (customer_id int PRIMARY KEY, email text);
				INSERT INTO customer SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 100) g;`)
			admin := dbtest.Connect(t, dbURL)
			holder, holderPID := appConn(t, dbURL, "shop-api")
			ddl, ddlPID := appConn(t, dbURL, "cutover-apply")
			reader, readerPID := appConn(t, dbURL, "shop-web")

			mon := NewLiveMonitor(dbURL, monitor.Options{Interval: 200 * time.Millisecond})
			t.Cleanup(func() { mon.Close() })
			m := New(Options{Backend: pagilaBackend(), Renderer: asciiRenderer(), SQL: renameSQL,
				Debounce: time.Millisecond, Monitor: mon})
			f := newFeed(t, m, 160, 48)
			f.until("the schema", func() bool { return m.compose.schema != nil })
			f.keys("ctrl+p")
			f.until("the first sample", func() bool { return m.panes.history.Len() > 0 })
			if got := strings.Join(m.live.tables, ","); got != `"public"."customer"` {
				t.Fatalf("the feed watches %s, want the plan's table", got)
			}

			// The blocker: a running statement holding AccessShareLock, or
			// an idle transaction holding RowExclusiveLock.
			var held <-chan error
			if tc.terminate {
				exec(t, holder, "BEGIN")
				exec(t, holder, "UPDATE customer SET email = 'x' WHERE customer_id = 1")
			} else {
				held = background(holder, "SELECT pg_sleep(60) FROM customer LIMIT 1")
			}
			waitUntil(t, 10*time.Second, "the holder's lock", func() bool {
				var n int
				admin.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE pid = $1 AND relation = 'customer'::regclass AND granted", holderPID).Scan(&n)
				return n > 0
			})
			ddlDone := background(ddl, "ALTER TABLE customer ADD COLUMN email_address text")
			waitUntil(t, 10*time.Second, "the ALTER to wait", func() bool { return activity(t, admin, ddlPID) == "active" && waiting(t, admin, ddlPID) })
			readDone := background(reader, "SELECT count(*) FROM customer")
			waitUntil(t, 10*time.Second, "the reader to queue", func() bool { return waiting(t, admin, readerPID) })

			trap := "! lock queue: cutover pid " + strconv.Itoa(ddlPID)
			f.until("the blocking tree in the locks pane", func() bool {
				v := m.View()
				return strings.Contains(v, trap) && strings.Contains(v, strconv.Itoa(holderPID)+" shop-api BLOCKER") &&
					strings.Contains(v, "└ "+strconv.Itoa(ddlPID)+" cutover-apply [cutover] waits") &&
					strings.Contains(v, "└ "+strconv.Itoa(readerPID)+" shop-web waits")
			})

			// Focus the pane: the head blocker is selected first.
			f.keys("L")
			if m.panes.sel != holderPID {
				t.Fatalf("selected pid %d, want the head blocker %d:\n%s", m.panes.sel, holderPID, m.View())
			}
			action := "c"
			if tc.terminate {
				action = "t"
			}
			f.keys(action)
			v := m.View()
			for _, want := range []string{"pid " + strconv.Itoa(holderPID) + "?", "shop-api · user", "2 sessions wait behind it"} {
				if !strings.Contains(v, want) {
					t.Errorf("the confirmation lacks %q:\n%s", want, v)
				}
			}
			if tc.terminate {
				for _, want := range []string{"Terminate pid", "idle in transaction", "RowExclusiveLock on public.customer", "UPDATE customer SET email"} {
					if !strings.Contains(v, want) {
						t.Errorf("the confirmation lacks %q:\n%s", want, v)
					}
				}
			} else {
				for _, want := range []string{"Cancel the query of pid", "AccessShareLock on public.customer", "SELECT pg_sleep(60)"} {
					if !strings.Contains(v, want) {
						t.Errorf("the confirmation lacks %q:\n%s", want, v)
					}
				}
			}
			// Nothing is signalled before the yes: n keeps it.
			f.keys("n")
			if m.panes.confirm != nil {
				t.Fatalf("n left the confirmation open:\n%s", m.View())
			}
			if st := activity(t, admin, holderPID); st == "" {
				t.Fatal("n did not keep the session")
			}
			f.keys(action, "y")
			f.until("the result in the locks pane", func() bool {
				return strings.Contains(m.panes.result, "sent cancel to pid "+strconv.Itoa(holderPID)) ||
					strings.Contains(m.panes.result, "terminated pid "+strconv.Itoa(holderPID))
			})
			if m.panes.resultErr {
				t.Fatalf("the signal failed: %s", m.panes.result)
			}
			if !strings.Contains(m.View(), m.panes.result[:30]) {
				t.Errorf("the result is not on screen:\n%s", m.View())
			}
			if tc.terminate {
				waitUntil(t, 10*time.Second, "the session to end", func() bool { return activity(t, admin, holderPID) == "" })
			} else {
				var pgErr *pgconn.PgError
				if err := <-held; !errors.As(err, &pgErr) || pgErr.Code != "57014" {
					t.Fatalf("the holder's query ended with %v, want query_canceled", err)
				}
				if st := activity(t, admin, holderPID); st != "idle" {
					t.Fatalf("the holder is %q after the cancel, want idle", st)
				}
			}
			// The queue drains: the ALTER and the reader get their locks.
			for _, done := range []<-chan error{ddlDone, readDone} {
				select {
				case err := <-done:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the queue behind the blocker did not drain")
				}
			}
			f.until("the pane to show no waiter", func() bool {
				return m.panes.locks != nil && m.panes.locks.Waiting == 0
			})
		})
	}
}

// waiting reports whether pid waits for a lock.
func waiting(t *testing.T, admin *pgx.Conn, pid int) bool {
	t.Helper()
	var w bool
	if err := admin.QueryRow(context.Background(), "SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&w); err != nil {
		t.Fatal(err)
	}
	return w
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeMonitor records what the model asks; its feed is a channel the test
// writes to. (The database side is tested above and in db/monitor.)
type fakeMonitor struct {
	mu     sync.Mutex
	starts [][]string
	ch     chan monitor.Sample
}

func newFakeMonitor() *fakeMonitor { return &fakeMonitor{} }

// Starts returns the tables of each Start so far (Start runs in the
// model's commands, off the test's goroutine).
func (f *fakeMonitor) Starts() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.starts)
}

// send delivers a sample on the current feed.
func (f *fakeMonitor) send(s monitor.Sample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ch <- s
}

func (f *fakeMonitor) Start(ctx context.Context, tables []string) (<-chan monitor.Sample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ch != nil {
		close(f.ch)
	}
	f.starts = append(f.starts, tables)
	f.ch = make(chan monitor.Sample, 8)
	return f.ch, nil
}

func (f *fakeMonitor) Cancel(ctx context.Context, pid int) (monitor.SignalResult, error) {
	return monitor.SignalResult{}, errors.New("not allowed")
}

func (f *fakeMonitor) Terminate(ctx context.Context, pid int) (monitor.SignalResult, error) {
	return monitor.SignalResult{PID: pid, Message: "terminated pid " + strconv.Itoa(pid)}, nil
}
func (f *fakeMonitor) Close() error { return nil }

// The feed follows the plan: a plan starts it on its tables, the same
// tables again do not restart it, other tables retarget it, and samples
// of the previous feed are dropped.
func TestLiveFeedFollowsPlan(t *testing.T) {
	mon := newFakeMonitor()
	m := New(Options{Backend: pagilaBackend(), Renderer: asciiRenderer(), SQL: renameSQL, Debounce: time.Millisecond, Monitor: mon})
	f := newFeed(t, m, 160, 48)
	if !strings.Contains(m.View(), "plan a change") && !strings.Contains(m.View(), "waiting for") {
		t.Errorf("the panes before a plan:\n%s", m.View())
	}
	f.until("the schema", func() bool { return m.compose.schema != nil })
	f.keys("ctrl+p")
	f.until("the feed", func() bool { return m.live.ch != nil })
	if len(mon.Starts()) != 1 || strings.Join(mon.Starts()[0], ",") != `"public"."customer"` {
		t.Fatalf("starts = %q", mon.Starts())
	}
	first := m.live.gen
	mon.send(trapSample(1))
	f.until("the sample", func() bool { return m.panes.history.Len() == 1 })

	// The same plan again: the feed goes on.
	f.keys("tab", "ctrl+p")
	f.until("the plan", func() bool { return m.Screen() == "Review" && !m.planning })
	if len(mon.Starts()) != 1 {
		t.Fatalf("the same tables restarted the feed: %q", mon.Starts())
	}
	// Another table: retargeted.
	m.compose.editor.SetValue("ALTER TABLE rental ADD COLUMN note text;")
	f.keys("tab", "ctrl+p")
	f.until("the new feed", func() bool { return m.live.gen > first && m.live.ch != nil })
	if got := strings.Join(mon.Starts()[len(mon.Starts())-1], ","); got != `"public"."rental"` {
		t.Fatalf("retargeted to %q", got)
	}
	// A sample of the old feed arriving late is dropped.
	f.handle(liveSampleMsg{gen: first, s: trapSample(2)})
	if m.panes.history.Len() != 1 {
		t.Fatal("a sample of the previous feed was kept")
	}
	mon.send(trapSample(3))
	f.until("the new feed's sample", func() bool { return m.panes.history.Len() == 2 })

	// Terminate from the focused locks pane; the result is shown in place.
	f.keys("L", "t", "y")
	f.until("the result", func() bool { return m.panes.result == "terminated pid 100" })
	if !strings.Contains(m.View(), "terminated pid 100") {
		t.Errorf("result not on screen:\n%s", m.View())
	}
	// A refused cancel says why, as an error.
	f.keys("c", "y")
	f.until("the error", func() bool { return m.panes.resultErr })
	if !strings.Contains(m.View(), "not allowed") {
		t.Errorf("error not on screen:\n%s", m.View())
	}
}

// The panes on demand: hidden by default at 80x24 (the header says they
// are not connected offline), shown in the screen's place by the panes
// key, which the help lists; the terminal grows to 160x48 live and they
// become a strip below the screen; hidden again by the key.
func TestPanesOnDemand(t *testing.T) {
	m := newTestModel(t, renameSQL)
	run(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	keys(m, "ctrl+p")
	if m.panesVisible() || !strings.Contains(m.View(), "(panes: not connected)") {
		t.Fatalf("panes at 80x24 by default:\n%s", m.View())
	}
	keys(m, "?")
	if v := m.View(); !strings.Contains(v, "live panes") {
		t.Errorf("help lacks the panes key:\n%s", v)
	}
	keys(m, "?", "v")
	v := m.View()
	if !strings.Contains(v, "not connected: planning offline") || strings.Contains(v, "Step E1") {
		t.Fatalf("v at 80x24 should show the panes in the screen's place:\n%s", v)
	}
	assertFits(t, v, 80, 24)
	run(m, tea.WindowSizeMsg{Width: 160, Height: 48})
	v = m.View()
	if !strings.Contains(v, "Step E1") || !strings.Contains(v, "not connected: planning offline") {
		t.Fatalf("at 160x48 the panes should be below the screen:\n%s", v)
	}
	assertFits(t, v, 160, 48)
	keys(m, "v")
	if v := m.View(); strings.Contains(v, "not connected: planning offline") {
		t.Fatalf("v did not hide the panes:\n%s", v)
	}
	// Offline, the locks pane cannot take the focus.
	keys(m, "L")
	if m.panes.focus {
		t.Fatal("the locks pane took the focus offline")
	}
	// While typing SQL the keys are f2/f3.
	keys(m, "c")
	if !m.compose.Focused() {
		t.Fatal("not editing")
	}
	keys(m, "f2")
	if !m.panesVisible() || strings.Contains(m.compose.Value(), "f2") {
		t.Fatal("f2 while editing did not show the panes")
	}
}

func assertFits(t *testing.T, v string, w, h int) {
	t.Helper()
	lines := strings.Split(v, "\n")
	if len(lines) != h {
		t.Errorf("%d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if lw := lipglossWidth(l); lw != w {
			t.Errorf("line %d is %d wide, want %d", i+1, lw, w)
		}
	}
}

func TestPlanTables(t *testing.T) {
	m := newTestModel(t, `ALTER TABLE customer RENAME COLUMN email TO email_address; ALTER TABLE rental ADD COLUMN note text;`)
	keys(m, "ctrl+p")
	if m.Plan() == nil {
		t.Fatalf("no plan: %v", m.planErr)
	}
	if got := strings.Join(planTables(m.Plan()), ","); got != `"public"."customer","public"."rental"` {
		t.Fatalf("planTables = %s", got)
	}
}

// The feed starts before any plan, on the tables the editor's SQL names
// (those the schema has): the panes show real data from the start. Other
// SQL retargets it; SQL naming no known table leaves it be; the plan's
// tables then take over, and SQL edited after a plan does not move it.
func TestLiveFeedStartsOnSQLTables(t *testing.T) {
	mon := newFakeMonitor()
	m := New(Options{Backend: pagilaBackend(), Renderer: asciiRenderer(),
		SQL: "ALTER TABLE rental ADD COLUMN note text; ALTER TABLE payment ALTER COLUMN amount SET NOT NULL;", Debounce: time.Millisecond, Monitor: mon})
	f := newFeed(t, m, 160, 48)
	if v := m.View(); !strings.Contains(v, "connected: waiting for a change naming a table to watch") {
		t.Errorf("the panes before the SQL parsed:\n%s", v)
	}
	f.until("the feed on the SQL's tables", func() bool { return m.live.ch != nil })
	if m.Plan() != nil {
		t.Fatal("planned without ctrl+p")
	}
	if got := strings.Join(mon.Starts()[0], ","); got != `"public"."rental","public"."payment"` && got != `"public"."payment","public"."rental"` {
		t.Fatalf("the feed started on %q, want rental and payment", got)
	}
	mon.send(trapSample(1))
	f.until("the sample", func() bool { return m.panes.history.Len() == 1 })
	if v := m.View(); !strings.Contains(v, "100 shop-api BLOCKER") || strings.Contains(v, "waiting for the first sample") {
		t.Fatalf("the sample is not in the panes before a plan:\n%s", v)
	}

	// Edited: customer, then a table that does not exist (the feed stays).
	edit := func(sql string) {
		t.Helper()
		m.compose.editor.SetValue(sql)
		m.compose.seq++
		f.handle(m.compose.check()())
	}
	gen := m.live.gen
	edit(renameSQL)
	f.until("the retarget", func() bool { return m.live.gen > gen && m.live.ch != nil })
	if got := strings.Join(mon.Starts()[len(mon.Starts())-1], ","); got != `"public"."customer"` {
		t.Fatalf("retargeted to %q", got)
	}
	n := len(mon.Starts())
	edit("ALTER TABLE no_such_table ADD COLUMN x int;")
	if len(mon.Starts()) != n || m.live.ch == nil {
		t.Fatalf("SQL naming no known table moved the feed: %q", mon.Starts())
	}

	// The plan's tables take over; later edits do not move the feed.
	edit("ALTER TABLE rental ADD COLUMN note text;")
	f.until("the SQL's table", func() bool { return len(mon.Starts()) == n+1 && m.live.ch != nil })
	edit(renameSQL)
	f.keys("ctrl+p")
	f.until("the plan's feed", func() bool { return m.Plan() != nil && m.live.ch != nil && len(mon.Starts()) >= n+2 })
	if got := strings.Join(mon.Starts()[len(mon.Starts())-1], ","); got != `"public"."customer"` {
		t.Fatalf("the plan's feed watches %q", got)
	}
	n = len(mon.Starts())
	edit("ALTER TABLE rental ADD COLUMN note text;")
	if len(mon.Starts()) != n {
		t.Fatalf("an edit after the plan moved the feed: %q", mon.Starts())
	}
}
