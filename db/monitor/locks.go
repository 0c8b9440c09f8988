package monitor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// lockSQL reads, in one statement, every lock held or awaited on the target
// tables and the session behind each, plus the lock each of those sessions
// waits for when it is not on a target (a row lock waits on the holder's
// transaction id). pg_locks is read once (the CTE is referenced twice, so
// it is materialized), and pg_blocking_pids(), which is costly, runs only
// for the ungranted locks.
//
// $1 target oids (tables and their partitions), $2 pids to leave out (the
// monitor's own), $3 how many characters of the query to keep. %s is the
// expression for when a lock wait started: pg_locks.waitstart from
// PostgreSQL 14, else NULL (the query's start is used instead).
const lockSQL = `
WITH l AS (
	SELECT l.pid, l.locktype, l.relation, l.mode, l.granted, %s AS waitstart,
		coalesce(l.relation = ANY ($1::oid[]) AND l.database = d.oid, false) AS target
	FROM pg_catalog.pg_locks l,
		(SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) d
	WHERE l.pid <> ALL ($2::int4[])
), s AS (
	SELECT DISTINCT pid FROM l WHERE target
)
SELECT l.pid, l.locktype, l.relation, l.mode, l.granted, l.target,
	CASE WHEN NOT l.granted THEN extract(epoch FROM now() - coalesce(l.waitstart, a.query_start))::float8 END,
	CASE WHEN NOT l.granted THEN pg_catalog.pg_blocking_pids(l.pid) END,
	coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
	CASE WHEN pg_catalog.family(a.client_addr) = 6 THEN '[' || pg_catalog.host(a.client_addr) || ']:' || a.client_port
		WHEN a.client_addr IS NOT NULL THEN pg_catalog.host(a.client_addr) || ':' || a.client_port
		WHEN a.client_port = -1 THEN 'local' ELSE '' END,
	coalesce(a.backend_type, ''), coalesce(a.state, ''),
	coalesce(a.wait_event_type, ''), coalesce(a.wait_event, ''),
	extract(epoch FROM now() - a.xact_start)::float8,
	extract(epoch FROM now() - a.query_start)::float8,
	coalesce(left(a.query, $3), '')
FROM l
JOIN s USING (pid)
JOIN pg_catalog.pg_stat_activity a USING (pid)
WHERE l.target OR NOT l.granted
ORDER BY l.pid, l.granted DESC, l.locktype, l.mode`

// lockSampler samples the lock pane.
type lockSampler struct {
	sess    *session
	names   map[uint32]string // target oid (table or child) -> table name
	oids    []uint32
	chars   int
	guard   time.Duration
	exclude func() []int32
	sql     string

	skipNext bool
}

func newLockSampler(sess *session, tables []Table, opts Options, exclude func() []int32) *lockSampler {
	s := &lockSampler{sess: sess, names: map[uint32]string{}, chars: opts.QueryChars,
		guard: opts.Guard, exclude: exclude}
	for _, t := range tables {
		s.names[t.OID] = t.Name
		s.oids = append(s.oids, t.OID)
		for _, c := range t.Children {
			if _, ok := s.names[c]; !ok {
				s.names[c] = t.Name
				s.oids = append(s.oids, c)
			}
		}
	}
	return s
}

// lockSQLFor returns the lock query for a server version.
func lockSQLFor(version int) string {
	waitstart := "NULL::timestamptz"
	if version >= 140000 {
		waitstart = "l.waitstart"
	}
	return fmt.Sprintf(lockSQL, waitstart)
}

