package db

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cutover/cutover/schema"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// MinServerVersion is the oldest PostgreSQL Introspect reads (11: the
// first with partitioned indexes, conparentid and INCLUDE columns).
const MinServerVersion = 110000

// introspectLockTimeout bounds the wait for the ACCESS SHARE lock that
// pg_total_relation_size takes on each table: introspection must never
// queue behind a pending ACCESS EXCLUSIVE lock for long.
var introspectLockTimeout = "5s"

// Introspect reads the schema of the database conn is connected to from the
// catalogs and fills the same canonical model schema.ParseDump fills from a
// dump of it: every definition is PostgreSQL's own text (format_type,
// pg_get_expr, pg_get_indexdef, pg_get_constraintdef, pg_get_triggerdef,
// pg_get_viewdef, pg_get_partkeydef), produced with an empty search_path
// so names come qualified as in pg_dump's output, then canonicalised by the
// schema package. System schemas, the cutover schema and objects belonging
// to extensions are left out, as pg_dump leaves them out.
//
// It reads everything in one read-only REPEATABLE READ transaction (one
// consistent snapshot) with one query per kind of object, sent as a single
// batch, so the cost does not grow with round trips per table. conn must
// not be inside a transaction.
//
// Besides the dump's content it fills ServerVersion, Source ("live database
// host:port/dbname"), and each table's RowEstimate (pg_class.reltuples; -1
// when never analyzed) and Bytes (pg_total_relation_size); a partitioned
// table's figures are the sums over its partitions.
func Introspect(ctx context.Context, conn *pgx.Conn) (*schema.Schema, error) {
	if st := conn.PgConn().TxStatus(); st != 'I' {
		return nil, errors.New("introspect: the connection is inside a transaction")
	}
	cfg := conn.Config()
	s := schema.New("live database " + Describe(&cfg.Config))

	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := tx.QueryRow(ctx, `SELECT current_setting('server_version_num')::int,
		set_config('search_path', '', true), set_config('lock_timeout', $1, true)`,
		introspectLockTimeout).Scan(&s.ServerVersion, nil, nil); err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	if s.ServerVersion < MinServerVersion {
		return nil, fmt.Errorf("introspect: PostgreSQL %d.%d is not supported; cutover needs PostgreSQL 11 or newer",
			s.ServerVersion/10000, s.ServerVersion%10000/100)
	}

	r := &catalogRows{}
	batch := &pgx.Batch{}
	for _, q := range catalogQueries(s.ServerVersion, r) {
		q := q
		batch.Queue(q.sql).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				if err := q.scan(rows); err != nil {
					return fmt.Errorf("reading %s: %w", q.what, err)
				}
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("reading %s: %w", q.what, err)
			}
			return nil
		})
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" {
			return nil, fmt.Errorf("introspect: waited %s for a table lock (a session holds or waits for an ACCESS EXCLUSIVE lock); retry when it is done: %w", introspectLockTimeout, err)
		}
		return nil, fmt.Errorf("introspect: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	if err := r.fill(s); err != nil {
		return nil, fmt.Errorf("introspect: %w", err)
	}
	return s, nil
}

// catalogQuery is one query of the batch and how to scan one of its rows.
type catalogQuery struct {
	what string
	sql  string
	scan func(pgx.Rows) error
}

// Raw catalog rows, as PostgreSQL returns them, before canonicalisation.
type (
	tableRow struct {
		oid         uint32
		nsp, name   string
		partitioned bool
		partKey     string
		parent      uint32
		reltuples   float64
		bytes       int64
		pages       int32
	}
	columnRow struct {
		rel                      uint32
		name, typ                string
		notNull                  bool
		def, identity, generated string
	}
	indexRow struct {
		rel                    uint32
		name, def              string
		unique, primary, valid bool
		columns                []string
		constraint             string
	}
	constraintRow struct {
		rel             uint32
		name, typ, def  string
		valid           bool
		columns         []string
		refNsp, refName string
		refColumns      []string
	}
	triggerRow struct {
		rel       uint32
		name, def string
		tgtype    int16
	}
	viewRow struct {
		oid          uint32
		nsp, name    string
		materialized bool
		def          string
	}
	viewDepRow struct {
		view                    uint32
		refNsp, refName, column string
	}
	sequenceRow struct {
		nsp, name                       string
		ownerNsp, ownerRel, ownerColumn string
	}
)

