// Package schema holds the schema model the planner plans against, filled
// either offline from a schema dump (ParseDump) or live from a database's
// catalogs (package db). Both fill it in the same canonical form, so two
// models of the same database compare equal:
//
//   - names are unquoted and case-exact ("Order Items", not "\"Order Items\"");
//   - a table's key in Schema.Tables is "schema.name" (see Key);
//   - column types are written as PostgreSQL's format_type writes them with
//     an empty search_path: "integer", "character varying(45)",
//     "numeric(4,2)", "timestamp with time zone", "public.mpaa_rating",
//     "text[]";
//   - expressions (defaults, CHECK bodies, index and view definitions) are
//     in pg_query's deparsed form (see Canonical* in canonical.go).
package schema

import (
	"sort"
	"strings"
)

// Schema is a database's schema, or the part of it a dump holds.
type Schema struct {
	// ServerVersion as server_version_num (e.g. 150004); 0 when unknown.
	ServerVersion int `json:"server_version"`
	// Source says where the model came from, for plans to cite.
	Source  string             `json:"source"`
	Tables  map[string]*Table  `json:"tables"`
	Views   map[string]*View   `json:"views"`
	Enums   map[string]*Enum   `json:"enums"`
	Domains map[string]*Domain `json:"domains"`
	// Sequences maps a sequence's key to the column owning it ("" if none).
	Sequences map[string]*Sequence `json:"sequences"`
}

// New returns an empty schema ready to be filled.
func New(source string) *Schema {
	return &Schema{
		Source:    source,
		Tables:    map[string]*Table{},
		Views:     map[string]*View{},
		Enums:     map[string]*Enum{},
		Domains:   map[string]*Domain{},
		Sequences: map[string]*Sequence{},
	}
}

// Key is the map key of a relation: "schema.name", unquoted.
func Key(schemaName, name string) string { return schemaName + "." + name }

// Table is an ordinary or partitioned table, or a partition.
type Table struct {
	Schema  string    `json:"schema"`
	Name    string    `json:"name"`
	Columns []*Column `json:"columns"`
	// Indexes include those backing PRIMARY KEY and UNIQUE constraints.
	Indexes     []*Index      `json:"indexes"`
	Constraints []*Constraint `json:"constraints"`
	Triggers    []*Trigger    `json:"triggers"`
	// Partitioned is set on a partitioned parent; PartitionKey is its
	// "PARTITION BY" clause, e.g. "RANGE (payment_date)".
	Partitioned  bool   `json:"partitioned"`
	PartitionKey string `json:"partition_key,omitempty"`
	// PartitionOf is the key of the parent when this table is a partition.
	PartitionOf string `json:"partition_of,omitempty"`
	// Partitions lists the keys of the partitions, sorted.
	Partitions []string `json:"partitions,omitempty"`
	// RowEstimate and Bytes are -1 when unknown (a dump does not say).
	RowEstimate int64 `json:"row_estimate"`
	Bytes       int64 `json:"bytes"`
}

// Key returns the table's map key.
func (t *Table) Key() string { return Key(t.Schema, t.Name) }

// Column is one table column.
type Column struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	NotNull bool   `json:"not_null"`
	// Default is the default expression, "" for none.
	Default string `json:"default,omitempty"`
	// Identity is "always", "by default" or "".
	Identity string `json:"identity,omitempty"`
	// Generated is the expression of a stored generated column, "" for none.
	Generated string `json:"generated,omitempty"`
}

// Index is one index of a table.
type Index struct {
	Name string `json:"name"`
	// Columns lists the indexed columns in order; an expression is listed
	// as "" (its definition says what it is).
	Columns []string `json:"columns"`
	Unique  bool     `json:"unique"`
	Primary bool     `json:"primary"`
	// Valid is false for an index left INVALID by a failed concurrent build.
	Valid bool `json:"valid"`
	// Definition is the canonical CREATE INDEX statement.
	Definition string `json:"definition"`
	// Constraint names the constraint the index backs, "" when none.
	Constraint string `json:"constraint,omitempty"`
}

// ConstraintType is the kind of a table constraint.
type ConstraintType string

