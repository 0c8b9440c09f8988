package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// statsSQL reads, in one statement, the database's counters and the lock
// waiters on the target tables. $1 target oids, $2 pids to leave out.
// Verbs: 1 when a lock wait started (pg_locks.waitstart from 14, else
// NULL: the query's start is used), 2 when the counters were read (the
// server clock from 15, where statistics are read from shared memory
// as of the access; before, the statistics snapshot's own time), 3 the
// pg_stat_statements_info columns (dealloc, stats_reset) or NULLs.
const statsSQL = `
WITH l AS (
	SELECT l.pid, l.granted, %[1]s AS waitstart,
		coalesce(l.relation = ANY ($1::oid[]) AND l.database = d.oid, false) AS target
	FROM pg_catalog.pg_locks l,
		(SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) d
	WHERE l.pid <> ALL ($2::int4[])
), w AS (
	SELECT pid, min(waitstart) AS waitstart FROM l
	WHERE NOT granted AND pid IN (SELECT pid FROM l WHERE target)
	GROUP BY pid
)
SELECT s.xact_commit, s.xact_rollback, s.tup_inserted + s.tup_updated + s.tup_deleted, s.stats_reset,
	%[2]s,
	(SELECT count(*) FROM w),
	(SELECT extract(epoch FROM now() - min(coalesce(w.waitstart, a.query_start)))::float8
		FROM w JOIN pg_catalog.pg_stat_activity a USING (pid)),
	%[3]s
FROM pg_catalog.pg_stat_database s
WHERE s.datname = pg_catalog.current_database()`

// replicationSQL reads the replicas of the server (none on most). A WAL
// receiver that does not replay (pg_receivewal) has no replay position:
// its lag in bytes is then measured to what it flushed.
const replicationSQL = `
SELECT coalesce(application_name, ''),
	CASE WHEN client_addr IS NOT NULL THEN pg_catalog.host(client_addr) ELSE 'local' END,
	coalesce(state, ''), coalesce(sync_state, ''),
	extract(epoch FROM write_lag)::float8, extract(epoch FROM flush_lag)::float8, extract(epoch FROM replay_lag)::float8,
	CASE WHEN NOT pg_catalog.pg_is_in_recovery()
		THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), coalesce(replay_lsn, flush_lsn, write_lsn))::int8 END
FROM pg_catalog.pg_stat_replication
ORDER BY application_name, pid`

// statementsSQL reads pg_stat_statements for the database without the
// query texts (showtext false: the texts live in a file that can be
// large). Verbs: 1 the function, schema-qualified; 2 the toplevel column
// (1.9+) or true. $1 query ids to leave out: the monitor's own.
const statementsSQL = `
SELECT userid, queryid, %[2]s, calls, total_exec_time
FROM %[1]s(false)
WHERE dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
	AND queryid IS NOT NULL AND queryid <> ALL ($1::int8[])`

// statements describes the pg_stat_statements extension of the database.
type statements struct {
	fn       string // qualified function name, "" when unavailable
	toplevel bool   // 1.9+: toplevel column and pg_stat_statements_info
	info     string // qualified pg_stat_statements_info
	own      []int64
}

// latencySampler samples the latency pane: the statistics on one
// connection, the canary probes each on its own.
type latencySampler struct {
	sess    *session
	oids    []uint32
	probes  []*probe
	guard   time.Duration
	exclude func() []int32
	stmts   statements

	prevDB    *dbCounters
	prevStmts *stmtReading
	skipStmts bool
}

func newLatencySampler(sess *session, tables []Table, probes []*probe, opts Options, exclude func() []int32) *latencySampler {
	s := &latencySampler{sess: sess, probes: probes, guard: opts.Guard, exclude: exclude}
	for _, t := range tables {
		s.oids = append(s.oids, t.OID)
		s.oids = append(s.oids, t.Children...)
	}
	return s
}