type catalogRows struct {
	tables      []tableRow
	columns     []columnRow
	indexes     []indexRow
	constraints []constraintRow
	triggers    []triggerRow
	views       []viewRow
	viewDeps    []viewDepRow
	enums       []schema.Enum
	domains     []schema.Domain
	sequences   []sequenceRow
}

// userNamespace is the condition on a namespace alias n that keeps user
// schemas: not the system's, not cutover's own.
const userNamespace = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'cutover')
	AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`

// notExtensionMember is the condition that the object (classid, oid) does
// not belong to an extension.
func notExtensionMember(classid, oid string) string {
	return `NOT EXISTS (SELECT FROM pg_catalog.pg_depend e WHERE e.classid = '` + classid +
		`'::pg_catalog.regclass AND e.objid = ` + oid + ` AND e.deptype = 'e')`
}

// userRelation is the condition on pg_class alias c joined to namespace n
// that keeps the user's relations.
var userRelation = userNamespace + ` AND ` + notExtensionMember("pg_catalog.pg_class", "c.oid")

// catalogQueries returns the batch: one query per kind of object, each
// appending to r.
func catalogQueries(version int, r *catalogRows) []catalogQuery {
	generated := `a.attgenerated::text`
	if version < 120000 {
		generated = `''`
	}
	triggerClone := ``
	if version >= 130000 {
		triggerClone = ` AND t.tgparentid = 0`
	}
	return []catalogQuery{{
		what: "tables",
		sql: `SELECT c.oid, n.nspname, c.relname, c.relkind = 'p',
				COALESCE(pg_catalog.pg_get_partkeydef(c.oid), ''),
				COALESCE((SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition), 0),
				c.reltuples::float8, c.relpages,
				COALESCE(pg_catalog.pg_total_relation_size(c.oid), -1)
			FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p') AND ` + userRelation,
		scan: func(rows pgx.Rows) error {
			var t tableRow
			err := rows.Scan(&t.oid, &t.nsp, &t.name, &t.partitioned, &t.partKey, &t.parent, &t.reltuples, &t.pages, &t.bytes)
			r.tables = append(r.tables, t)
			return err
		},
	}, {
		what: "columns",
		sql: `SELECT a.attrelid, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
				COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text, ` + generated + `
			FROM pg_catalog.pg_attribute a
			JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
			WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND ` + userRelation + `
			ORDER BY a.attrelid, a.attnum`,
		scan: func(rows pgx.Rows) error {
			var c columnRow
			err := rows.Scan(&c.rel, &c.name, &c.typ, &c.notNull, &c.def, &c.identity, &c.generated)
			r.columns = append(r.columns, c)
			return err
		},
	}, {
		// Indexes of tables and materialized views. Indexes that are
		// partitions of a partitioned index are managed with their parent
		// and, like in a dump, not listed.
		what: "indexes",
		sql: `SELECT i.indrelid, ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid),
				i.indisunique, i.indisprimary, i.indisvalid,
				ARRAY(SELECT COALESCE(a.attname, '')
					FROM pg_catalog.generate_series(0, i.indnkeyatts - 1) k(pos)
					LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.pos]
					ORDER BY k.pos),
				COALESCE((SELECT con.conname FROM pg_catalog.pg_constraint con
					WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')), '')
			FROM pg_catalog.pg_index i
			JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
			JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p', 'm') AND NOT ic.relispartition AND ` + userRelation,
		scan: func(rows pgx.Rows) error {
			var x indexRow
			err := rows.Scan(&x.rel, &x.name, &x.def, &x.unique, &x.primary, &x.valid, &x.columns, &x.constraint)
			r.indexes = append(r.indexes, x)
			return err
		},
	}, {
		// Constraints a partition inherits from its parent (conparentid;
		// for CHECK, coninhcount, even when also declared locally, as a
		// dump restores it or an operator pre-creates it before ATTACH)
		// and CHECKs a child inherits (not conislocal) are the parent's;
		// NOT NULL is a column property.
		what: "constraints",
		sql: `SELECT con.conrelid, con.conname, con.contype::text, pg_catalog.pg_get_constraintdef(con.oid),
				con.convalidated,
				ARRAY(SELECT COALESCE(a.attname, '') FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
					LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
					ORDER BY k.ord),
				COALESCE(rn.nspname, ''), COALESCE(rc.relname, ''),
				ARRAY(SELECT a.attname FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
					JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
					ORDER BY k.ord)
			FROM pg_catalog.pg_constraint con
			JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
			LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
			WHERE con.contype IN ('p', 'u', 'c', 'f', 'x') AND con.conparentid = 0 AND con.conislocal
				AND NOT (c.relispartition AND con.coninhcount > 0)
				AND c.relkind IN ('r', 'p') AND ` + userRelation,
		scan: func(rows pgx.Rows) error {
			var x constraintRow
			err := rows.Scan(&x.rel, &x.name, &x.typ, &x.def, &x.valid, &x.columns, &x.refNsp, &x.refName, &x.refColumns)
			r.constraints = append(r.constraints, x)
			return err
		},
	}, {
		// Triggers a partition got from its parent's are the parent's.
		what: "triggers",
		sql: `SELECT t.tgrelid, t.tgname, pg_catalog.pg_get_triggerdef(t.oid), t.tgtype
			FROM pg_catalog.pg_trigger t
			JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE NOT t.tgisinternal` + triggerClone + ` AND c.relkind IN ('r', 'p') AND ` + userRelation,
		scan: func(rows pgx.Rows) error {
			var x triggerRow
			err := rows.Scan(&x.rel, &x.name, &x.def, &x.tgtype)
			r.triggers = append(r.triggers, x)
			return err
		},
	}, {
		what: "views",
		sql: `SELECT c.oid, n.nspname, c.relname, c.relkind = 'm', pg_catalog.pg_get_viewdef(c.oid)
			FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('v', 'm') AND ` + userRelation,
		scan: func(rows pgx.Rows) error {
			var v viewRow
			err := rows.Scan(&v.oid, &v.nsp, &v.name, &v.materialized, &v.def)
			r.views = append(r.views, v)
			return err
		},
	}, {
		// What a view reads is recorded as dependencies of its rewrite
		// rule: one per column it uses (refobjsubid > 0), or on the
		// whole relation when it uses no column of it.
		what: "view dependencies",
		sql: `SELECT DISTINCT r.ev_class, rn.nspname, rc.relname, COALESCE(a.attname, '')
			FROM pg_catalog.pg_rewrite r
			JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
				AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class
			JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid AND rc.relkind IN ('r', 'p', 'v', 'm', 'f')
			JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
			LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0
			WHERE c.relkind IN ('v', 'm') AND ` + userRelation,
		scan: func(rows pgx.Rows) error {
			var x viewDepRow
			err := rows.Scan(&x.view, &x.refNsp, &x.refName, &x.column)
			r.viewDeps = append(r.viewDeps, x)
			return err
		},
	}, {
		what: "enums",
		sql: `SELECT n.nspname, t.typname,
				ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
			FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
			WHERE t.typtype = 'e' AND ` + userNamespace + ` AND ` + notExtensionMember("pg_catalog.pg_type", "t.oid"),
		scan: func(rows pgx.Rows) error {
			var e schema.Enum
			err := rows.Scan(&e.Schema, &e.Name, &e.Values)
			r.enums = append(r.enums, e)
			return err
		},
	}, {
		what: "domains",
		sql: `SELECT n.nspname, t.typname, pg_catalog.format_type(t.typbasetype, t.typtypmod), t.typnotnull,
				ARRAY(SELECT pg_catalog.pg_get_constraintdef(con.oid) FROM pg_catalog.pg_constraint con
					WHERE con.contypid = t.oid AND con.contype = 'c' ORDER BY con.conname)
			FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
			WHERE t.typtype = 'd' AND ` + userNamespace + ` AND ` + notExtensionMember("pg_catalog.pg_type", "t.oid"),
		scan: func(rows pgx.Rows) error {
			var d schema.Domain
			err := rows.Scan(&d.Schema, &d.Name, &d.Type, &d.NotNull, &d.Checks)
			r.domains = append(r.domains, d)
			return err
		},
	}, {
		// OWNED BY is an automatic dependency of the sequence on the
		// column; an identity column's sequence depends on it internally.
		what: "sequences",
		sql: `SELECT n.nspname, c.relname, COALESCE(rn.nspname, ''), COALESCE(rc.relname, ''), COALESCE(a.attname, '')
			FROM pg_catalog.pg_class c
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
				AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
			LEFT JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid
			LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
			LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
			WHERE c.relkind = 'S' AND ` + userRelation,
		scan: func(rows pgx.Rows) error {
			var x sequenceRow
			err := rows.Scan(&x.nsp, &x.name, &x.ownerNsp, &x.ownerRel, &x.ownerColumn)
			r.sequences = append(r.sequences, x)
			return err
		},
	}}
}

