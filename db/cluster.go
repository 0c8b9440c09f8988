// Package db is everything in cutover that talks to PostgreSQL: connecting,
// reading the live schema, and the throwaway cluster that tests and
// `cutover demo` run against.
package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ClusterOptions configure a throwaway cluster. The zero value is what tests
// want: trust authentication on loopback, durability off.
type ClusterOptions struct {
	// AuthHost is the pg_hba method for TCP connections on loopback
	// ("scram-sha-256", "md5"); "" means trust. Unix-socket connections are
	// always trusted, so the cluster can be administered without a password.
	AuthHost string
	// Password is the password of the superuser "postgres"; required when
	// AuthHost asks for one, and then also put into URL.
	Password string
	// Settings are extra postgresql.conf settings, e.g. {"max_connections": "50"}.
	Settings map[string]string
}

// Cluster is a PostgreSQL cluster created by StartCluster in a temporary
// directory, listening on a free loopback port, owned by this process: Stop
// shuts it down and removes every file it made. If the process dies without
// calling Stop, a watchdog process does the same.
type Cluster struct {
	// Port is the TCP port the server listens on at 127.0.0.1.
	Port int
	// Dir is the temporary directory holding data, socket and log.
	Dir string
	// BinDir is where initdb, pg_ctl and postgres were found.
	BinDir string

	password string
	dataDir  string
	logFile  string
	runAs    []string // command prefix running a program as the cluster's OS user

	watchdog    *exec.Cmd
	watchdogIn  *os.File // closing it makes the watchdog stop the cluster
	stopOnce    sync.Once
	stopErr     error
	watchdogOut bytes.Buffer
}

// Superuser is the name of the bootstrap superuser of a throwaway cluster.
// It is fixed (initdb -U) so that scripts assigning ownership to "postgres",
// as pg_dump output does, load whatever OS user runs the cluster.
const Superuser = "postgres"

// serverBinGlob is where distribution packages put the server binaries
// (Debian and Ubuntu; one directory per major version).
var serverBinGlob = "/usr/lib/postgresql/*/bin"

