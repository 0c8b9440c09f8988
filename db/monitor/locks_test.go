package monitor

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// appConn connects with an application_name, closed when the test ends.
func appConn(t *testing.T, dbURL, app string) *pgx.Conn {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	return dbtest.Connect(t, u.String())
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waiters counts the ungranted locks on the server.
func waiters(t *testing.T, admin *pgx.Conn) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_locks WHERE NOT granted").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// background runs sql on conn in a goroutine; the returned channel gets
// its error when it finishes.
func background(conn *pgx.Conn, sql string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), sql)
		done <- err
	}()
	return done
}

func openMonitor(t *testing.T, dbURL string, tables []string, opts Options) *Monitor {
	t.Helper()
	m, err := Open(context.Background(), dbURL, tables, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func sessionOf(t *testing.T, s *LockSample, pid uint32) Session {
	t.Helper()
	for _, ss := range s.Sessions {
		if ss.PID == int(pid) {
			return ss
		}
	}
	t.Fatalf("pid %d is not in the lock sample: %+v", pid, s.Sessions)
	return Session{}
}

// within checks that an age the server measured lies between what the
// test measured just before and just after the sample, with slack for the
// round trips and for a goroutine that sends its statement late.
func within(t *testing.T, what string, got Millis, lo, hi time.Duration) {
	t.Helper()
	if got.D() < lo-150*time.Millisecond || got.D() > hi+50*time.Millisecond {
		t.Errorf("%s = %v, want between %v and %v", what, got.D(), lo, hi)
	}
}

// The lock-queue trap, live: a transaction holds a lock on the table, an
// ALTER TABLE waits for it, and plain SELECTs queue behind the ALTER. The
// sampler shows the holder, the waiting ALTER and the queued SELECTs with
// the right edges and ages; when the ALTER is cutover's, the queue behind
// it is reported as a trap.
func TestLockQueue(t *testing.T) {
	for _, tc := range []struct {
		name, ddlApp string
		trap         bool
	}{
		{"cutover's ALTER", "cutover apply", true},
		{"someone else's ALTER", "psql", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dbURL := dbtest.NewDatabase(t)
			dbtest.LoadSQL(t, dbURL, `CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
				INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 1000) g;
				CREATE TABLE unrelated (id int PRIMARY KEY);`)
			admin := dbtest.Connect(t, dbURL)
			m := openMonitor(t, dbURL, []string{"accounts"}, Options{Interval: time.Second, ProbeTimeout: 200 * time.Millisecond})

			holder := appConn(t, dbURL, "billing")
			began := time.Now()
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "SELECT sum(balance) FROM accounts")
			mustExec(t, holder, "SELECT count(*) FROM unrelated")
			time.Sleep(150 * time.Millisecond)

			ddl := appConn(t, dbURL, tc.ddlApp)
			ddlStart := time.Now()
			ddlDone := background(ddl, "ALTER TABLE accounts ADD COLUMN note text")
			waitFor(t, 5*time.Second, "the ALTER to wait", func() bool { return waiters(t, admin) == 1 })
			time.Sleep(100 * time.Millisecond)

			readers := []*pgx.Conn{appConn(t, dbURL, "web"), appConn(t, dbURL, "web")}
			var readStart []time.Time
			var readDone []<-chan error
			for _, r := range readers {
				readStart = append(readStart, time.Now())
				readDone = append(readDone, background(r, "SELECT balance FROM accounts WHERE id = 1"))
				waitFor(t, 5*time.Second, "a SELECT to queue", func() bool { return waiters(t, admin) == 1+len(readDone) })
				time.Sleep(50 * time.Millisecond)
			}

			before := time.Now()
			s := m.Tick(ctx)
			after := time.Now()
			ls := s.Locks
			if ls.Error != "" || ls.Skipped {
				t.Fatalf("lock sample: error %q, skipped %v", ls.Error, ls.Skipped)
			}
			hp, dp := holder.PgConn().PID(), ddl.PgConn().PID()
			rp := []int{int(readers[0].PgConn().PID()), int(readers[1].PgConn().PID())}

			var pids []int
			for _, ss := range ls.Sessions {
				pids = append(pids, ss.PID)
			}
			want := append([]int{int(hp), int(dp)}, rp...)
			slices.Sort(want)
			if !slices.Equal(pids, want) {
				t.Errorf("sessions %v, want exactly holder, ALTER and readers %v (not the monitor's own %v)", pids, want, m.ownPIDs())
			}

			h := sessionOf(t, ls, hp)
			if h.State != "idle in transaction" || h.Application != "billing" || h.User != db.Superuser || h.Cutover ||
				h.WaitingFor != nil || !h.HeadBlocker || !slices.Equal(h.Blocks, []int{int(dp)}) || len(h.BlockedBy) != 0 {
				t.Errorf("holder: %+v", h)
			}
			if !slices.Equal(h.Locks, []Lock{{Table: "public.accounts", Type: "relation", Mode: "AccessShareLock", Granted: true}}) {
				t.Errorf("holder's locks on the target: %+v (the lock on unrelated must not appear)", h.Locks)
			}
			if !strings.HasPrefix(h.Client, "127.0.0.1:") || !strings.Contains(h.Query, "unrelated") {
				t.Errorf("holder client %q, query %q", h.Client, h.Query)
			}
			within(t, "holder's transaction age", h.XactAge, before.Sub(began), after.Sub(began))

			d := sessionOf(t, ls, dp)
			wantWait := &Lock{Table: "public.accounts", Type: "relation", Mode: "AccessExclusiveLock", Granted: false}
			if d.WaitingFor == nil || *d.WaitingFor != *wantWait || !slices.Equal(d.BlockedBy, []int{int(hp)}) ||
				!slices.Equal(d.Blocks, rp) || d.HeadBlocker || d.Cutover != tc.trap || d.State != "active" ||
				d.WaitEventType != "Lock" || d.WaitEvent != "relation" || !strings.HasPrefix(d.Query, "ALTER TABLE accounts ADD COLUMN note") {
				t.Errorf("ALTER: %+v (waiting for %+v)", d, d.WaitingFor)
			}
			within(t, "ALTER's wait", d.Waiting, before.Sub(ddlStart), after.Sub(ddlStart))

			for i, pid := range rp {
				r := sessionOf(t, ls, uint32(pid))
				if r.WaitingFor == nil || r.WaitingFor.Mode != "AccessShareLock" || r.WaitingFor.Granted ||
					!slices.Equal(r.BlockedBy, []int{int(dp)}) || len(r.Blocks) != 0 || r.Cutover {
					t.Errorf("reader %d: %+v (waiting for %+v)", i, r, r.WaitingFor)
				}
				within(t, "reader's wait", r.Waiting, before.Sub(readStart[i]), after.Sub(readStart[i]))
			}
			if ls.Waiting != 3 || ls.OldestWait != d.Waiting {
				t.Errorf("waiting %d, oldest %v; want 3 and the ALTER's %v", ls.Waiting, ls.OldestWait, d.Waiting)
			}

			if !tc.trap {
				if len(ls.Traps) != 0 {
					t.Errorf("traps for a session that is not cutover's: %+v", ls.Traps)
				}
			} else if len(ls.Traps) != 1 {
				t.Errorf("traps: %+v, want the one of the ALTER", ls.Traps)
			} else {
				tr := ls.Traps[0]
				r0 := sessionOf(t, ls, uint32(rp[0]))
				if tr.PID != int(dp) || tr.Table != "public.accounts" || tr.Mode != "AccessExclusiveLock" ||
					!slices.Equal(tr.BlockedBy, []int{int(hp)}) || !slices.Equal(tr.Queue, rp) ||
					tr.Waiting != d.Waiting || tr.OldestQueued != r0.Waiting {
					t.Errorf("trap %+v; want ALTER %d blocked by %d with queue %v (oldest first)", tr, dp, hp, rp)
				}
			}

			// The latency pane of the same tick: the probe queued behind
			// the ALTER too and timed out; the waiter count leaves the
			// monitor's probe out.
			lat := s.Latency
			if len(lat.Probes) != 1 || !lat.Probes[0].TimedOut || lat.Probes[0].Last.D() < 200*time.Millisecond {
				t.Errorf("probe during the trap: %+v", lat.Probes)
			}
			if lat.LockWaiters != 3 || lat.OldestWaiter.D() < d.Waiting.D()-50*time.Millisecond {
				t.Errorf("latency pane: %d waiters, oldest %v; want 3, at least %v", lat.LockWaiters, lat.OldestWaiter, d.Waiting)
			}

			// Release: the ALTER and the readers go through.
			mustExec(t, holder, "COMMIT")
			for _, c := range append([]<-chan error{ddlDone}, readDone...) {
				if err := <-c; err != nil {
					t.Fatal(err)
				}
			}
			s = m.Tick(ctx)
			if s.Locks.Waiting != 0 || len(s.Locks.Sessions) != 0 || len(s.Locks.Traps) != 0 || s.Latency.LockWaiters != 0 {
				t.Errorf("after the release: %+v; latency waiters %d", s.Locks, s.Latency.LockWaiters)
			}
		})
	}
}