// Trigger type bits of pg_trigger.tgtype (PostgreSQL's trigger.h).
const (
	tgBefore   = 1 << 1
	tgInsert   = 1 << 2
	tgDelete   = 1 << 3
	tgUpdate   = 1 << 4
	tgTruncate = 1 << 5
	tgInstead  = 1 << 6
)

// fill builds the model from the raw rows, canonicalising every definition.
func (r *catalogRows) fill(s *schema.Schema) error {
	canon := newCanonicaliser()
	tables := map[uint32]*schema.Table{}
	for _, row := range r.tables {
		t := &schema.Table{Schema: row.nsp, Name: row.name, Partitioned: row.partitioned,
			RowEstimate: int64(row.reltuples), Bytes: row.bytes}
		if row.reltuples < 0 || (s.ServerVersion < 140000 && row.reltuples == 0 && row.pages == 0) {
			// Never vacuumed or analyzed (before 14, reltuples was 0 then).
			t.RowEstimate = -1
		}
		if row.partitioned {
			var err error
			if t.PartitionKey, err = canon.partitionKey(row.partKey); err != nil {
				return fmt.Errorf("table %s: %w", t.Key(), err)
			}
		}
		tables[row.oid] = t
		s.Tables[t.Key()] = t
	}
	for _, row := range r.tables {
		if p := tables[row.parent]; p != nil && row.parent != 0 {
			t := tables[row.oid]
			t.PartitionOf = p.Key()
			p.Partitions = append(p.Partitions, t.Key())
		}
	}
	for _, t := range s.Tables {
		sort.Strings(t.Partitions)
	}
	sumPartitions(s)

	for _, row := range r.columns {
		t := tables[row.rel]
		if t == nil {
			continue
		}
		c := &schema.Column{Name: row.name, Type: row.typ, NotNull: row.notNull}
		switch row.identity {
		case "a":
			c.Identity = "always"
		case "d":
			c.Identity = "by default"
		}
		if row.def != "" {
			expr, err := canon.expr(row.def)
			if err != nil {
				return fmt.Errorf("table %s column %s: %w", t.Key(), row.name, err)
			}
			if row.generated == "s" {
				c.Generated = expr
			} else {
				c.Default = expr
			}
		}
		t.Columns = append(t.Columns, c)
	}

	views := map[uint32]*schema.View{}
	for _, row := range r.views {
		def, err := canon.query(row.def)
		if err != nil {
			return fmt.Errorf("view %s.%s: %w", row.nsp, row.name, err)
		}
		v := &schema.View{Schema: row.nsp, Name: row.name, Materialized: row.materialized, Definition: def}
		views[row.oid] = v
		s.Views[v.Key()] = v
	}
	for _, row := range r.indexes {
		def, err := canon.statement(row.def)
		if err != nil {
			return fmt.Errorf("index %s: %w", row.name, err)
		}
		ix := &schema.Index{Name: row.name, Columns: nilIfEmpty(row.columns),
			Unique: row.unique, Primary: row.primary, Valid: row.valid, Definition: def, Constraint: row.constraint}
		if t := tables[row.rel]; t != nil {
			t.Indexes = append(t.Indexes, ix)
		} else if v := views[row.rel]; v != nil {
			v.Indexes = append(v.Indexes, ix)
		}
	}

	for _, row := range r.constraints {
		t := tables[row.rel]
		if t == nil {
			continue
		}
		def, err := canon.constraint(row.def)
		if err != nil {
			return fmt.Errorf("constraint %s on %s: %w", row.name, t.Key(), err)
		}
		c := &schema.Constraint{Name: row.name, Columns: nilIfEmpty(row.columns), Definition: def, Valid: row.valid}
		switch row.typ {
		case "p":
			c.Type = schema.PrimaryKey
		case "u":
			c.Type = schema.Unique
		case "c":
			c.Type = schema.Check
		case "x":
			c.Type = schema.Exclusion
		case "f":
			c.Type = schema.ForeignKey
			c.RefTable = schema.Key(row.refNsp, row.refName)
			c.RefColumns = nilIfEmpty(row.refColumns)
		}
		t.Constraints = append(t.Constraints, c)
	}

	for _, row := range r.triggers {
		t := tables[row.rel]
		if t == nil {
			continue
		}
		tr, err := canon.trigger(row)
		if err != nil {
			return fmt.Errorf("trigger %s on %s: %w", row.name, t.Key(), err)
		}
		t.Triggers = append(t.Triggers, tr)
	}

	for _, row := range r.viewDeps {
		v := views[row.view]
		if v == nil {
			continue
		}
		rel := schema.Key(row.refNsp, row.refName)
		if row.column != "" {
			v.Uses = append(v.Uses, schema.ColumnRef{Relation: rel, Column: row.column})
		}
		v.DependsOn = append(v.DependsOn, rel)
	}
	for _, v := range s.Views {
		sort.Slice(v.Uses, func(i, j int) bool {
			a, b := v.Uses[i], v.Uses[j]
			if a.Relation != b.Relation {
				return a.Relation < b.Relation
			}
			return a.Column < b.Column
		})
		v.DependsOn = sortedUnique(v.DependsOn)
		sort.Slice(v.Indexes, func(i, j int) bool { return v.Indexes[i].Name < v.Indexes[j].Name })
	}

	for i := range r.enums {
		e := r.enums[i]
		e.Values = nilIfEmpty(e.Values)
		s.Enums[schema.Key(e.Schema, e.Name)] = &e
	}
	for i := range r.domains {
		d := r.domains[i]
		var checks []string
		for _, c := range d.Checks {
			cc, err := canon.constraint(c)
			if err != nil {
				return fmt.Errorf("domain %s.%s: %w", d.Schema, d.Name, err)
			}
			checks = append(checks, cc)
		}
		sort.Strings(checks)
		d.Checks = checks
		s.Domains[schema.Key(d.Schema, d.Name)] = &d
	}
	for _, row := range r.sequences {
		seq := &schema.Sequence{Schema: row.nsp, Name: row.name}
		if row.ownerColumn != "" {
			seq.OwnedBy = &schema.ColumnRef{Relation: schema.Key(row.ownerNsp, row.ownerRel), Column: row.ownerColumn}
		}
		s.Sequences[schema.Key(row.nsp, row.name)] = seq
	}

	for _, t := range s.Tables {
		sort.Slice(t.Indexes, func(i, j int) bool { return t.Indexes[i].Name < t.Indexes[j].Name })
		sort.Slice(t.Constraints, func(i, j int) bool { return t.Constraints[i].Name < t.Constraints[j].Name })
		sort.Slice(t.Triggers, func(i, j int) bool { return t.Triggers[i].Name < t.Triggers[j].Name })
	}
	return nil
}

