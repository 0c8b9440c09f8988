package db_test

// The engine under a concurrent workload: goroutines insert, update and
// read the table being changed for the whole run, each checking it reads
// back what it wrote. The workload must see no error, every row written
// during the transition must arrive in the new column, and the final data
// must be the starting data with the change applied.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/db"
	"github.com/cutover/cutover/db/dbtest"
	"github.com/cutover/cutover/plans"
)

const workers = 4

// owned holds what one goroutine wrote: rows only it writes, so the last
// value it wrote is the value the row must have.
type owned struct {
	mu   sync.Mutex
	rows [workers]map[int64]*string
	// inserted counts rows inserted per goroutine.
	inserted [workers]int
}

func newOwned() *owned {
	o := &owned{}
	for g := range o.rows {
		o.rows[g] = map[int64]*string{}
	}
	return o
}

// anyRow picks a row goroutine g owns.
func (o *owned) anyRow(g, i int) (int64, *string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := i % len(o.rows[g])
	for id, v := range o.rows[g] {
		if n == 0 {
			return id, v
		}
		n--
	}
	panic("no rows")
}

func (o *owned) set(g int, id int64, v *string, insert bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rows[g][id] = v
	if insert {
		o.inserted[g]++
	}
}

func (o *owned) total() int {
	n := 0
	for _, c := range o.inserted {
		n += c
	}
	return n
}

func strp(s string) *string { return &s }

// startValues reads id -> value of a column and assigns each row to the
// goroutine id % workers.
func startValues(t *testing.T, conn *pgx.Conn, sql string) *owned {
	t.Helper()
	o := newOwned()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var v *string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		o.rows[id%workers][id] = v
	}
	return o
}

// checkOwned checks every row a goroutine wrote has its last value.
func checkOwned(t *testing.T, conn *pgx.Conn, o *owned, query string) {
	t.Helper()
	bad := 0
	for g := range o.rows {
		for id, want := range o.rows[g] {
			var got *string
			if err := conn.QueryRow(context.Background(), query, id).Scan(&got); err != nil {
				t.Fatalf("row %d: %v", id, err)
			}
			if (got == nil) != (want == nil) || (got != nil && *got != *want) {
				if bad++; bad <= 5 {
					t.Errorf("row %d: %v, want %v", id, deref(got), deref(want))
				}
			}
		}
	}
	if bad > 5 {
		t.Errorf("... %d rows wrong in all", bad)
	}
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}