// setup finds pg_stat_statements and the query ids of the monitor's own
// statements (its own, the probes', and ownSQL), to leave them out of the
// mean. The caller holds s.sess.mu.
func (s *latencySampler) setup(ctx context.Context, conn *pgx.Conn, ownSQL []stmtSQL) {
	var nsp, version string
	err := conn.QueryRow(ctx, `SELECT n.nspname, e.extversion FROM pg_catalog.pg_extension e
		JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'`).Scan(&nsp, &version)
	s.sess.counters.count(err)
	if err != nil {
		return // absent (or unreadable: the same for the monitor)
	}
	major, minor, _ := strings.Cut(version, ".")
	ma, _ := strconv.Atoi(major)
	mi, _ := strconv.Atoi(minor)
	if ma < 1 || (ma == 1 && mi < 8) {
		return // before 1.8 (PostgreSQL 13) there is no total_exec_time
	}
	st := statements{fn: pgx.Identifier{nsp, "pg_stat_statements"}.Sanitize(), toplevel: ma > 1 || mi >= 9}
	if st.toplevel {
		st.info = pgx.Identifier{nsp, "pg_stat_statements_info"}.Sanitize()
	}
	// The extension may be installed but not loaded
	// (shared_preload_libraries): then reading it fails.
	_, err = conn.Exec(ctx, "SELECT FROM "+st.fn+"(false) LIMIT 1")
	s.sess.counters.count(err)
	if err != nil {
		return
	}
	s.stmts = st
	// EXPLAIN VERBOSE shows the query identifier pg_stat_statements files
	// a statement under (PostgreSQL 14+, compute_query_id on, which
	// pg_stat_statements turns on): planning is enough, nothing runs.
	own := append([]stmtSQL{
		{sql: s.statsSQL(), args: []any{s.oids, []int32{}}},
		{sql: replicationSQL},
		{sql: s.stmtsSQL(), args: []any{[]int64{}}},
	}, ownSQL...)
	for _, p := range s.probes {
		own = append(own, p.statements()...)
	}
	for _, q := range own {
		if id, ok := queryID(ctx, s.sess, conn, q); ok {
			s.stmts.own = append(s.stmts.own, id)
		}
	}
}

// stmtSQL is a statement of the monitor with arguments to plan it with.
type stmtSQL struct {
	sql  string
	args []any
}

// queryID returns the query identifier of a statement, from EXPLAIN
// VERBOSE.
func queryID(ctx context.Context, sess *session, conn *pgx.Conn, q stmtSQL) (int64, bool) {
	var plan []byte
	err := conn.QueryRow(ctx, "EXPLAIN (VERBOSE, FORMAT JSON) "+q.sql, q.args...).Scan(&plan)
	sess.counters.count(err)
	if err != nil {
		return 0, false
	}
	var out []struct {
		ID *int64 `json:"Query Identifier"`
	}
	if json.Unmarshal(plan, &out) != nil || len(out) != 1 || out[0].ID == nil {
		return 0, false
	}
	return *out[0].ID, true
}

func (s *latencySampler) statsSQL() string {
	waitstart, at, info := "NULL::timestamptz", "pg_catalog.pg_stat_get_snapshot_timestamp()", "NULL::int8, NULL::timestamptz"
	if s.sess.version >= 140000 {
		waitstart = "l.waitstart"
	}
	if s.sess.version >= 150000 {
		at = "pg_catalog.clock_timestamp()"
	}
	if s.stmts.info != "" {
		info = "(SELECT dealloc FROM " + s.stmts.info + "), (SELECT stats_reset FROM " + s.stmts.info + ")"
	}
	return fmt.Sprintf(statsSQL, waitstart, at, info)
}

func (s *latencySampler) stmtsSQL() string {
	top := "true"
	if s.stmts.toplevel {
		top = "toplevel"
	}
	return fmt.Sprintf(statementsSQL, s.stmts.fn, top)
}

// sample runs one tick: the probes, concurrently, each on its own
// connection, and the statistics in one pipelined batch (one round trip).
func (s *latencySampler) sample(ctx context.Context) *LatencySample {
	out := &LatencySample{Probes: make([]Probe, len(s.probes)), Replicas: []Replica{}}
	var wg sync.WaitGroup
	for i, p := range s.probes {
		wg.Go(func() { out.Probes[i] = p.run(ctx) })
	}
	s.stats(ctx, out)
	wg.Wait()
	return out
}

