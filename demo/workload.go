package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db"
)

// WorkloadApplication is the application_name of the workload's sessions,
// as the locks pane shows them.
const WorkloadApplication = "demo app"

// WorkloadRole is the role the workload connects as: an ordinary role
// with read and write privileges on the sample's tables, as an
// application's would be (Start creates it).
const WorkloadRole = "demo_app"

// WorkloadOptions tune the synthetic workload.
type WorkloadOptions struct {
	// Sessions is the number of concurrent sessions; default 4.
	Sessions int
	// Rate is the total number of transactions a second; default 200,
	// which a 2-core machine serves without strain.
	Rate int
	// Rows is the id range of EventTable the point reads and writes use.
	Rows int
	// StatementTimeout bounds every statement, so that a session queued
	// behind a lock gives up instead of waiting forever; default 5 s.
	StatementTimeout time.Duration
}

// WorkloadStats counts what the workload did.
type WorkloadStats struct {
	// Transactions that committed, and statements that failed.
	Transactions, Errors int64
	// LastError is the latest failure ("" when none).
	LastError string
	// Column is the name the workload writes the renamed column under now.
	Column string
}

// Workload is a synthetic application: Sessions sessions doing point reads
// and writes on EventTable and on pagila's customer and rental tables, at
// a steady rate, and one session holding short transactions open (see
// slowTransactions). It plays the application of the demo's change: it writes
// EventColumn until the application release of a cutover run is confirmed
// in the database (or EventColumn is gone), then EventNewColumn.
type Workload struct {
	opts   WorkloadOptions
	cancel context.CancelFunc
	wg     sync.WaitGroup

	txs, errs atomic.Int64
	lastErr   atomic.Pointer[string]
	column    atomic.Pointer[string]
}

// StartWorkload connects the workload's sessions to dbURL and starts them.
func StartWorkload(ctx context.Context, dbURL string, opts WorkloadOptions) (*Workload, error) {
	if opts.Sessions <= 0 {
		opts.Sessions = 4
	}
	if opts.Rate <= 0 {
		opts.Rate = 200
	}
	if opts.Rows <= 0 {
		opts.Rows = DefaultRows
	}
	if opts.StatementTimeout <= 0 {
		opts.StatementTimeout = 5 * time.Second
	}
	w := &Workload{opts: opts}
	col := EventColumn
	w.column.Store(&col)
	// One session watches for the release, one runs slow transactions,
	// the others the steady statements. The watcher plays the deployment
	// system, which reads cutover's state: it connects as the URL's user;
	// the application's sessions as WorkloadRole.
	conns := make([]*pgx.Conn, 0, opts.Sessions+2)
	for i := 0; i < opts.Sessions+2; i++ {
		c, err := w.connect(ctx, dbURL, i > 0)
		if err != nil {
			for _, c := range conns {
				c.Close(context.Background())
			}
			return nil, fmt.Errorf("starting the demo workload: %w", err)
		}
		conns = append(conns, c)
	}
	// Sessions outlive the caller's context (Start's); Stop ends them.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	w.wg.Add(len(conns))
	go w.watchRelease(wctx, conns[0])
	per := time.Duration(float64(time.Second) * float64(opts.Sessions) / float64(opts.Rate))
	go w.slowTransactions(wctx, conns[1])
	for i, c := range conns[2:] {
		go w.session(wctx, c, per, uint64(i))
	}
	return w, nil
}

func (w *Workload) connect(ctx context.Context, dbURL string, app bool) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("bad workload URL %s: %w", db.Redact(dbURL), err)
	}
	if app {
		cfg.User = WorkloadRole
	}
	cfg.RuntimeParams["application_name"] = WorkloadApplication
	cfg.RuntimeParams["statement_timeout"] = fmt.Sprint(w.opts.StatementTimeout.Milliseconds())
	cfg.ConnectTimeout = db.ConnectTimeout
	return pgx.ConnectConfig(ctx, cfg)
}

// Stop stops the sessions and waits for them to close. It is safe to call
// more than once.
func (w *Workload) Stop() {
	w.cancel()
	w.wg.Wait()
}

// Stats returns the counters so far.
func (w *Workload) Stats() WorkloadStats {
	s := WorkloadStats{Transactions: w.txs.Load(), Errors: w.errs.Load(), Column: *w.column.Load()}
	if e := w.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// session runs one application session: one statement every per (with a
// random phase so the sessions do not tick together).
func (w *Workload) session(ctx context.Context, conn *pgx.Conn, per time.Duration, seed uint64) {
	defer w.wg.Done()
	defer conn.Close(context.Background())
	rnd := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	timer := time.NewTimer(time.Duration(rnd.Int64N(int64(per))))
	defer timer.Stop()
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if w.stop(ctx, conn, w.op(ctx, conn, rnd)) {
			return
		}
		// A steady rate: the next statement is due per after the last
		// one was due, not after it finished; a session that fell
		// behind (a lock wait) does not try to catch up.
		next = next.Add(per)
		if now := time.Now(); next.Before(now) {
			next = now
		}
		timer.Reset(time.Until(next))
	}
}

// stop counts a session's transaction (err nil) or failure and says
// whether the session should end: the demo is stopping, or the failure
// closed its connection.
func (w *Workload) stop(ctx context.Context, conn *pgx.Conn, err error) bool {
	switch {
	case ctx.Err() != nil:
		return true
	case err != nil:
		w.fail(err)
		return conn.IsClosed()
	}
	w.txs.Add(1)
	return false
}