const (
	PrimaryKey ConstraintType = "PRIMARY KEY"
	Unique     ConstraintType = "UNIQUE"
	Check      ConstraintType = "CHECK"
	ForeignKey ConstraintType = "FOREIGN KEY"
	Exclusion  ConstraintType = "EXCLUDE"
)

// Constraint is a table constraint declared on the table itself; copies a
// partition inherits from its parent are not listed (pg_constraint rows with
// conparentid set), as a dump does not list them either. NOT NULL is a
// column property, not a constraint, as in PostgreSQL 15.
type Constraint struct {
	Name    string         `json:"name"`
	Type    ConstraintType `json:"type"`
	Columns []string       `json:"columns"`
	// Definition is the canonical constraint clause as it would follow
	// "ADD CONSTRAINT name", e.g. "CHECK (x > 0)" or
	// "FOREIGN KEY (a) REFERENCES public.t (id) ON DELETE CASCADE".
	Definition string `json:"definition"`
	// Valid is false for a NOT VALID constraint not yet validated.
	Valid bool `json:"valid"`
	// RefTable and RefColumns are set for foreign keys.
	RefTable   string   `json:"ref_table,omitempty"`
	RefColumns []string `json:"ref_columns,omitempty"`
}

// Trigger is a user trigger on a table.
type Trigger struct {
	Name string `json:"name"`
	// Timing is BEFORE, AFTER or INSTEAD OF.
	Timing string `json:"timing"`
	// Events are INSERT, UPDATE, DELETE, TRUNCATE, in that order.
	Events []string `json:"events"`
	// Function is the qualified function the trigger executes.
	Function string `json:"function"`
	// Definition is the canonical CREATE TRIGGER statement.
	Definition string `json:"definition"`
}

// FiresOn reports whether the trigger fires on the event ("UPDATE").
func (t *Trigger) FiresOn(event string) bool {
	for _, e := range t.Events {
		if e == event {
			return true
		}
	}
	return false
}

// View is a view or materialized view.
type View struct {
	Schema       string `json:"schema"`
	Name         string `json:"name"`
	Materialized bool   `json:"materialized"`
	// Definition is the canonical SELECT the view is defined by.
	Definition string `json:"definition"`
	// Uses lists the table and view columns the view reads, sorted.
	Uses []ColumnRef `json:"uses"`
	// DependsOn lists the keys of the tables and views it reads, sorted.
	DependsOn []string `json:"depends_on"`
	// Indexes are the indexes of a materialized view, sorted by name.
	Indexes []*Index `json:"indexes,omitempty"`
}

// Key returns the view's map key.
func (v *View) Key() string { return Key(v.Schema, v.Name) }

// ColumnRef names a column of a relation.
type ColumnRef struct {
	Relation string `json:"relation"` // key of the table or view
	Column   string `json:"column"`
}