// sumPartitions gives a partitioned table the sums of its partitions' row
// estimates and sizes (its own are 0 or unknown: it stores nothing). The
// estimate stays -1 if any partition's is unknown.
func sumPartitions(s *schema.Schema) {
	var visit func(t *schema.Table) (rows, bytes int64)
	visit = func(t *schema.Table) (int64, int64) {
		if !t.Partitioned {
			return t.RowEstimate, t.Bytes
		}
		var rows, bytes int64
		known := true
		for _, k := range t.Partitions {
			p := s.Tables[k]
			if p == nil {
				continue
			}
			r, b := visit(p)
			if r < 0 {
				known = false
			}
			rows += max(r, 0)
			bytes += max(b, 0)
		}
		if known {
			t.RowEstimate = rows
		} else {
			t.RowEstimate = -1
		}
		t.Bytes = max(t.Bytes, 0) + bytes
		return t.RowEstimate, t.Bytes
	}
	for _, t := range s.Tables {
		if t.Partitioned && t.PartitionOf == "" {
			visit(t)
		}
	}
}

// canonicaliser runs the schema package's canonical forms, remembering
// results: many columns share a default (now(), a literal).
type canonicaliser struct {
	exprs map[string]string
}

func newCanonicaliser() *canonicaliser {
	return &canonicaliser{exprs: map[string]string{}}
}

