package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// e2eChange is the change the end-to-end test applies: the demo's rename
// of a column the workload writes, plus the drop of a column nobody uses,
// whose contract step is irreversible and asks for the table's name.
const e2eChange = "ALTER TABLE customer_event RENAME COLUMN kind TO event_type; ALTER TABLE customer DROP COLUMN active;"

// TestTmuxDemoRename drives `cutover demo` in tmux through a whole change
// on the throwaway server with the workload running: plan, review, run
// every deploy, confirm the application releases, type the table's name
// for the irreversible step. The lock and latency panes must update while
// it runs; at the end the database has the new shape, and quitting leaves
// nothing behind.
func TestTmuxDemoRename(t *testing.T) {
	tm := startTmux(t, 160, 48, nil, binary, "demo", "--keep", "--rows", "100000", "--observe", "2s", "--sql", e2eChange)
	tm.waitText(30*time.Second, "parses", "ctrl+p")

	// Plan, then the review screen.
	tm.keys("C-p")
	tm.waitText(15*time.Second, "Plan: 5 deploys", "C1-swap-event-type", "C2-drop-column-active")

	// The panes sample the plan's tables: wait for real numbers.
	first := tm.waitFor("the latency pane's first sample", 20*time.Second, func(s string) bool {
		return paneHasSample(s)
	})
	latency := []string{latencyPane(first)}
	locks := []string{locksPane(first)}
	record := func(s string) {
		if l := latencyPane(s); l != "" && l != latency[len(latency)-1] {
			latency = append(latency, l)
		}
		if l := locksPane(s); l != "" && l != locks[len(locks)-1] {
			locks = append(locks, l)
		}
	}

	// The run screen, then each deploy in turn.
	tm.keys("r")
	tm.waitText(15*time.Second, "Run · next: deploy 1/5")
	header := regexp.MustCompile(`Run · (next: deploy (\d+)/(\d+)|done|waiting for application release (\d+)/(\d+))`)
	for step := 0; ; step++ {
		if step > 8 {
			t.Fatalf("the run did not finish after %d deploys; last screen:\n%s", step, tm.last)
		}
		s := tm.waitFor("the run to be idle", 90*time.Second, func(s string) bool {
			record(s)
			return header.MatchString(s) && !strings.Contains(s, "running…")
		})
		m := header.FindStringSubmatch(s)
		if m[1] == "done" {
			break
		}
		n, _ := strconv.Atoi(m[2] + m[4])
		tm.keys("Enter")
		d := tm.waitFor(fmt.Sprintf("the dialog of deploy %d", n), 10*time.Second, func(s string) bool {
			return strings.Contains(s, "y run it") || strings.Contains(s, "y all of this is deployed") || strings.Contains(s, "Irreversible step")
		})
		if strings.Contains(d, "Irreversible step") {
			name := typedName(t, d)
			// A wrong name is refused and runs nothing.
			tm.text("wrong_table")
			tm.keys("Enter")
			tm.waitText(5*time.Second, "refused")
			tm.text(name)
			tm.keys("Enter")
		} else {
			tm.keys("y")
		}
		// Wait until the deploy has moved on.
		want := fmt.Sprintf("deploy %d/", n+1)
		tm.waitFor(fmt.Sprintf("deploy %d to finish", n), 90*time.Second, func(s string) bool {
			record(s)
			if strings.Contains(s, "failed") && strings.Contains(s, "✗") {
				t.Fatalf("deploy %d failed:\n%s", n, s)
			}
			return strings.Contains(s, "Run · done") || (strings.Contains(s, "Run · next: "+want) || strings.Contains(s, "release "+want)) && !strings.Contains(s, "running…")
		})
	}
	done := tm.waitText(10*time.Second, "Run · done")
	record(done)
	// A few more seconds of samples after the run.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		record(tm.capture())
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("the latency pane showed %d different contents, the locks pane %d; the last latency pane:\n%s", len(latency), len(locks), latency[len(latency)-1])
	if len(latency) < 3 {
		t.Errorf("the latency pane changed %d times during the run, want at least 3; last:\n%s", len(latency)-1, latency[len(latency)-1])
	}
	if len(locks) < 2 {
		t.Errorf("the locks pane never changed during the run; last:\n%s", locks[len(locks)-1])
	}

	// Quit: --keep keeps the database up and prints its URL.
	tm.keys("q")
	kept := tm.waitText(15*time.Second, "keeps running until Ctrl-C")
	url := keptURL(t, kept)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var cols string
	if err := conn.QueryRow(ctx, `SELECT string_agg(attrelid::regclass || '.' || attname, ',' ORDER BY attrelid::regclass::text, attnum)
		FROM pg_attribute WHERE attrelid IN ('public.customer_event'::regclass, 'public.customer'::regclass)
		AND attname IN ('kind', 'event_type', 'active', 'activebool') AND NOT attisdropped`).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	if cols != "customer.activebool,customer_event.event_type" {
		t.Errorf("columns after the run: %s, want customer.activebool,customer_event.event_type", cols)
	}
	var nulls int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE event_type IS NULL) FROM public.customer_event`).Scan(&nulls); err != nil {
		t.Fatal(err)
	}
	if nulls != 0 {
		t.Errorf("%d rows of customer_event have no event_type", nulls)
	}
	conn.Close(ctx)

	tm.keys("C-c")
	end := tm.waitText(20*time.Second, "[exit status 0]")
	if !strings.Contains(end, "removed") || !strings.Contains(end, "0 failed") {
		t.Errorf("the demo's last words lack the clean-up or show workload failures:\n%s", end)
	}
	waitGone(t, clusterDir(t, end), 10*time.Second)
}

// TestTmuxDemoSIGTERM: SIGTERM while the terminal UI is open stops the
// workload and the server and removes the directory.
func TestTmuxDemoSIGTERM(t *testing.T) {
	tm := startTmux(t, 80, 24, nil, binary, "demo", "--rows", "1000")
	tm.waitText(30*time.Second, "parses")
	shell := strings.TrimSpace(tm.cmd("display-message", "-p", "-t", "e2e", "#{pane_pid}"))
	out, err := exec.Command("pgrep", "-P", shell).Output()
	if err != nil {
		t.Fatalf("finding the demo's process under %s: %v", shell, err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(out))[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	end := tm.waitText(20*time.Second, "[exit status")
	if !strings.Contains(end, "removed") {
		t.Errorf("after SIGTERM the demo did not say it removed its directory:\n%s", end)
	}
	waitGone(t, clusterDir(t, end), 10*time.Second)
}

// typedName is the name the irreversible step's dialog asks for ("Type
// public.customer to run deploy 5/5 on ...").
func typedName(t *testing.T, screen string) string {
	t.Helper()
	m := regexp.MustCompile(`Type (\S+) to run deploy`).FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("the irreversible step's dialog does not say what to type:\n%s", screen)
	}
	return m[1]
}

// keptURL is the URL --keep prints after the terminal UI exits.
func keptURL(t *testing.T, screen string) string {
	t.Helper()
	m := regexp.MustCompile(`psql "(postgres://[^"]+)"`).FindStringSubmatch(screen)
	if m == nil {
		t.Fatalf("no URL after quitting with --keep:\n%s", screen)
	}
	return m[1]
}

// box returns the text inside the bordered box whose first line starts with
// title ("│Latency"), or "" when there is none on the screen.
func box(screen, title string) string {
	lines := strings.Split(screen, "\n")
	for i, l := range lines {
		r := []rune(l)
		start := strings.Index(l, "│"+title)
		if start < 0 {
			continue
		}
		col := len([]rune(l[:start]))
		end := col + 1
		for end < len(r) && r[end] != '│' {
			end++
		}
		var b strings.Builder
		for _, l := range lines[i:] {
			r := []rune(l)
			if len(r) <= col || r[col] == '╰' {
				break
			}
			b.WriteString(strings.TrimSpace(string(r[col+1 : min(end, len(r))])))
			b.WriteByte('\n')
		}
		return b.String()
	}
	return ""
}

func latencyPane(screen string) string { return box(screen, "Latency") }
func locksPane(screen string) string   { return box(screen, "Locks") }

// paneHasSample reports whether the latency pane shows a measured TPS.
func paneHasSample(screen string) bool {
	return regexp.MustCompile(`TPS [0-9]`).MatchString(latencyPane(screen))
}
