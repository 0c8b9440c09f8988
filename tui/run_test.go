package tui

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/plans"
)

// loop drives a Model the way the bubbletea runtime does: every command
// runs in its own goroutine and its message comes back to the one loop
// that updates the model. The engine's work therefore happens off the
// loop, as in the program.
type loop struct {
	t    *testing.T
	m    *Model
	msgs chan tea.Msg
	quit bool
}

func newLoop(t *testing.T, m *Model, w, h int) *loop {
	l := &loop{t: t, m: m, msgs: make(chan tea.Msg, 1024)}
	l.send(tea.WindowSizeMsg{Width: w, Height: h})
	l.spawn(m.Init())
	return l
}

func (l *loop) spawn(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() { l.msgs <- cmd() }()
}

func (l *loop) handle(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			l.spawn(c)
		}
	case tea.QuitMsg:
		l.quit = true
	default:
		_, cmd := l.m.Update(msg)
		l.spawn(cmd)
	}
}

func (l *loop) send(msg tea.Msg) { l.handle(msg) }

// keys presses keys; each is handled at once (a key never waits).
func (l *loop) keys(ks ...string) {
	for _, k := range ks {
		l.handle(keyMsg(k))
	}
}

func (l *loop) typeText(s string) {
	for _, r := range s {
		l.handle(keyMsg(string(r)))
	}
}

// until handles messages until cond holds (checked between messages).
func (l *loop) until(what string, cond func() bool) {
	l.t.Helper()
	deadline := time.After(60 * time.Second)
	for !cond() {
		select {
		case msg := <-l.msgs:
			l.handle(msg)
		case <-deadline:
			l.t.Fatalf("timed out waiting for %s; screen:\n%s", what, l.m.View())
		}
	}
}

func (l *loop) idle() bool {
	return !l.m.run.running && !l.m.run.loading
}