// checksum of a query's rows.
func checksum(t *testing.T, conn *pgx.Conn, query string) string {
	t.Helper()
	var sum string
	if err := conn.QueryRow(context.Background(), `SELECT count(*) || ':' || coalesce(md5(string_agg(r, E'\n' ORDER BY r)), '') FROM (`+query+`) x(r)`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

// schemaOnly compares the catalogs of two databases (data differs: the
// workload wrote rows).
func schemaOnly(t *testing.T, want, got *pgx.Conn) {
	t.Helper()
	w, g := snapshot(t, want, nil), snapshot(t, got, nil)
	w.Data, g.Data = nil, nil
	compareSnapshots(t, w, g)
}

// A full rename of customer.email, headless, through the application
// release, while goroutines insert, update and read customer throughout,
// writing email before the release and email_address after it.
func TestRenameUnderWorkload(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	withStatements(t, conn)
	p := planFor(t, conn, "ALTER TABLE customer RENAME COLUMN email TO email_address")
	o := startValues(t, conn, `SELECT customer_id, email FROM customer`)
	const others = `SELECT ROW(customer_id, store_id, first_name, last_name, address_id, activebool, create_date, active)::text FROM customer WHERE customer_id <= 599`
	before := checksum(t, conn, others)

	// release switches the workload to the new column: the application
	// release. Queries hold the read lock, so none on the old name is in
	// flight once the switch returns.
	var release sync.RWMutex
	col := "email"
	w := newWorkload(t)
	w.run(url, workers, pgx.QueryExecModeCacheStatement, func(c *pgx.Conn, g, i int) error {
		release.RLock()
		defer release.RUnlock()
		ctx := context.Background()
		ident := pgx.Identifier{col}.Sanitize()
		v := fmt.Sprintf("w%d-%d@example.org", g, i)
		switch i % 4 {
		case 0:
			var id int64
			if err := c.QueryRow(ctx, `INSERT INTO customer (store_id, first_name, last_name, `+ident+`, address_id) VALUES (1, 'Work', 'Load', $1, 1) RETURNING customer_id`, v).Scan(&id); err != nil {
				return err
			}
			o.set(g, id, strp(v), true)
		case 1, 2:
			id, _ := o.anyRow(g, i)
			if _, err := c.Exec(ctx, `UPDATE customer SET `+ident+` = $1 WHERE customer_id = $2`, v, id); err != nil {
				return err
			}
			o.set(g, id, strp(v), false)
		case 3:
			id, want := o.anyRow(g, i)
			var got *string
			if err := c.QueryRow(ctx, `SELECT `+ident+` FROM customer WHERE customer_id = $1`, id).Scan(&got); err != nil {
				return err
			}
			if deref(got) != deref(want) {
				return fmt.Errorf("customer %d: read %s, wrote %s", id, deref(got), deref(want))
			}
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)

	ev := newEvents(t)
	opts := db.ApplyOptions{Observe: 2 * time.Second, OnEvent: ev.on}
	out, err := applyOnce(t, url, p, opts)
	if err != nil || out.Status != "waiting" {
		t.Fatalf("first apply: %v %+v, want waiting for the application release", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	release.Lock()
	col = "email_address"
	release.Unlock()
	time.Sleep(300 * time.Millisecond)
	// Running apply again confirms the release and goes on.
	out, err = applyOnce(t, url, p, opts)
	if err != nil || out.Status != "done" {
		t.Fatalf("second apply: %v %+v, want done", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	w.finish()

	checkOwned(t, conn, o, `SELECT email_address FROM customer WHERE customer_id = $1`)
	var count int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM customer`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != 599+o.total() {
		t.Errorf("customer has %d rows, want 599 + %d inserted", count, o.total())
	}
	if after := checksum(t, conn, others); after != before {
		t.Errorf("the other columns changed: %s, want %s", after, before)
	}
	naive := dbtest.Connect(t, dbtest.Pagila(t))
	exec(t, naive, "ALTER TABLE customer RENAME COLUMN email TO email_address")
	schemaOnly(t, naive, conn)

	usage := ev.kind(db.EventUsageCheck)
	if len(usage) < 2 || !usage[len(usage)-1].Usage.Clean || usage[0].Usage.Clean {
		t.Errorf("usage check: %d looks, want it to wait for the 2s window and then pass", len(usage))
	}
	t.Logf("workload wrote %d rows during the transition; %d usage checks", o.total(), len(usage))
}

// A full type change of rental.rental_id (a primary key referenced by the
// partitions of payment) to bigint, headless, with goroutines inserting
// rentals and payments and updating rentals throughout.
func TestTypeChangeUnderWorkload(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	withStatements(t, conn)
	p := planFor(t, conn, "ALTER TABLE rental ALTER COLUMN rental_id TYPE bigint")
	o := startValues(t, conn, `SELECT rental_id, return_date::text FROM rental`)
	var startRentals, startPayments int
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM rental), (SELECT count(*) FROM payment)`).Scan(&startRentals, &startPayments); err != nil {
		t.Fatal(err)
	}
	const rentals = `SELECT ROW(rental_id, rental_date, inventory_id, customer_id, staff_id)::text FROM rental WHERE rental_id <= 16049`
	const payments = `SELECT ROW(payment_id, customer_id, staff_id, rental_id, amount, payment_date)::text FROM payment WHERE payment_id <= 32098`
	beforeRentals, beforePayments := checksum(t, conn, rentals), checksum(t, conn, payments)

	var mu sync.Mutex
	paid := map[int64]int64{} // payment id -> rental id
	w := newWorkload(t)
	// The application release of this plan asks for statements to be
	// re-prepared when the column's type changes: QueryExecModeExec.
	w.run(url, workers, pgx.QueryExecModeExec, func(c *pgx.Conn, g, i int) error {
		ctx := context.Background()
		switch i % 5 {
		case 0:
			var id int64
			at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g*100000+i) * time.Second)
			if err := c.QueryRow(ctx, `INSERT INTO rental (rental_date, inventory_id, customer_id, staff_id) VALUES ($1, $2, $3, 1) RETURNING rental_id`,
				at, 1+i%4000, 1+i%599).Scan(&id); err != nil {
				return err
			}
			o.set(g, id, nil, true)
		case 1:
			rid, _ := o.anyRow(g, i)
			var pid int64
			if err := c.QueryRow(ctx, `INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date) VALUES (1, 1, $1, 1.23, $2) RETURNING payment_id`,
				rid, time.Date(2022, 3, 15, 12, 0, i%60, 0, time.UTC)).Scan(&pid); err != nil {
				return err
			}
			mu.Lock()
			paid[pid] = rid
			mu.Unlock()
		case 2, 3:
			id, _ := o.anyRow(g, i)
			v := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
			var text string
			if err := c.QueryRow(ctx, `UPDATE rental SET return_date = $1 WHERE rental_id = $2 RETURNING return_date::text`, v, id).Scan(&text); err != nil {
				return err
			}
			o.set(g, id, &text, false)
		case 4:
			id, want := o.anyRow(g, i)
			var got *string
			if err := c.QueryRow(ctx, `SELECT return_date::text FROM rental WHERE rental_id = $1`, id).Scan(&got); err != nil {
				return err
			}
			if deref(got) != deref(want) {
				return fmt.Errorf("rental %d: read %s, wrote %s", id, deref(got), deref(want))
			}
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	ev := newEvents(t)
	opts := db.ApplyOptions{Observe: 0, SkipTriggers: true, BatchSize: 2000, OnEvent: ev.on,
		ConfirmIrreversible: []string{"public.rental"}}
	out, err := applyOnce(t, url, p, opts)
	if err != nil || out.Status != "waiting" {
		t.Fatalf("first apply: %v %+v, want waiting for the application release", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	out, err = applyOnce(t, url, p, opts)
	if err != nil || out.Status != "done" {
		t.Fatalf("second apply: %v %+v, want done", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	w.finish()

	checkOwned(t, conn, o, `SELECT return_date::text FROM rental WHERE rental_id = $1`)
	var nRentals, nPayments int
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM rental), (SELECT count(*) FROM payment)`).Scan(&nRentals, &nPayments); err != nil {
		t.Fatal(err)
	}
	if nRentals != startRentals+o.total() || nPayments != startPayments+len(paid) {
		t.Errorf("rental %d rows, payment %d: want %d + %d and %d + %d", nRentals, nPayments, startRentals, o.total(), startPayments, len(paid))
	}
	for pid, rid := range paid {
		var got int64
		if err := conn.QueryRow(context.Background(), `SELECT rental_id FROM payment WHERE payment_id = $1`, pid).Scan(&got); err != nil || got != rid {
			t.Errorf("payment %d: rental_id %d (%v), want %d", pid, got, err, rid)
		}
	}
	if got := checksum(t, conn, rentals); got != beforeRentals {
		t.Errorf("rental's other columns changed: %s, want %s", got, beforeRentals)
	}
	if got := checksum(t, conn, payments); got != beforePayments {
		t.Errorf("payment's rows changed: %s, want %s", got, beforePayments)
	}
	naive := dbtest.Connect(t, dbtest.Pagila(t))
	runKeepingViews(t, naive, "ALTER TABLE payment ALTER COLUMN rental_id TYPE bigint; ALTER TABLE rental ALTER COLUMN rental_id TYPE bigint")
	schemaOnly(t, naive, conn)
	t.Logf("workload inserted %d rentals and %d payments during the transition", o.total(), len(paid))
}

// With a transaction holding a lock on the table, apply retries with
// backoff, reports each retry with the blocker, and no workload query
// waits behind cutover's DDL for longer than lock_timeout + 50 ms.
func TestLockHeldRetriesWithoutStallingTheWorkload(t *testing.T) {
	url := dbtest.Pagila(t)
	conn := dbtest.Connect(t, url)
	p := planFor(t, conn, "ALTER TABLE customer RENAME COLUMN email TO email_address")

	blocker := dbtest.Connect(t, url)
	exec(t, blocker, "BEGIN; SELECT count(*) FROM customer")
	var blockerPID int
	if err := blocker.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&blockerPID); err != nil {
		t.Fatal(err)
	}
	w := newWorkload(t)
	w.run(url, 2, pgx.QueryExecModeCacheStatement, func(c *pgx.Conn, g, i int) error {
		id := 1 + (g*300+i)%599
		if i%2 == 0 {
			_, err := c.Exec(context.Background(), `UPDATE customer SET first_name = first_name WHERE customer_id = $1`, id)
			return err
		}
		var n string
		return c.QueryRow(context.Background(), `SELECT first_name FROM customer WHERE customer_id = $1`, id).Scan(&n)
	})
	const held = 1500 * time.Millisecond
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		time.Sleep(held)
		exec(t, blocker, "COMMIT")
	}()
	t.Cleanup(func() { <-committed }) // before blocker's own cleanup closes it
	ev := newEvents(t)
	opts := db.ApplyOptions{Through: plans.Expand, OnEvent: ev.on}
	start := time.Now()
	if _, err := applyOnce(t, url, p, opts); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	w.finish()

	retries := ev.kind(db.EventStepRetry)
	if len(retries) < 2 {
		t.Fatalf("%d retries reported, want several while the lock was held %s", len(retries), held)
	}
	for _, r := range retries {
		if r.StepID != "E1-add-column-email-address" || r.Retry == nil || r.Retry.SQLState != "55P03" {
			t.Errorf("retry event %+v: want E1 on 55P03", r)
		}
		if !strings.Contains(r.Retry.Blockers, fmt.Sprintf("pid %d", blockerPID)) {
			t.Errorf("retry %d does not name the blocker pid %d: %q", r.Attempt, blockerPID, r.Retry.Blockers)
		}
	}
	failed := 0
	for _, a := range audit(t, conn, db.PlanID(p)) {
		if a.step == "E1-add-column-email-address" && a.sqlstate == "55P03" {
			failed++
			if a.lockWait == nil || *a.lockWait < 200 {
				t.Errorf("audit of a timed-out attempt has lock wait %v ms, want about 250", a.lockWait)
			}
		}
	}
	if failed != len(retries) {
		t.Errorf("%d failed attempts audited, %d retries reported", failed, len(retries))
	}
	limit := db.DefaultLockTimeout + 50*time.Millisecond
	if w.max > limit {
		t.Errorf("a workload query waited %s, want at most lock_timeout + 50ms = %s", w.max, limit)
	}
	t.Logf("lock held %s: apply took %s with %d retries; workload max latency %s over %d queries (limit %s)", held, elapsed, len(retries), w.max, w.ops, limit)
}