// A row lock: the second UPDATE of a row waits on the first transaction's
// id, not on the table; it still shows, with its edge.
func TestRowLockWait(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, `CREATE TABLE items (id int PRIMARY KEY, n int); INSERT INTO items VALUES (1, 0), (2, 0);`)
	admin := dbtest.Connect(t, dbURL)
	m := openMonitor(t, dbURL, []string{"public.items"}, Options{})
	first, second := appConn(t, dbURL, "worker"), appConn(t, dbURL, "worker")
	mustExec(t, first, "BEGIN")
	mustExec(t, first, "UPDATE items SET n = n + 1 WHERE id = 1")
	done := background(second, "UPDATE items SET n = n + 1 WHERE id = 1")
	waitFor(t, 5*time.Second, "the second UPDATE to wait", func() bool { return waiters(t, admin) == 1 })

	ls := m.Tick(ctx).Locks
	f, s := sessionOf(t, ls, first.PgConn().PID()), sessionOf(t, ls, second.PgConn().PID())
	if !f.HeadBlocker || !slices.Equal(f.Blocks, []int{s.PID}) {
		t.Errorf("first: %+v", f)
	}
	if s.WaitingFor == nil || s.WaitingFor.Type != "transactionid" || s.WaitingFor.Table != "" || s.WaitingFor.Mode != "ShareLock" ||
		!slices.Equal(s.BlockedBy, []int{f.PID}) || s.WaitEvent != "transactionid" {
		t.Errorf("second: %+v waiting for %+v", s, s.WaitingFor)
	}
	if !slices.Contains(s.Locks, Lock{Table: "public.items", Type: "relation", Mode: "RowExclusiveLock", Granted: true}) {
		t.Errorf("second's locks on the table: %+v", s.Locks)
	}
	mustExec(t, first, "COMMIT")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Locks on a partition count for its partitioned parent.