func (s *latencySampler) stats(ctx context.Context, out *LatencySample) {
	out.Rates, out.Statements = "error", "error"
	if s.stmts.fn == "" {
		out.Statements = "absent"
	}
	s.sess.mu.Lock()
	defer s.sess.mu.Unlock()
	conn, err := s.sess.acquire(ctx)
	if err != nil {
		out.Error = oneLine(err.Error())
		return
	}
	withStmts := s.stmts.fn != "" && !s.skipStmts
	if s.stmts.fn != "" && s.skipStmts {
		out.Statements = "skipped"
	}
	s.skipStmts = false

	b := &pgx.Batch{}
	b.Queue(s.statsSQL(), s.oids, s.exclude())
	b.Queue(replicationSQL)
	if withStmts {
		b.Queue(s.stmtsSQL(), s.stmts.own)
	}
	start := time.Now()
	br := conn.SendBatch(ctx, b)
	err = s.readBatch(br, out, withStmts)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	s.sess.counters.count(err)
	took := time.Since(start)
	out.Took = Millis(took)
	if err != nil {
		out.Error = oneLine(err.Error())
	}
	// The latency guard: pg_stat_statements is the expensive part (one
	// row per statement); when the batch ran long, the next tick goes
	// without it.
	if withStmts && s.guard > 0 && took > s.guard {
		s.skipStmts = true
	}
}