func (c *canonicaliser) expr(e string) (string, error) {
	if out, ok := c.exprs[e]; ok {
		return out, nil
	}
	out, err := schema.CanonicalExpr(e)
	if err != nil {
		return "", err
	}
	c.exprs[e] = out
	return out, nil
}

func (c *canonicaliser) statement(stmt string) (string, error) {
	return schema.CanonicalStatement(stmt)
}
func (c *canonicaliser) query(q string) (string, error) { return schema.CanonicalQuery(q) }
func (c *canonicaliser) constraint(def string) (string, error) {
	return schema.CanonicalConstraint(def)
}
func (c *canonicaliser) partitionKey(def string) (string, error) {
	return schema.CanonicalPartitionKey(def)
}

// trigger builds a Trigger: timing and events from tgtype, the function as
// pg_get_triggerdef names it (qualified unless in pg_catalog, as in a dump).
func (c *canonicaliser) trigger(row triggerRow) (*schema.Trigger, error) {
	def, err := schema.CanonicalStatement(row.def)
	if err != nil {
		return nil, err
	}
	tree, err := pg_query.Parse(row.def)
	if err != nil {
		return nil, err
	}
	ct := tree.Stmts[0].Stmt.GetCreateTrigStmt()
	if ct == nil {
		return nil, fmt.Errorf("pg_get_triggerdef is not a CREATE TRIGGER: %q", row.def)
	}
	var fn []string
	for _, n := range ct.Funcname {
		fn = append(fn, schema.QuoteIdent(n.GetString_().GetSval()))
	}
	tr := &schema.Trigger{Name: row.name, Timing: "AFTER", Function: strings.Join(fn, "."), Definition: def}
	switch {
	case row.tgtype&tgInstead != 0:
		tr.Timing = "INSTEAD OF"
	case row.tgtype&tgBefore != 0:
		tr.Timing = "BEFORE"
	}
	for _, ev := range []struct {
		bit  int16
		name string
	}{{tgInsert, "INSERT"}, {tgUpdate, "UPDATE"}, {tgDelete, "DELETE"}, {tgTruncate, "TRUNCATE"}} {
		if row.tgtype&ev.bit != 0 {
			tr.Events = append(tr.Events, ev.name)
		}
	}
	return tr, nil
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func sortedUnique(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return nilIfEmpty(out)
}