// errNoServer is the one line shown when no server binaries can be found.
var errNoServer = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or under /usr/lib/postgresql/*/bin: install the PostgreSQL server package (e.g. `apt-get install postgresql`)")

// StartCluster creates and starts a throwaway cluster. When the process runs
// as root, initdb and postgres run as the "postgres" system user, as
// PostgreSQL refuses to run as root.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	binDir, err := findServerBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{BinDir: binDir, password: opts.Password}

	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup(Superuser)
		if err != nil {
			return nil, fmt.Errorf("running as root, but PostgreSQL refuses to run as root and there is no %q system user to run it as: create one with `useradd --system --create-home postgres`, or run as an ordinary user", Superuser)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		if c.runAs, err = runAsPrefix(u); err != nil {
			return nil, err
		}
	}

	parent := os.TempDir()
	if uid >= 0 && !sharedTempDir(parent) {
		// The postgres user must reach the directory, and the watchdog,
		// running as that user, must be able to remove it: root's private
		// TMPDIR will not do.
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "cutover-pg-")
	if err != nil {
		return nil, fmt.Errorf("creating the cluster directory: %w", err)
	}
	c.Dir = dir
	c.dataDir = filepath.Join(dir, "data")
	c.logFile = filepath.Join(dir, "postgres.log")
	fail := func(err error) (*Cluster, error) {
		c.removeDir()
		return nil, err
	}
	if uid >= 0 {
		// The temporary directory is root's and private: hand it over.
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(fmt.Errorf("giving %s to user %s: %w", dir, Superuser, err))
		}
	}

	if err := c.initdb(ctx, opts, uid, gid); err != nil {
		return fail(err)
	}
	// From here on a server may be running: the watchdog guarantees it is
	// stopped and the directory removed even if this process is killed.
	if err := c.startWatchdog(); err != nil {
		return fail(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			c.Stop()
			return nil, err
		}
		if err := c.writeConfig(port, opts.Settings); err != nil {
			c.Stop()
			return nil, err
		}
		c.Port = port
		lastErr = c.pgctl(ctx, "start", "-w", "-t", "60", "-l", c.logFile)
		if lastErr == nil {
			return c, nil
		}
		// Another process may have taken the port between freePort and
		// the server binding it; try another one.
		if !strings.Contains(c.logTail(), "could not bind") {
			break
		}
	}
	err = fmt.Errorf("starting PostgreSQL in %s failed: %v\n%s", c.dataDir, lastErr, c.logTail())
	c.Stop()
	return nil, err
}

// URL returns a connection URL for database dbname on the cluster, over TCP
// on loopback as the superuser.
func (c *Cluster) URL(dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	if c.password != "" {
		u.User = url.UserPassword(Superuser, c.password)
	} else {
		u.User = url.User(Superuser)
	}
	return u.String()
}

// Stop shuts the server down (fast mode: open sessions are disconnected) and
// removes the cluster's directory. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		if c.watchdog == nil {
			c.removeDir()
			return
		}
		// Closing the pipe tells the watchdog to stop the server and remove
		// the directory; wait for it to finish.
		c.watchdogIn.Close()
		err := c.watchdog.Wait()
		if err != nil {
			c.stopErr = fmt.Errorf("stopping the PostgreSQL cluster in %s: %v: %s", c.Dir, err, strings.TrimSpace(c.watchdogOut.String()))
		}
		c.removeDir()
	})
	return c.stopErr
}

// removeDir removes the cluster directory if it is still there; as root the
// files are the postgres user's, which root may remove.
func (c *Cluster) removeDir() {
	if c.Dir == "" {
		return
	}
	if err := os.RemoveAll(c.Dir); err != nil && c.stopErr == nil {
		c.stopErr = fmt.Errorf("removing %s: %w", c.Dir, err)
	}
}

// ServerBinDir returns the directory holding the PostgreSQL server binaries
// StartCluster uses (and, in a standard installation, pg_dump and psql), or
// the one-line error saying what to install.
func ServerBinDir() (string, error) { return findServerBinaries() }

// sharedTempDir reports whether dir is a shared temporary directory like
// /tmp (world-writable with the sticky bit) that every user can reach.
func sharedTempDir(dir string) bool {
	st, err := os.Stat(dir)
	if err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm()&0o003 != 0o003 {
		return false
	}
	for d := filepath.Dir(filepath.Clean(dir)); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

// findServerBinaries returns the directory holding initdb, pg_ctl and
// postgres: the one initdb on PATH lives in, else the highest version under
// /usr/lib/postgresql/*/bin.
func findServerBinaries() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			st, err := os.Stat(filepath.Join(dir, b))
			if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob(serverBinGlob)
	sort.Slice(dirs, func(i, j int) bool {
		return versionLess(filepath.Base(filepath.Dir(dirs[j])), filepath.Base(filepath.Dir(dirs[i])))
	})
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", errNoServer
}

// versionLess compares dotted version numbers numerically ("9.6" < "15").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

// runAsPrefix returns the command prefix that runs a program as user u from
// root: runuser, else setpriv, else su.
func runAsPrefix(u *user.User) ([]string, error) {
	if p, err := exec.LookPath("runuser"); err == nil {
		return []string{p, "-u", u.Username, "--"}, nil
	}
	if p, err := exec.LookPath("setpriv"); err == nil {
		return []string{p, "--reuid=" + u.Uid, "--regid=" + u.Gid, "--init-groups", "--"}, nil
	}
	if p, err := exec.LookPath("su"); err == nil {
		// su passes the arguments after -c's script to the shell as $0, $1...
		return []string{p, "-s", "/bin/sh", u.Username, "-c", `exec "$0" "$@"`}, nil
	}
	return nil, fmt.Errorf("running as root, but none of runuser, setpriv or su is available to run PostgreSQL as user %s", u.Username)
}