// liveBackend connects to url for the tests: the usage check looks once
// (nothing else uses the database), the header shows a fixed source.
func liveBackend(t *testing.T, url string) *LiveBackend {
	t.Helper()
	dbtest.LoadSQL(t, url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	b, err := NewLiveBackend(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	b.Options.Observe = 0
	b.source = "postgres://cutover@db.test/pagila"
	return b
}

func liveModel(t *testing.T, b *LiveBackend, sql string) *Model {
	return New(Options{Backend: b, Renderer: asciiRenderer(), SQL: sql, Debounce: time.Millisecond})
}

// planAndOpenRun plans the editor's SQL and opens the run screen.
func planAndOpenRun(l *loop) {
	l.t.Helper()
	l.until("the schema", func() bool { return l.m.compose.schema != nil })
	l.keys("ctrl+p")
	l.until("the plan", func() bool { return l.m.Plan() != nil })
	l.keys("r")
	if l.m.Screen() != "Run" {
		l.t.Fatalf("r on review: screen %s", l.m.Screen())
	}
	l.until("the run's state", l.idle)
}

func columns(t *testing.T, url, table string) string {
	t.Helper()
	conn := dbtest.Connect(t, url)
	var cols string
	if err := conn.QueryRow(context.Background(), `SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, table).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	return "," + cols + ","
}

// The whole rename of customer.email, run through the TUI: one deploy per
// enter with a y confirmation, the application release's checklist
// confirmed, to the end. The database ends renamed.
func TestRunRenameToCompletion(t *testing.T) {
	url := dbtest.Pagila(t)
	b := liveBackend(t, url)
	// Nothing is written into the working directory: the database keeps
	// the plan with the run.
	cwd := t.TempDir()
	t.Chdir(cwd)
	defer func() {
		if ents, err := os.ReadDir(cwd); err != nil || len(ents) != 0 {
			t.Errorf("the run wrote into the working directory: %v, %v", ents, err)
		}
	}()
	m := liveModel(t, b, renameSQL)
	l := newLoop(t, m, 160, 48)
	planAndOpenRun(l)
	if v := m.View(); !strings.Contains(v, "not applied to this database yet") || !strings.Contains(v, "› 1/4 db  Expand the schema ← next") {
		t.Fatalf("fresh run screen:\n%s", v)
	}
	// n declines: nothing runs.
	l.keys("enter")
	if m.run.dialog != dlgConfirm || !strings.Contains(m.View(), "Run deploy 1/4: Expand the schema?") || !strings.Contains(m.View(), "Database: postgres://cutover@db.test/pagila") {
		t.Fatalf("enter did not ask to confirm:\n%s", m.View())
	}
	l.keys("n")
	if m.run.dialog != dlgNone || m.run.running {
		t.Fatal("n did not cancel")
	}

	runDeploy := func(n int) {
		t.Helper()
		l.keys("enter", "y")
		if !m.run.running {
			t.Fatalf("deploy %d did not start: %s", n, m.View())
		}
		l.until("deploy to finish", l.idle)
		if m.run.err != "" {
			t.Fatalf("deploy %d: %s", n, m.run.err)
		}
	}
	runDeploy(1)
	for _, id := range []string{"E1-add-column-email-address", "E2-sync-trigger-email-address"} {
		if s := m.run.steps[id]; s.status != stDone {
			t.Fatalf("%s is %s after deploy 1", id, s.status)
		}
	}
	if m.run.steps["B1-backfill-customer"].status != stPending {
		t.Fatal("deploy 1 ran the backfill too")
	}
	if d := m.run.nextDeploy(); d == nil || d.number != 2 {
		t.Fatalf("next deploy %+v, want 2", d)
	}
	if !strings.Contains(columns(t, url, "customer"), ",email_address,") {
		t.Fatal("email_address not added")
	}
	// The database keeps the plan with the run, for resuming.
	runs, err := b.RunsInProgress(context.Background())
	if err != nil || len(runs) != 1 || runs[0].Plan == nil || runs[0].Plan.Hash() != m.Plan().Hash() || runs[0].NextDeploy != 2 {
		t.Fatalf("runs in progress after deploy 1: %+v, %v", runs, err)
	}

	runDeploy(2)
	bf := m.run.backfill
	if bf == nil || !bf.Done || bf.Rows != 599 {
		t.Fatalf("backfill progress %+v, want done with 599 rows", bf)
	}
	if s := m.run.steps["B1-backfill-customer"]; s.status != stDone || s.gateText != "passed" {
		t.Fatalf("B1: %+v", s)
	}
	v := m.View()
	for _, want := range []string{"599 / ~599 rows", "100%", "gate passed: every row of public.customer is backfilled"} {
		if !strings.Contains(v, want) {
			t.Errorf("after the backfill the view lacks %q:\n%s", want, v)
		}
	}

	// The application release: its checklist, confirmed with y.
	l.keys("enter")
	if m.run.dialog != dlgApp {
		t.Fatalf("enter on the release did not prompt:\n%s", m.View())
	}
	v = m.View()
	for _, want := range []string{"Deploy 3/4: Application release: use the new shape", "[ ] Switch reads and writes of public.customer", "[ ] Prepared statements"} {
		if !strings.Contains(v, want) {
			t.Errorf("release prompt lacks %q:\n%s", want, v)
		}
	}
	l.keys("y")
	l.until("the release to be confirmed", l.idle)
	if m.run.apps[3] != appConfirmed || m.run.err != "" {
		t.Fatalf("release: %s, err %s", m.run.apps[3], m.run.err)
	}
	rep, err := db.ReadRun(context.Background(), url, m.Plan())
	if err != nil {
		t.Fatal(err)
	}
	if a := rep.Apps[3]; a == nil || a.ConfirmedAt == nil {
		t.Fatalf("state: release %+v not confirmed", a)
	}

	runDeploy(4)
	if m.run.status != "plan applied: every step is done" || m.run.nextDeploy() != nil {
		t.Fatalf("status %q, next %v", m.run.status, m.run.nextDeploy())
	}
	cols := columns(t, url, "customer")
	if !strings.Contains(cols, ",email_address,") || strings.Contains(cols, ",email,") {
		t.Fatalf("columns after the run: %s", cols)
	}
	// Step markers for the latency chart.
	var labels []string
	for _, mk := range m.panes.markers {
		labels = append(labels, mk.Label)
	}
	if got := strings.Join(labels, " "); !strings.Contains(got, "E1 start E1 end") || !strings.Contains(got, "C1 end") {
		t.Errorf("markers %q", got)
	}
	// The schema was read again after the run.
	l.until("the schema refresh", func() bool {
		s := m.compose.schema
		if s == nil || s.Table("public", "customer") == nil {
			return false
		}
		for _, c := range s.Table("public", "customer").Columns {
			if c.Name == "email" {
				return false
			}
		}
		return true
	})
}

// slowPacer makes a backfill slow enough to pause: small batches with a
// pause between them.
type slowPacer struct{}

func (slowPacer) Next(*db.BatchResult) (int, time.Duration) { return 40, 150 * time.Millisecond }

// An irreversible step runs only after its table's name is typed: a wrong
// name is refused (nothing runs), the right one runs it. The release
// before it is confirmed from its checklist prompt.
func TestRunIrreversibleTypedConfirmation(t *testing.T) {
	url := dbtest.Pagila(t)
	b := liveBackend(t, url)
	m := liveModel(t, b, "ALTER TABLE customer DROP COLUMN email;")
	l := newLoop(t, m, 80, 24)
	planAndOpenRun(l)
	l.keys("enter")
	if m.run.dialog != dlgApp || !strings.Contains(m.View(), "[ ] Stop reading and writing") {
		t.Fatalf("deploy 1 (the release) did not prompt its checklist:\n%s", m.View())
	}
	l.keys("y")
	l.until("the release", l.idle)
	if m.run.apps[1] != appConfirmed {
		t.Fatalf("release %s, err %s", m.run.apps[1], m.run.err)
	}

	l.keys("enter")
	if m.run.dialog != dlgTyped {
		t.Fatalf("the irreversible deploy did not ask for the name:\n%s", m.View())
	}
	if v := m.View(); !strings.Contains(v, "Type public.customer to run deploy 2/2") || !strings.Contains(v, "is irreversible") {
		t.Fatalf("typed confirmation:\n%s", v)
	}
	// y and q are text here, not answers.
	l.typeText("customer")
	l.keys("enter")
	if m.run.dialog != dlgTyped || m.run.running {
		t.Fatal("a wrong name closed the dialog or ran the step")
	}
	if v := m.View(); !strings.Contains(v, `refused: "customer" is not public.customer`) {
		t.Fatalf("no refusal shown:\n%s", v)
	}
	if !strings.Contains(columns(t, url, "customer"), ",email,") {
		t.Fatal("the column was dropped after a wrong name")
	}
	l.typeText("public.customer")
	l.keys("enter")
	if !m.run.running {
		t.Fatalf("the right name did not run the step:\n%s", m.View())
	}
	l.until("the drop", l.idle)
	if m.run.err != "" || m.run.status != "plan applied: every step is done" {
		t.Fatalf("err %q status %q", m.run.err, m.run.status)
	}
	if strings.Contains(columns(t, url, "customer"), ",email,") {
		t.Fatal("email still there")
	}
}

// A plan whose expand phase ran (headless, with the engine) opens at its
// migrate step, and runs on from there.
func TestRunResumesAtMigrate(t *testing.T) {
	url := dbtest.Pagila(t)
	b := liveBackend(t, url)
	ctx := context.Background()
	p, err := b.Plan(ctx, renameSQL)
	if err != nil {
		t.Fatal(err)
	}
	e, err := db.Open(ctx, url, p, db.ApplyOptions{Through: plans.Expand})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	e.Close()

	// The same SQL no longer plans against the changed schema: the
	// error says to open the plan file.
	if _, err := liveBackend(t, url).Plan(ctx, renameSQL); err == nil || !strings.Contains(err.Error(), "run in progress") {
		t.Fatalf("planning again: %v", err)
	}

	m := New(Options{Backend: b, Renderer: asciiRenderer(), Plan: p, Debounce: time.Millisecond})
	l := newLoop(t, m, 80, 24)
	l.until("the plan", func() bool { return m.Plan() != nil })
	l.keys("r")
	l.until("the state", l.idle)
	if d := m.run.nextDeploy(); d == nil || d.number != 2 {
		t.Fatalf("resumed at %+v, want deploy 2", d)
	}
	v := m.View()
	for _, want := range []string{"resuming: 2 of 4 steps done", "› 2/4 db  Backfill in batches ← next", "✓ E1-add-column-email-address done"} {
		if !strings.Contains(v, want) {
			t.Errorf("resumed screen lacks %q:\n%s", want, v)
		}
	}
	l.keys("enter", "y")
	l.until("the backfill", l.idle)
	if s := m.run.steps["B1-backfill-customer"]; s.status != stDone || m.run.steps["E1-add-column-email-address"].status != stDone {
		t.Fatalf("after resuming: B1 %+v, err %s", s, m.run.err)
	}
}

// Quitting while a step waits for its lock asks first; n keeps it
// running, y stops the engine, which records where it stopped: the run
// resumes later. The retries show the blocking session in place.
func TestRunQuitMidStepAsks(t *testing.T) {
	url := dbtest.Pagila(t)
	b := liveBackend(t, url)
	b.Options.LockTimeout = 50 * time.Millisecond
	// Another session holds a lock on customer: E1 retries.
	blocker := dbtest.Connect(t, url)
	ctx := context.Background()
	if _, err := blocker.Exec(ctx, "BEGIN; LOCK TABLE customer IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	m := liveModel(t, b, renameSQL)
	l := newLoop(t, m, 80, 24)
	planAndOpenRun(l)
	l.keys("enter", "y")
	// A retry naming its blocker (an attempt may time out before the
	// engine has looked the blocker up: the next one names it).
	l.until("a retry naming the blocker", func() bool {
		s := m.run.steps["E1-add-column-email-address"]
		return s.status == stRetrying && strings.Contains(s.msg, "blocked by")
	})
	v := m.View()
	if !strings.Contains(v, "↻ E1-add-column-email-address retrying") || !strings.Contains(v, "blocked by") || !strings.Contains(v, "retrying in") {
		t.Errorf("retry not shown in place:\n%s", v)
	}
	l.keys("q")
	if m.run.dialog != dlgQuit || !strings.Contains(m.View(), "A deploy is running. Quit now?") {
		t.Fatalf("q mid-step did not ask:\n%s", m.View())
	}
	l.keys("n")
	if m.run.dialog != dlgNone || !m.run.running || l.quit {
		t.Fatal("n did not keep running")
	}
	l.keys("ctrl+c", "y")
	l.until("the quit", func() bool { return l.quit })
	if m.run.running {
		t.Fatal("quit before the engine stopped")
	}
	rep, err := db.ReadRun(ctx, url, m.Plan())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Run == nil || rep.Run.Error != "interrupted" || rep.Steps["E1-add-column-email-address"].Status == "done" {
		t.Fatalf("state after quitting: run %+v, E1 %+v", rep.Run, rep.Steps["E1-add-column-email-address"])
	}
	// Resumable: with the lock gone, a new session runs deploy 1.
	if _, err := blocker.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	m2 := New(Options{Backend: b, Renderer: asciiRenderer(), Plan: m.Plan(), Debounce: time.Millisecond})
	l2 := newLoop(t, m2, 80, 24)
	l2.until("the plan", func() bool { return m2.Plan() != nil })
	l2.keys("r")
	l2.until("the state", l2.idle)
	if !strings.Contains(m2.View(), "resuming: 0 of 4 steps done") {
		t.Errorf("no resume note:\n%s", m2.View())
	}
	l2.keys("enter", "y")
	l2.until("deploy 1", l2.idle)
	if m2.run.steps["E2-sync-trigger-email-address"].status != stDone {
		t.Fatalf("resumed deploy 1: %s", m2.run.err)
	}
}

// A backfill pauses after its batch on p and resumes on p; x aborts it
// after a confirmation, leaving it resumable.
func TestRunBackfillPauseResumeAbort(t *testing.T) {
	url := dbtest.Pagila(t)
	b := liveBackend(t, url)
	b.Options.Pacer = slowPacer{}
	m := liveModel(t, b, renameSQL)
	l := newLoop(t, m, 160, 48)
	planAndOpenRun(l)
	l.keys("enter", "y")
	l.until("deploy 1", l.idle)
	l.keys("enter", "y")
	l.until("backfill progress", func() bool { return m.run.backfill != nil && m.run.backfill.Rows > 0 })
	l.keys("p")
	l.until("the pause", func() bool { return m.run.backfill.Paused })
	rows := m.run.backfill.Rows
	if v := m.View(); !strings.Contains(v, "paused after its last batch") {
		t.Errorf("pause not shown:\n%s", v)
	}
	time.Sleep(400 * time.Millisecond)
	l.until("events in flight", func() bool { return len(l.msgs) == 0 })
	if m.run.backfill.Rows != rows {
		t.Fatalf("rows went on while paused: %d -> %d", rows, m.run.backfill.Rows)
	}
	l.keys("p")
	l.until("more rows", func() bool { return m.run.backfill.Rows > rows })
	l.keys("x")
	if m.run.dialog != dlgAbort {
		t.Fatalf("x did not ask:\n%s", m.View())
	}
	l.keys("y")
	l.until("the abort", l.idle)
	if !strings.HasPrefix(m.run.status, "aborted: the database is consistent") {
		t.Fatalf("status %q err %q", m.run.status, m.run.err)
	}
	if d := m.run.nextDeploy(); d == nil || d.number != 2 {
		t.Fatalf("after the abort the next deploy is %+v", d)
	}
	// enter goes on from the checkpoint to the end of the backfill.
	b.Options.Pacer = nil
	l.keys("enter", "y")
	l.until("the backfill", l.idle)
	if s := m.run.steps["B1-backfill-customer"]; s.status != stDone || s.gateText != "passed" {
		t.Fatalf("B1 after resuming: %+v %s", s, m.run.err)
	}
}

// scriptedRunner reads the real state, but its Apply plays fixed events
// (fixed times, durations and rates) and then runs until cancelled: the
// goldens of the run screen are the same on every machine. The engine
// itself is exercised by the tests above.
type scriptedRunner struct {
	*LiveBackend
	events []db.ApplyEvent
}

func (s scriptedRunner) Apply(ctx context.Context, p *plans.Plan, req RunRequest) (*db.Outcome, error) {
	for _, ev := range s.events {
		req.OnEvent(ev)
	}
	<-ctx.Done()
	return nil, &db.ApplyError{Kind: db.Interrupted, Msg: "interrupted", Err: ctx.Err()}
}

var goldenEvents = func() []db.ApplyEvent {
	t0 := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	return []db.ApplyEvent{
		{Kind: db.EventRun, Time: t0, Message: "resuming plan 3f1c9a2b7d4e on db.test:5432/pagila: 2 of 4 steps done; run started by cutover from ops-1 at 2026-03-14T09:29:10Z (status stopped)"},
		{Kind: db.EventStepStarted, Time: t0.Add(20 * time.Millisecond), StepID: "B1-backfill-customer", Deploy: 2, Attempt: 1, Message: "start: Backfill email_address from email in keyset batches (ROW EXCLUSIVE on public.customer)"},
		{Kind: db.EventBackfillProgress, Time: t0.Add(5 * time.Second), StepID: "B1-backfill-customer", Deploy: 2, Message: "batch 7: 2,800 rows",
			Backfill: &db.BackfillProgress{Table: "public.customer", Batches: 7, Rows: 2800, Estimated: 6000, BatchSize: 400, Workers: 3, Elapsed: 3 * time.Second, RowsPerSec: 933, ETA: 3400 * time.Millisecond,
				Throttled: "probe p99 212ms over the 150ms budget: half batches", Pause: 250 * time.Millisecond}},
		{Kind: db.EventStepRetry, Time: t0.Add(5300 * time.Millisecond), StepID: "B1-backfill-customer", Deploy: 2, Attempt: 1, Message: "batch attempt 1/10: lock not granted within lock_timeout 250ms (55P03), blocked by pid 4242 (app, idle in transaction 12s); retrying in 180ms"},
	}
}()

// Goldens of the run screen: the backfill of the rename in progress
// (throttled, after a retry), at both sizes.
func TestGoldenRun(t *testing.T) {
	url := dbtest.Pagila(t)
	b := liveBackend(t, url)
	ctx := context.Background()
	p, err := b.Plan(ctx, renameSQL)
	if err != nil {
		t.Fatal(err)
	}
	// The expand phase ran (the real engine): the screen opens at deploy 2.
	e, err := db.Open(ctx, url, p, db.ApplyOptions{Through: plans.Expand})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	e.Close()
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			m := New(Options{Backend: scriptedRunner{b, goldenEvents}, Renderer: asciiRenderer(), Plan: p, Debounce: time.Millisecond, Context: ctx})
			tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(sz.w, sz.h))
			waitScreen(t, tm, "Review")
			tm.Type("r")
			waitScreen(t, tm, "resuming: 2 of 4 steps done")
			tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
			tm.Type("y")
			waitScreen(t, tm, "throttled: probe p99")
			// Quit the program, not the model (which would ask): the final
			// model is the running screen.
			if err := tm.Quit(); err != nil {
				t.Fatal(err)
			}
			fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*Model)
			view := fm.View()
			// The durations of E1 and E2 come from the real run: fixed here.
			view = fixDurations(view)
			golden.RequireEqual(t, []byte(view))
		})
	}
}

// fixDurations replaces the measured durations of the done steps.
func fixDurations(v string) string {
	lines := strings.Split(v, "\n")
	for i, l := range lines {
		for _, id := range []string{"E1-add-column-email-address done ", "E2-sync-trigger-email-address done "} {
			if k := strings.Index(l, id); k >= 0 {
				rest := l[k+len(id):]
				end := strings.IndexByte(rest, ' ')
				if end < 0 {
					end = len(rest)
				}
				d := rest[:end]
				lines[i] = l[:k+len(id)] + "4.2ms" + strings.Repeat(" ", max(len(d)-len("4.2ms"), 0)) + rest[end:]
			}
		}
	}
	return strings.Join(lines, "\n")
}

// Backfill progress lines of one step replace each other in the events
// pane; other events are kept.
func TestRunLogCoalescesProgress(t *testing.T) {
	var r runModel
	r.SetPlan(mustPlan(t))
	t0 := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	prog := func(rows int64) db.ApplyEvent {
		return db.ApplyEvent{Kind: db.EventBackfillProgress, Time: t0, StepID: "B1-backfill-customer", Message: fmt.Sprintf("%d rows", rows),
			Backfill: &db.BackfillProgress{Rows: rows, Estimated: 599}}
	}
	r.event(prog(100))
	r.event(prog(200))
	r.event(db.ApplyEvent{Kind: db.EventStepRetry, Time: t0, StepID: "B1-backfill-customer", Message: "batch attempt 1/10: lock not granted"})
	r.event(prog(300))
	r.event(prog(400))
	var got []string
	for _, l := range r.log {
		got = append(got, l.text)
	}
	want := []string{"B1-backfill-customer: 200 rows", "B1-backfill-customer: batch attempt 1/10: lock not granted", "B1-backfill-customer: 400 rows"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("log %q, want %q", got, want)
	}
	if s := r.steps["B1-backfill-customer"]; s.status != stRunning || s.msg != "" {
		t.Fatalf("after the retried batch committed: %+v", s)
	}
}

func mustPlan(t *testing.T) *plans.Plan {
	t.Helper()
	p, err := pagilaBackend().Plan(context.Background(), renameSQL)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every line of the run screen fits the terminal, with and without its
// dialogs, at every size.
func TestRunViewFitsTerminal(t *testing.T) {
	url := dbtest.Pagila(t)
	b := liveBackend(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(Options{Backend: scriptedRunner{b, goldenEvents}, Renderer: asciiRenderer(), SQL: renameSQL, Debounce: time.Millisecond, Context: ctx})
	l := newLoop(t, m, 80, 24)
	planAndOpenRun(l)
	check := func(stage string) {
		t.Helper()
		lines := strings.Split(m.View(), "\n")
		if len(lines) != m.height {
			t.Errorf("%s at %dx%d: %d lines", stage, m.width, m.height, len(lines))
		}
		for i, ln := range lines {
			if w := lipglossWidth(ln); w > m.width {
				t.Errorf("%s at %dx%d: line %d is %d wide: %q", stage, m.width, m.height, i+1, w, ln)
			}
		}
	}
	sizes := [][2]int{{80, 24}, {160, 48}, {100, 30}, {200, 60}, {60, 15}}
	for _, sz := range sizes {
		l.send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		check("idle")
		l.keys("enter")
		check("confirm dialog")
		l.keys("n")
	}
	l.keys("enter", "y")
	l.until("the scripted events", func() bool { return m.run.backfill != nil })
	for _, sz := range sizes {
		l.send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		check("running")
		l.keys("q")
		check("quit dialog")
		l.keys("n")
	}
}
