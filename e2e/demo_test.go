package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDemoHeadless runs `cutover demo --print-url`: the URL on stdout is a
// live database with the sample and the workload; SIGTERM stops everything
// and removes the directory.
func TestDemoHeadless(t *testing.T) {
	cmd := exec.Command(binary, "demo", "--print-url", "--rows", "20000")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var url string
	select {
	case url = <-lines:
	case <-time.After(60 * time.Second):
		t.Fatalf("no URL after 60 s; stderr:\n%s", stderr.String())
	}
	if !strings.HasPrefix(url, "postgres://postgres@127.0.0.1:") {
		t.Fatalf("stdout %q is not a loopback URL without a password; stderr:\n%s", url, stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM public.customer_event`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows < 20000 {
		t.Errorf("customer_event has %d rows, want at least 20000", rows)
	}
	// The workload commits transactions: the counter moves.
	var first, second int64
	read := func(v *int64) {
		if err := conn.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(v); err != nil {
			t.Fatal(err)
		}
	}
	read(&first)
	deadline := time.Now().Add(10 * time.Second)
	for read(&second); second < first+100; read(&second) {
		if time.Now().After(deadline) {
			t.Fatalf("the workload committed %d transactions in 10 s, want 100", second-first)
		}
		time.Sleep(200 * time.Millisecond)
	}
	conn.Close(ctx)

	dir := clusterDir(t, stderr.String())
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Fatalf("after SIGTERM: %v; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), dir+" removed") {
		t.Errorf("stderr does not say the directory was removed:\n%s", stderr.String())
	}
	waitGone(t, dir, 10*time.Second)
}

// syncBuffer collects a running command's output: the command's copying
// goroutine writes it while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