// sample runs one tick: one round trip.
func (s *lockSampler) sample(ctx context.Context) *LockSample {
	out := &LockSample{Sessions: []Session{}, Traps: []Trap{}}
	if s.skipNext {
		s.skipNext = false
		out.Skipped = true
		return out
	}
	s.sess.mu.Lock()
	defer s.sess.mu.Unlock()
	conn, err := s.sess.acquire(ctx)
	if err != nil {
		out.Error = oneLine(err.Error())
		return out
	}
	start := time.Now()
	// Twice the characters kept, so that collapsing whitespace still
	// leaves enough to tell whether the query was cut.
	own := s.exclude()
	rows, err := conn.Query(ctx, lockSQLFor(s.sess.version), s.oids, own, 2*s.chars+1)
	if err != nil {
		s.sess.counters.count(err)
		out.Error = oneLine(err.Error())
		return out
	}
	byPID := map[int]*Session{}
	var order []int
	for rows.Next() {
		var (
			r                 lockRow
			waited            *float64
			blockedBy         []int32
			xactAge, queryAge *float64
			ss                Session
		)
		if err := rows.Scan(&ss.PID, &r.Type, &r.relation, &r.Mode, &r.Granted, &r.target, &waited, &blockedBy,
			&ss.Application, &ss.User, &ss.Client, &ss.BackendType, &ss.State, &ss.WaitEventType, &ss.WaitEvent,
			&xactAge, &queryAge, &ss.Query); err != nil {
			rows.Close()
			out.Error = oneLine(err.Error())
			return out
		}
		p := byPID[ss.PID]
		if p == nil {
			ss.XactAge, ss.QueryAge = seconds(xactAge), seconds(queryAge)
			ss.Query = shorten(ss.Query, s.chars)
			ss.Cutover = IsCutover(ss.Application)
			ss.Locks = []Lock{}
			ss.BlockedBy = []int{}
			ss.Blocks = []int{}
			p = &ss
			byPID[ss.PID] = p
			order = append(order, ss.PID)
		}
		lk := Lock{Type: r.Type, Mode: r.Mode, Granted: r.Granted}
		if r.relation != nil && r.target {
			lk.Table = s.names[*r.relation]
		}
		if r.target {
			p.Locks = append(p.Locks, lk)
		}
		if !r.Granted && p.WaitingFor == nil {
			w := lk
			p.WaitingFor = &w
			p.Waiting = seconds(waited)
			for _, b := range blockedBy {
				// A monitor's probe can be ahead in a queue; it
				// gives up within its timeout and is not shown.
				if !slices.Contains(own, b) {
					p.BlockedBy = append(p.BlockedBy, int(b))
				}
			}
		}
	}
	err = rows.Err()
	s.sess.counters.count(err)
	took := time.Since(start)
	out.Took = Millis(took)
	if err != nil {
		out.Error = oneLine(err.Error())
		return out
	}
	// The latency guard: a lock table so large that reading it took more
	// than the guard is read every other tick only.
	s.skipNext = s.guard > 0 && took > s.guard
	for _, pid := range order {
		out.Sessions = append(out.Sessions, *byPID[pid])
	}
	buildTree(out)
	return out
}

// lockRow is the lock part of a row of lockSQL.
type lockRow struct {
	Type, Mode      string
	relation        *uint32
	Granted, target bool
}

// buildTree fills the reverse edges (Blocks), the head blockers, the wait
// summary and the traps of a sample whose sessions have BlockedBy.
func buildTree(out *LockSample) {
	idx := map[int]int{}
	for i, s := range out.Sessions {
		idx[s.PID] = i
	}
	for _, s := range out.Sessions {
		for _, b := range s.BlockedBy {
			if j, ok := idx[b]; ok {
				out.Sessions[j].Blocks = append(out.Sessions[j].Blocks, s.PID)
			}
		}
	}
	for i := range out.Sessions {
		s := &out.Sessions[i]
		slices.Sort(s.Blocks)
		s.HeadBlocker = len(s.Blocks) > 0 && s.WaitingFor == nil
		if s.WaitingFor != nil {
			out.Waiting++
			out.OldestWait = max(out.OldestWait, s.Waiting)
		}
	}
	for _, s := range out.Sessions {
		if !s.Cutover || s.WaitingFor == nil || s.WaitingFor.Table == "" {
			continue
		}
		trap := Trap{PID: s.PID, Table: s.WaitingFor.Table, Mode: s.WaitingFor.Mode, Waiting: s.Waiting,
			BlockedBy: s.BlockedBy, Queue: []int{}}
		// Everyone reachable through the Blocks edges waits, directly
		// or not, behind cutover's statement.
		seen := map[int]bool{s.PID: true}
		next := slices.Clone(s.Blocks)
		for len(next) > 0 {
			pid := next[0]
			next = next[1:]
			if seen[pid] {
				continue
			}
			seen[pid] = true
			q := out.Sessions[idx[pid]]
			trap.Queue = append(trap.Queue, pid)
			trap.OldestQueued = max(trap.OldestQueued, q.Waiting)
			next = append(next, q.Blocks...)
		}
		slices.SortStableFunc(trap.Queue, func(a, b int) int {
			wa, wb := out.Sessions[idx[a]].Waiting, out.Sessions[idx[b]].Waiting
			switch {
			case wa > wb:
				return -1
			case wa < wb:
				return 1
			}
			return a - b
		})
		out.Traps = append(out.Traps, trap)
	}
}

// IsCutover reports whether an application_name is one of cutover's
// sessions.
func IsCutover(application string) bool {
	return strings.HasPrefix(application, "cutover")
}

// shorten collapses whitespace and cuts a query to n characters, marking a
// cut with "…".
func shorten(q string, n int) string {
	q = strings.Join(strings.Fields(q), " ")
	if n <= 0 {
		return q
	}
	r := []rune(q)
	if len(r) <= n {
		return q
	}
	return string(r[:n-1]) + "…"
}

// oneLine keeps an error message to one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