// readBatch reads the results of the statistics batch into out.
func (s *latencySampler) readBatch(br pgx.BatchResults, out *LatencySample, withStmts bool) error {
	var (
		cur        dbCounters
		statsReset *time.Time
		waiters    int
		oldest     *float64
		dealloc    *int64
		stmtReset  *time.Time
	)
	if err := br.QueryRow().Scan(&cur.Commits, &cur.Rollbacks, &cur.Written, &statsReset, &cur.At,
		&waiters, &oldest, &dealloc, &stmtReset); err != nil {
		return err
	}
	cur.OwnCommits, cur.OwnRollbacks = s.sess.counters.commits.Load(), s.sess.counters.rollbacks.Load()
	if statsReset != nil {
		cur.Reset = *statsReset
	}
	out.LockWaiters, out.OldestWaiter = waiters, seconds(oldest)
	rates, status := computeDBRates(s.prevDB, &cur)
	out.Rates = status
	if status == "ok" {
		out.Elapsed = Millis(rates.Elapsed)
		out.TPS, out.Commits, out.Rollbacks, out.RowsWritten = round3(rates.TPS), round3(rates.Commits), round3(rates.Rollbacks), round3(rates.RowsWritten)
	} else if s.prevDB != nil {
		out.Elapsed = Millis(cur.At.Sub(s.prevDB.At))
	}
	if status != "stale" {
		s.prevDB = &cur
	}

	rows, err := br.Query()
	if err != nil {
		return err
	}
	for rows.Next() {
		var r Replica
		var write, flush, replay *float64
		if err := rows.Scan(&r.Name, &r.Client, &r.State, &r.SyncState, &write, &flush, &replay, &r.LagBytes); err != nil {
			rows.Close()
			return err
		}
		r.WriteLag, r.FlushLag, r.ReplayLag = optSeconds(write), optSeconds(flush), optSeconds(replay)
		out.Replicas = append(out.Replicas, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}

	if !withStmts {
		return nil
	}
	reading := stmtReading{entries: map[stmtKey]stmtCounters{}}
	if dealloc != nil {
		reading.dealloc = *dealloc
	}
	if stmtReset != nil {
		reading.reset = *stmtReset
	}
	rows, err = br.Query()
	if err != nil {
		return err
	}
	for rows.Next() {
		var k stmtKey
		var c stmtCounters
		if err := rows.Scan(&k.user, &k.queryID, &k.toplevel, &c.calls, &c.ms); err != nil {
			rows.Close()
			return err
		}
		// The same key can appear twice when entries for two users or
		// planning modes collide; add them up.
		prev := reading.entries[k]
		reading.entries[k] = stmtCounters{calls: prev.calls + c.calls, ms: prev.ms + c.ms}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	calls, mean, status, evicted := computeMeanExec(s.prevStmts, reading)
	out.Statements, out.Evicted = status, evicted
	if status == "ok" {
		m := Millis(mean)
		out.MeanExec, out.Calls = &m, calls
	}
	s.prevStmts = &reading
	return nil
}

// round3 rounds a rate to a thousandth, for output that reads well.
func round3(f float64) *float64 {
	r := math.Round(f*1000) / 1000
	return &r
}

func optSeconds(s *float64) *Millis {
	if s == nil {
		return nil
	}
	m := seconds(s)
	return &m
}

// probe is the canary read on one table, on its own connection, whose
// lock_timeout and statement_timeout are the probe timeout: it waits in the
// same lock queue the application's reads wait in, for a bounded time.
type probe struct {
	table  Table
	sess   *session
	window *Ring[probeResult]

	key        []any // the key value read by, nil until known
	keyChecked int   // probes since the key was last looked for
}

type probeResult struct {
	latency  time.Duration
	timedOut bool
}

// keySQL reads the smallest key: an index scan of one entry.
func (p *probe) keySQL() string {
	return "SELECT " + p.table.keyList() + " FROM " + p.table.quoted() + " ORDER BY " + p.table.keyList() + " LIMIT 1"
}

// readSQL reads the row of that key by the index.
func (p *probe) readSQL() string {
	conds := make([]string, len(p.table.Key))
	for i, c := range p.table.Key {
		conds[i] = pgx.Identifier{c}.Sanitize() + " = $" + strconv.Itoa(i+1)
	}
	return "SELECT 1 FROM " + p.table.quoted() + " WHERE " + strings.Join(conds, " AND ") + " LIMIT 1"
}

// anySQL reads any row: for a table without a key, or an empty one.
func (p *probe) anySQL() string {
	return "SELECT 1 FROM " + p.table.quoted() + " LIMIT 1"
}

// statements returns the probe's statements, for query identifiers.
func (p *probe) statements() []stmtSQL {
	out := []stmtSQL{{sql: p.anySQL()}}
	if p.table.Key != nil {
		args := make([]any, len(p.table.Key))
		out = append(out, stmtSQL{sql: p.keySQL()}, stmtSQL{sql: p.readSQL(), args: args})
	}
	return out
}

// keyRecheck is how many probes go by before looking again for a key in a
// table that had no row.
const keyRecheck = 30

// run probes once. Until the key value is known, the probe is the key
// lookup itself (an equally cheap index read).
func (p *probe) run(ctx context.Context) Probe {
	res := Probe{Table: p.table.Name}
	p.sess.mu.Lock()
	conn, err := p.sess.acquire(ctx)
	if err != nil {
		p.sess.mu.Unlock()
		res.Error = oneLine(err.Error())
		return p.summarize(res)
	}
	start := time.Now()
	switch {
	case p.key != nil:
		_, err = conn.Exec(ctx, p.readSQL(), p.key...)
	case p.table.Key != nil && p.keyChecked%keyRecheck == 0:
		var rows pgx.Rows
		rows, err = conn.Query(ctx, p.keySQL())
		if err == nil {
			if rows.Next() {
				p.key, err = rows.Values()
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		p.keyChecked++
	default:
		_, err = conn.Exec(ctx, p.anySQL())
		p.keyChecked++
	}
	elapsed := time.Since(start)
	p.sess.counters.count(err)
	p.sess.mu.Unlock()

	res.Last = Millis(elapsed)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
	case errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "57014"):
		// lock_not_available (lock_timeout) or query_canceled
		// (statement_timeout): the application would have waited at
		// least as long.
		res.TimedOut = true
	default:
		res.Error = oneLine(err.Error())
		p.key = nil // the table may have changed under the probe
		p.keyChecked = 0
	}
	if res.Error == "" {
		p.window.Push(probeResult{latency: elapsed, timedOut: res.TimedOut})
	}
	return p.summarize(res)
}

// summarize fills the window's percentiles.
func (p *probe) summarize(res Probe) Probe {
	lat := make([]time.Duration, 0, p.window.Len())
	for _, r := range p.window.All() {
		lat = append(lat, r.latency)
		if r.timedOut {
			res.Timeouts++
		}
	}
	res.N = len(lat)
	if res.N == 0 {
		return res
	}
	slices.Sort(lat)
	res.P50, res.P95, res.P99 = Millis(percentile(lat, 50)), Millis(percentile(lat, 95)), Millis(percentile(lat, 99))
	res.Max = Millis(lat[len(lat)-1])
	return res
}

// percentile returns the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, pct int) time.Duration {
	rank := (pct*len(sorted) + 99) / 100 // ceil(pct/100 * n)
	return sorted[max(rank, 1)-1]
}
