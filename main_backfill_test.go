package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for a process writing and a test
// reading.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Headless backfill control: the first SIGINT pauses after the batch in
// flight, SIGUSR1 resumes, SIGINT pauses again and a second SIGINT stops
// the run (exit 1); apply again finishes from the checkpoint.
func TestApplyBackfillPauseResumeAbort(t *testing.T) {
	dbURL, conn, plan := applyDB(t, `CREATE TABLE items (id bigint PRIMARY KEY, amount text NOT NULL);
		INSERT INTO items SELECT g, g::text FROM generate_series(1, 40000) g; ANALYZE items`,
		"ALTER TABLE items ALTER COLUMN amount TYPE integer USING amount::integer")
	cmd := exec.Command(binary, "apply", "--plan", plan, "--db", dbURL, "--yes", "--confirm-irreversible", "items",
		"--no-usage-check", "--no-throttle", "--batch-size", "20")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(want string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("output ended before %q; stderr %q", want, stderr.String())
				}
				if strings.Contains(l, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no line with %q in 30s; stderr %q", want, stderr.String())
			}
		}
	}
	rowsDone := func() int {
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT (SELECT coalesce(sum(rows_done), 0) FROM cutover.backfill_checkpoints) + (SELECT coalesce(sum(rows_done), 0) FROM cutover.backfill_ranges)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitLine("rows/s")
	cmd.Process.Signal(os.Interrupt)
	waitLine("paused after")
	before := rowsDone()
	time.Sleep(500 * time.Millisecond)
	if after := rowsDone(); after != before {
		t.Errorf("%d rows changed while paused", after-before)
	}
	if !strings.Contains(stderr.String(), "pausing the backfill") {
		t.Errorf("stderr %q does not say it pauses", stderr.String())
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	deadline := time.Now().Add(10 * time.Second)
	for rowsDone() == before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if rowsDone() == before {
		t.Fatal("SIGUSR1 did not resume the backfill")
	}
	cmd.Process.Signal(os.Interrupt)
	waitLine("paused after")
	cmd.Process.Signal(os.Interrupt)
	go func() {
		for range lines {
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("after the second SIGINT: %v, want exit 1; stderr %q", err, stderr.String())
	}
	partial := rowsDone()
	if partial == 0 || partial >= 40000 {
		t.Fatalf("%d rows done when stopped, want a partial backfill", partial)
	}
	r := run(t, "", "apply", "--plan", plan, "--db", dbURL, "--yes", "--confirm-irreversible", "items", "--no-usage-check")
	succeeded(t, r, "resuming the backfill", "plan applied")
	var wrong int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM items WHERE amount <> id`).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d rows wrong", wrong)
	}
}
