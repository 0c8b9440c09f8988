package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Table is a target table, resolved in the catalog.
type Table struct {
	// Name is schema.table, as the monitor shows it.
	Name string
	// OID is the table's pg_class oid.
	OID uint32
	// Children are the oids of its partitions and inheritance children, at
	// any depth: a statement on the table locks them too.
	Children []uint32
	// Key is the columns of its primary key, else of its narrowest valid
	// non-partial unique index on plain columns; nil when it has neither.
	// The canary probe reads one row by it.
	Key []string

	ident pgx.Identifier
}

// ErrUnknownTable is wrapped by the error of a target table that does not
// exist or is not a table.
var ErrUnknownTable = errors.New("unknown table")

// resolveSQL reads one target: $1 is the name as the user wrote it
// (to_regclass parses it the way SQL does: unquoted parts fold to lower
// case, the search_path applies).
const resolveSQL = `
SELECT c.oid, n.nspname, c.relname, c.relkind::text,
	ARRAY(
		WITH RECURSIVE tree(oid) AS (
			SELECT c.oid
			UNION
			SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid
		)
		SELECT oid FROM tree WHERE oid <> c.oid
	),
	(SELECT ARRAY(
			SELECT a.attname::text
			FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
			WHERE k.ord <= i.indnkeyatts
			ORDER BY k.ord)
		FROM pg_catalog.pg_index i
		WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
			AND i.indpred IS NULL AND i.indexprs IS NULL
		ORDER BY i.indisprimary DESC, i.indnkeyatts, i.indexrelid
		LIMIT 1)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_catalog.to_regclass($1)`

// resolveTables looks the target tables up. keys optionally gives a table's
// key columns (by the name as given, or schema.table), overriding the one
// read from pg_index. A name that is not a table is an error wrapping
// ErrUnknownTable.
func resolveTables(ctx context.Context, conn *pgx.Conn, names []string, keys map[string][]string) ([]Table, error) {
	if len(names) == 0 {
		return nil, errors.New("no table to watch")
	}
	var out []Table
	seen := map[uint32]bool{}
	for _, name := range names {
		var (
			t       Table
			nsp     string
			rel     string
			relkind string
		)
		err := conn.QueryRow(ctx, resolveSQL, name).Scan(&t.OID, &nsp, &rel, &relkind, &t.Children, &t.Key)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("%w %q: no such table in database %s (check the name and its schema)", ErrUnknownTable, name, conn.Config().Database)
		}
		if err != nil {
			return nil, fmt.Errorf("looking up table %q: %w", name, err)
		}
		if relkind != "r" && relkind != "p" {
			return nil, fmt.Errorf("%w %q: %s.%s is a %s, not a table", ErrUnknownTable, name, nsp, rel, relkindName(relkind))
		}
		if seen[t.OID] {
			continue
		}
		seen[t.OID] = true
		t.Name = nsp + "." + rel
		t.ident = pgx.Identifier{nsp, rel}
		if k, ok := keys[name]; ok {
			t.Key = k
		} else if k, ok := keys[t.Name]; ok {
			t.Key = k
		}
		if len(t.Key) == 0 {
			t.Key = nil
		}
		out = append(out, t)
	}
	return out, nil
}

func relkindName(k string) string {
	switch k {
	case "v":
		return "view"
	case "m":
		return "materialized view"
	case "i", "I":
		return "index"
	case "S":
		return "sequence"
	case "f":
		return "foreign table"
	case "c":
		return "composite type"
	case "t":
		return "TOAST table"
	}
	return "relation of kind " + k
}

// quoted returns the table's name quoted for SQL.
func (t Table) quoted() string { return t.ident.Sanitize() }

// keyList returns the key columns quoted and comma-separated.
func (t Table) keyList() string {
	cols := make([]string, len(t.Key))
	for i, c := range t.Key {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(cols, ", ")
}
