package tui

import (
	"context"
	"fmt"
	"sync"

	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/plans"
	"github.com/cutover/cutover/schema"
)

// Backend is everything the TUI needs from the outside world. The TUI
// never runs SQL or opens a connection itself: it calls a Backend from
// tea.Cmds, off the UI loop, so no keypress ever waits on it.
//
// OfflineBackend plans against a schema dump. A live backend (planning
// against db.Introspect, applying with db.Engine, sampling with
// db/monitor) implements the same interface in a package that may import
// db; the run screen and the live panes will extend it.
type Backend interface {
	// Source says what the backend plans against, for the header:
	// "pagila sample", "schema file schema.sql", "postgres://app@db/shop".
	Source() string
	// Connected reports whether there is a live database; the locks and
	// latency panes say "not connected" when there is none.
	Connected() bool
	// Plan plans sql. Its errors are the planner's (*planner.SyntaxError,
	// *planner.UnsupportedError, *planner.InvalidError) or a failure to
	// load the schema.
	Plan(ctx context.Context, sql string) (*plans.Plan, error)
	// Schema returns the schema plans are made against, for the compose
	// screen's schema panel (and the guided form). The TUI never modifies
	// it.
	Schema(ctx context.Context) (*schema.Schema, error)
}

// OfflineBackend plans against a schema dump (pg_dump --schema-only
// output), parsed once on first use. It has no database.
type OfflineBackend struct {
	source string
	dump   string

	once   sync.Once
	schema *schema.Schema
	err    error
}

// NewOfflineBackend returns a backend planning against dump; source names
// it in plans and in the header ("schema file schema.sql").
func NewOfflineBackend(source, dump string) *OfflineBackend {
	return &OfflineBackend{source: source, dump: dump}
}

// Source implements Backend.
func (b *OfflineBackend) Source() string { return b.source }

// Connected implements Backend: an offline backend never is.
func (b *OfflineBackend) Connected() bool { return false }

// Schema implements Backend: the parsed dump (parsed on first use).
func (b *OfflineBackend) Schema(ctx context.Context) (*schema.Schema, error) {
	b.once.Do(func() {
		s, err := schema.ParseDump(b.source, b.dump)
		if err != nil {
			b.err = fmt.Errorf("cannot read the schema: %w", err)
			return
		}
		s.Source = b.source
		b.schema = s
	})
	return b.schema, b.err
}

// Plan implements Backend. The schema is shared between calls: the
// planner never modifies the schema it is given.
func (b *OfflineBackend) Plan(ctx context.Context, sql string) (*plans.Plan, error) {
	s, err := b.Schema(ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return planner.Plan(sql, planner.Options{Schema: s})
}