// Enum is an enumerated type.
type Enum struct {
	Schema string   `json:"schema"`
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// Domain is a domain type.
type Domain struct {
	Schema  string `json:"schema"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	NotNull bool   `json:"not_null"`
	// Checks are the canonical CHECK clauses.
	Checks []string `json:"checks,omitempty"`
}

// Sequence is a sequence and the column that owns it, if any.
type Sequence struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	// OwnedBy is the owning column, nil when none.
	OwnedBy *ColumnRef `json:"owned_by,omitempty"`
}

// Table returns the table with the given schema and name, or nil.
func (s *Schema) Table(schemaName, name string) *Table {
	if s == nil {
		return nil
	}
	return s.Tables[Key(schemaName, name)]
}

// Column returns the named column, or nil.
func (t *Table) Column(name string) *Column {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// PrimaryKey returns the table's primary key constraint, or nil.
func (t *Table) PrimaryKey() *Constraint {
	for _, c := range t.Constraints {
		if c.Type == PrimaryKey {
			return c
		}
	}
	return nil
}

// Index returns the named index, or nil.
func (t *Table) Index(name string) *Index {
	for _, ix := range t.Indexes {
		if ix.Name == name {
			return ix
		}
	}
	return nil
}

// Constraint returns the named constraint, or nil.
func (t *Table) Constraint(name string) *Constraint {
	for _, c := range t.Constraints {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// BatchKey returns the columns of the primary key, else of the first
// (by name) valid unique non-partial index over NOT NULL plain columns;
// nil when the table has no key usable for keyset batching.
func (t *Table) BatchKey() []string {
	if pk := t.PrimaryKey(); pk != nil {
		return pk.Columns
	}
	var best *Index
	for _, ix := range t.Indexes {
		if !ix.Unique || !ix.Valid || len(ix.Columns) == 0 {
			continue
		}
		usable := true
		for _, c := range ix.Columns {
			col := t.Column(c)
			if c == "" || col == nil || !col.NotNull {
				usable = false
				break
			}
		}
		if usable && !ix.partial() && (best == nil || ix.Name < best.Name) {
			best = ix
		}
	}
	if best == nil {
		return nil
	}
	return best.Columns
}

// partial reports whether the index has a WHERE clause; Definition is
// canonical, so " WHERE " appears only there.
func (ix *Index) partial() bool {
	return strings.Contains(ix.Definition, " WHERE ")
}

// TriggersOn returns the names of the table's triggers that fire on event,
// sorted.
func (t *Table) TriggersOn(event string) []string {
	var out []string
	for _, tr := range t.Triggers {
		if tr.FiresOn(event) {
			out = append(out, tr.Name)
		}
	}
	sort.Strings(out)
	return out
}

// ReferencingForeignKeys returns the foreign keys of every table that
// reference table key, as (referencing table, constraint) pairs, sorted by
// table then constraint name. Foreign keys a partition inherits from its
// parent are not in the model (only the parent's is), but a foreign key
// declared on a partition itself is, and is returned.
func (s *Schema) ReferencingForeignKeys(key string) []FKRef {
	var out []FKRef
	for _, t := range s.Tables {
		for _, c := range t.Constraints {
			if c.Type == ForeignKey && c.RefTable == key {
				out = append(out, FKRef{Table: t, Constraint: c})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Table.Key() != out[j].Table.Key() {
			return out[i].Table.Key() < out[j].Table.Key()
		}
		return out[i].Constraint.Name < out[j].Constraint.Name
	})
	return out
}

// FKRef is a foreign key together with the table that holds it.
type FKRef struct {
	Table      *Table
	Constraint *Constraint
}

// ViewsUsingColumn returns the views that read the column, directly or
// through other views, in an order safe to drop (dependents first).
func (s *Schema) ViewsUsingColumn(relKey, column string) []*View {
	direct := map[string]bool{}
	for k, v := range s.Views {
		for _, u := range v.Uses {
			if u.Relation == relKey && u.Column == column {
				direct[k] = true
			}
		}
	}
	return s.withDependentViews(direct)
}

// ViewsUsingRelation returns the views that read the relation, directly or
// through other views, in an order safe to drop (dependents first).
func (s *Schema) ViewsUsingRelation(relKey string) []*View {
	direct := map[string]bool{}
	for k, v := range s.Views {
		for _, d := range v.DependsOn {
			if d == relKey {
				direct[k] = true
			}
		}
	}
	return s.withDependentViews(direct)
}

// withDependentViews closes the set over views that depend on views in it
// and orders it dependents first (drop order); reverse it to recreate.
func (s *Schema) withDependentViews(set map[string]bool) []*View {
	for changed := true; changed; {
		changed = false
		for k, v := range s.Views {
			if set[k] {
				continue
			}
			for _, d := range v.DependsOn {
				if set[d] {
					set[k] = true
					changed = true
					break
				}
			}
		}
	}
	// Topological order: a view comes before every view it depends on.
	var order []*View
	done := map[string]bool{}
	var visit func(k string)
	visit = func(k string) {
		if done[k] {
			return
		}
		done[k] = true
		// Visit dependents first so they are dropped first.
		var deps []string
		for k2, v2 := range s.Views {
			if !set[k2] {
				continue
			}
			for _, d := range v2.DependsOn {
				if d == k {
					deps = append(deps, k2)
				}
			}
		}
		sort.Strings(deps)
		for _, d := range deps {
			visit(d)
		}
		order = append(order, s.Views[k])
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		visit(k)
	}
	// visit appends a view after its dependents: that is drop order already
	// for each chain; dependents were appended before the view itself.
	return order
}