// command builds a command running program from the cluster's BinDir (or a
// full path) as the cluster's OS user, with the caller's PG* variables
// removed so that they cannot point the tools elsewhere.
func (c *Cluster) command(ctx context.Context, program string, args ...string) *exec.Cmd {
	if !filepath.IsAbs(program) {
		program = filepath.Join(c.BinDir, program)
	}
	argv := append(append(append([]string{}, c.runAs...), program), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = cleanEnv()
	cmd.Dir = c.Dir
	return cmd
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

func (c *Cluster) initdb(ctx context.Context, opts ClusterOptions, uid, gid int) error {
	args := []string{"-D", c.dataDir, "-U", Superuser, "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--no-sync"}
	if opts.AuthHost != "" && opts.AuthHost != "trust" {
		args = append(args, "--auth-host="+opts.AuthHost)
	} else {
		args = append(args, "--auth-host=trust")
	}
	if opts.Password != "" {
		pwfile := filepath.Join(c.Dir, "pwfile")
		if err := os.WriteFile(pwfile, []byte(opts.Password+"\n"), 0o600); err != nil {
			return err
		}
		defer os.Remove(pwfile)
		if uid >= 0 {
			if err := os.Chown(pwfile, uid, gid); err != nil {
				return err
			}
		}
		args = append(args, "--pwfile="+pwfile)
	}
	out, err := c.command(ctx, "initdb", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb failed: %v\n%s", err, lastLines(string(out), 20))
	}
	return nil
}

// writeConfig appends the cluster's settings to postgresql.conf; later lines
// win, so it can be called again with another port. Appending keeps the
// file's owner.
func (c *Cluster) writeConfig(port int, extra map[string]string) error {
	// A Unix socket path is limited to 107 bytes; with a long TMPDIR the
	// cluster listens on TCP only.
	sockets := c.Dir
	if len(filepath.Join(c.Dir, ".s.PGSQL.65535")) > 107 {
		sockets = ""
	}
	settings := map[string]string{
		"port":                     strconv.Itoa(port),
		"listen_addresses":         quoteConf("127.0.0.1"),
		"unix_socket_directories":  quoteConf(sockets),
		"shared_preload_libraries": quoteConf("pg_stat_statements"),
		"fsync":                    "off",
		"synchronous_commit":       "off",
		"full_page_writes":         "off",
		"logging_collector":        "off",
		"log_min_messages":         "warning",
		"log_min_error_statement":  "error",
	}
	for k, v := range extra {
		settings[k] = quoteConf(v)
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# added by cutover's throwaway cluster\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, settings[k])
	}
	f, err := os.OpenFile(filepath.Join(c.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// quoteConf quotes a postgresql.conf string value.
func quoteConf(s string) string {
	if _, err := strconv.Atoi(s); err == nil {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func (c *Cluster) pgctl(ctx context.Context, action string, args ...string) error {
	args = append([]string{action, "-D", c.dataDir}, args...)
	out, err := c.command(ctx, "pg_ctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v: %s", action, err, strings.TrimSpace(lastLines(string(out), 5)))
	}
	return nil
}

// watchdogScript waits for its stdin to close (Stop closed it, or this
// process died), then stops the server in fast mode and removes the
// directory. It runs as the cluster's OS user, who owns the directory.
const watchdogScript = `read _ignored
if [ -f "$2/postmaster.pid" ]; then "$1" stop -D "$2" -m fast -w -t 60 >/dev/null; status=$?; else status=0; fi
rm -rf "$3"
exit $status`

// startWatchdog starts the process that stops the cluster when this process
// goes away, in its own process group so that a terminal's Ctrl-C reaches
// this process (whose exit then triggers the watchdog) and not the watchdog.
func (c *Cluster) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := c.command(context.Background(), "/bin/sh", "-c", watchdogScript, "cutover-pg-watchdog",
		filepath.Join(c.BinDir, "pg_ctl"), c.dataDir, c.Dir)
	cmd.Dir = "/"
	cmd.Stdin = r
	cmd.Stdout = &c.watchdogOut
	cmd.Stderr = &c.watchdogOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("starting the cluster watchdog: %w", err)
	}
	r.Close()
	c.watchdog, c.watchdogIn = cmd, w
	return nil
}

// freePort returns a TCP port on loopback that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the last lines of the server log.
func (c *Cluster) logTail() string {
	f, err := os.Open(c.logFile)
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 8192 {
		f.Seek(st.Size()-8192, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return "server log (" + c.logFile + "), last lines:\n" + lastLines(string(b), 15)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