// slowTransactions plays the part of the application that holds its
// transactions open while it works: it locks a row of EventTable, waits
// 150 to 350 ms (a call to another service), updates it and commits, then
// rests as long. Its row and table locks are what the locks pane shows
// most of the time, and what a step's ACCESS EXCLUSIVE lock has to wait
// for.
func (w *Workload) slowTransactions(ctx context.Context, conn *pgx.Conn) {
	defer w.wg.Done()
	defer conn.Close(context.Background())
	rnd := rand.New(rand.NewPCG(99, uint64(time.Now().UnixNano())))
	for ctx.Err() == nil {
		if w.stop(ctx, conn, w.slowTransaction(ctx, conn, rnd)) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(150+rnd.IntN(200)) * time.Millisecond):
		}
	}
}

func (w *Workload) slowTransaction(ctx context.Context, conn *pgx.Conn, rnd *rand.Rand) error {
	col := pgx.Identifier{*w.column.Load()}.Sanitize()
	id := 1 + rnd.Int64N(int64(w.opts.Rows))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, fmt.Sprintf(lockEvent, col), id); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(150+rnd.IntN(200)) * time.Millisecond):
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(updateEvent, col), id, eventKinds[rnd.IntN(len(eventKinds))], "checked out by the demo app"); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// The workload's statements, with the renamed column's name as %s.
const (
	readEvent   = `SELECT event_id, customer_id, %s, detail, created_at FROM public.customer_event WHERE event_id = $1`
	updateEvent = `UPDATE public.customer_event SET %s = $2, detail = $3 WHERE event_id = $1`
	insertEvent = `INSERT INTO public.customer_event (customer_id, %s, detail) VALUES ($1, $2, $3)`
	recentEvent = `SELECT event_id, %s FROM public.customer_event WHERE event_id > $1 ORDER BY event_id LIMIT 10`
	lockEvent   = `SELECT event_id, %s FROM public.customer_event WHERE event_id = $1 FOR UPDATE`
	readCust    = `SELECT customer_id, store_id, first_name, last_name, activebool FROM public.customer WHERE customer_id = $1`
	updateRent  = `UPDATE public.rental SET return_date = now() WHERE rental_id = $1`
)

// op runs one statement of the mix: mostly point reads, some writes.
func (w *Workload) op(ctx context.Context, conn *pgx.Conn, rnd *rand.Rand) error {
	col := pgx.Identifier{*w.column.Load()}.Sanitize()
	id := 1 + rnd.Int64N(int64(w.opts.Rows))
	kind := eventKinds[rnd.IntN(len(eventKinds))]
	var err error
	switch n := rnd.IntN(100); {
	case n < 45:
		_, err = conn.Exec(ctx, fmt.Sprintf(readEvent, col), id)
	case n < 65:
		_, err = conn.Exec(ctx, fmt.Sprintf(updateEvent, col), id, kind, "updated by the demo app")
	case n < 75:
		_, err = conn.Exec(ctx, fmt.Sprintf(insertEvent, col), 1+rnd.IntN(599), kind, "new")
	case n < 80:
		_, err = conn.Exec(ctx, fmt.Sprintf(recentEvent, col), id)
	case n < 92:
		_, err = conn.Exec(ctx, readCust, 1+rnd.IntN(599))
	default:
		_, err = conn.Exec(ctx, updateRent, 1+rnd.IntN(16044))
	}
	return err
}

func (w *Workload) fail(err error) {
	w.errs.Add(1)
	msg := err.Error()
	w.lastErr.Store(&msg)
}

// watchRelease switches the workload to EventNewColumn once a cutover run's
// application release is confirmed and the new column exists, or once the
// old column is gone: the application's own release, played by the demo.
func (w *Workload) watchRelease(ctx context.Context, conn *pgx.Conn) {
	defer w.wg.Done()
	defer conn.Close(context.Background())
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if *w.column.Load() != EventColumn {
			continue
		}
		w.checkColumns(ctx, conn)
	}
}

// released says whether the new column exists, the old one still does, and
// a cutover run has an application release confirmed.
const releasedSQL = `SELECT
	EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = 'public.customer_event'::regclass AND attname = $1 AND attnum > 0 AND NOT attisdropped),
	EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = 'public.customer_event'::regclass AND attname = $2 AND attnum > 0 AND NOT attisdropped),
	to_regclass('cutover.app_releases') IS NOT NULL`

const confirmedSQL = `SELECT EXISTS (SELECT FROM cutover.app_releases WHERE confirmed_at IS NOT NULL)`

// checkColumns switches the column when the release happened. Until then
// a session's statement may fail on the missing column (a contract step run
// before the release): the watcher notices within 250 ms.
func (w *Workload) checkColumns(ctx context.Context, conn *pgx.Conn) {
	var hasNew, hasOld, hasState bool
	if err := conn.QueryRow(ctx, releasedSQL, EventNewColumn, EventColumn).Scan(&hasNew, &hasOld, &hasState); err != nil {
		return
	}
	switch {
	case !hasNew:
		return
	case !hasOld:
	case hasState:
		var confirmed bool
		if err := conn.QueryRow(ctx, confirmedSQL).Scan(&confirmed); err != nil || !confirmed {
			return
		}
	default:
		return
	}
	col := EventNewColumn
	w.column.Store(&col)
}
