package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the cutover binary TestMain builds.
var binary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cutover-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "cutover")
	// The package directory is e2e/; the main package is its parent.
	build := exec.Command("go", "build", "-o", binary, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build failed:", err)
		return 1
	}
	return m.Run()
}

// needTmux fails the test under CI when tmux is missing (.ci/run installs
// it) and skips it elsewhere.
func needTmux(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is not installed, and CI is set: install tmux (.ci/run does, with apt-get)")
		}
		t.Skip("tmux is not installed (apt-get install tmux); the end-to-end terminal test needs it")
	}
	return p
}

// tmuxTerm is a detached tmux session running one command, on a tmux
// server of its own (its own socket), killed when the test ends, with
// whatever still runs in it.
type tmuxTerm struct {
	t      *testing.T
	tmux   string
	socket string
	last   string // the last capture, printed when a wait fails
}

// startTmux runs argv in a new detached tmux session of width x height.
// The shell keeps the pane open after the command exits and prints its
// exit status, so the test can read what it printed last.
func startTmux(t *testing.T, width, height int, env []string, argv ...string) *tmuxTerm {
	t.Helper()
	// The server's socket lives in the test's temporary directory (removed
	// with it); a socket path must stay under 108 bytes.
	sockDir, err := os.MkdirTemp("", "cutover-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	tm := &tmuxTerm{t: t, tmux: needTmux(t), socket: filepath.Join(sockDir, "sock")}
	var quoted []string
	for _, a := range argv {
		quoted = append(quoted, shellQuote(a))
	}
	// The shell traps SIGINT (a handler, which the command does not
	// inherit), so a Ctrl-C for the command does not end the shell too.
	script := "trap : INT; " + strings.Join(quoted, " ") + `; echo "[exit status $?]"; sleep 600`
	args := []string{"new-session", "-d", "-s", "e2e", "-x", fmt.Sprint(width), "-y", fmt.Sprint(height)}
	for _, kv := range env {
		args = append(args, "-e", kv)
	}
	args = append(args, "sh", "-c", script)
	tm.cmd(args...)
	t.Cleanup(func() {
		// Killing the server hangs the pane's processes up (SIGHUP); one
		// that does not exit in time is killed, and the demo cluster's
		// watchdog then stops its server and removes its directory.
		var procs []int
		if out, err := exec.Command(tm.tmux, "-S", tm.socket, "display-message", "-p", "-t", "e2e", "#{pane_pid}").Output(); err == nil {
			if kids, err := exec.Command("pgrep", "-P", strings.TrimSpace(string(out))).Output(); err == nil {
				for _, f := range strings.Fields(string(kids)) {
					if pid, err := strconv.Atoi(f); err == nil {
						procs = append(procs, pid)
					}
				}
			}
		}
		exec.Command(tm.tmux, "-S", tm.socket, "kill-server").Run()
		deadline := time.Now().Add(20 * time.Second)
		for _, pid := range procs {
			for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if syscall.Kill(pid, 0) == nil {
				t.Errorf("process %d outlived its terminal by 20 s: killed", pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		os.RemoveAll(sockDir)
	})
	return tm
}

func (tm *tmuxTerm) cmd(args ...string) string {
	tm.t.Helper()
	full := append([]string{"-S", tm.socket, "-f", "/dev/null"}, args...)
	out, err := exec.Command(tm.tmux, full...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v: %s\nlast screen:\n%s", strings.Join(args, " "), err, out, tm.last)
	}
	return string(out)
}

// capture returns the screen as text (no colours; lines the terminal
// wrapped are joined).
func (tm *tmuxTerm) capture() string {
	tm.t.Helper()
	tm.last = tm.cmd("capture-pane", "-p", "-J", "-t", "e2e")
	return tm.last
}

// keys sends key names as tmux spells them ("Enter", "C-p", "Escape", "y").
func (tm *tmuxTerm) keys(keys ...string) {
	tm.t.Helper()
	tm.cmd(append([]string{"send-keys", "-t", "e2e"}, keys...)...)
}

// text types s literally.
func (tm *tmuxTerm) text(s string) {
	tm.t.Helper()
	tm.cmd("send-keys", "-t", "e2e", "-l", s)
}

// waitFor polls the screen until cond holds, and fails the test with the
// last screen when the deadline passes.
func (tm *tmuxTerm) waitFor(what string, d time.Duration, cond func(screen string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := tm.capture()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("timed out after %s waiting for %s; last screen:\n%s", d, what, s)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// waitText waits for the screen to contain every one of texts.
func (tm *tmuxTerm) waitText(d time.Duration, texts ...string) string {
	tm.t.Helper()
	return tm.waitFor(fmt.Sprintf("%q on the screen", texts), d, func(s string) bool {
		for _, x := range texts {
			if !strings.Contains(s, x) {
				return false
			}
		}
		return true
	})
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// clusterDir returns the directory the demo said it started its server in
// ("... (in /tmp/cutover-pg-123, port 5432)").
func clusterDir(t *testing.T, text string) string {
	t.Helper()
	_, rest, ok := strings.Cut(text, "(in ")
	dir, _, ok2 := strings.Cut(rest, ", port ")
	if !ok || !ok2 || !strings.Contains(dir, "cutover-pg-") {
		t.Fatalf("the demo did not say where its server runs:\n%s", text)
	}
	return dir
}

// waitGone waits for the demo's cluster directory to be removed and no
// process to run from it.
func waitGone(t *testing.T, dir string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		_, statErr := os.Stat(dir)
		procs, _ := exec.Command("pgrep", "-f", dir).Output()
		procs = bytes.TrimSpace(procs)
		if os.IsNotExist(statErr) && len(procs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo left things behind: %s (stat: %v), processes %q", dir, statErr, procs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