func TestPartitionLocks(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, `CREATE TABLE events (id bigint, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
		INSERT INTO events VALUES (1, '2024-05-01');`)
	m := openMonitor(t, dbURL, []string{"events"}, Options{})
	holder := appConn(t, dbURL, "etl")
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "LOCK TABLE events_2024 IN SHARE MODE")
	s := m.Tick(ctx)
	h := sessionOf(t, s.Locks, holder.PgConn().PID())
	if !slices.Contains(h.Locks, Lock{Table: "public.events", Type: "relation", Mode: "ShareLock", Granted: true}) {
		t.Errorf("lock on the partition, reported for the parent: %+v", h.Locks)
	}
	if p := s.Latency.Probes[0]; p.Error != "" || p.TimedOut {
		t.Errorf("probe of a partitioned table: %+v", p)
	}
	if tb := m.Tables()[0]; len(tb.Children) != 1 || !slices.Equal(tb.Key, []string{"id", "at"}) {
		t.Errorf("resolved table %+v", tb)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dbURL := dbtest.NewDatabase(t)
	dbtest.LoadSQL(t, dbURL, `CREATE TABLE t (id int); CREATE VIEW v AS SELECT * FROM t;`)
	for _, tc := range []struct {
		table, want string
	}{
		{"nope", `unknown table "nope": no such table in database`},
		{"v", `unknown table "v": public.v is a view, not a table`},
		{"other.t", `unknown table "other.t"`},
	} {
		_, err := Open(ctx, dbURL, []string{"t", tc.table}, Options{})
		if !errors.Is(err, ErrUnknownTable) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q): %v, want ErrUnknownTable saying %q", tc.table, err, tc.want)
		}
	}
	_, err := Open(ctx, "postgres://nobody@127.0.0.1:1/x?connect_timeout=2", []string{"t"}, Options{})
	var ce *db.ConnectError
	if !errors.As(err, &ce) {
		t.Errorf("Open on a closed port: %v, want a *db.ConnectError", err)
	}
	for _, o := range []Options{{Interval: time.Millisecond}, {Interval: time.Second, ProbeTimeout: time.Second}} {
		if _, err := Open(ctx, dbURL, []string{"t"}, o); err == nil {
			t.Errorf("Open with %+v: no error", o)
		}
	}
}
