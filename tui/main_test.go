package tui

import (
	"testing"

	"github.com/cutover/cutover/db/dbtest"
)

// The tests that need a database (the run screen, the live panes) get a
// real PostgreSQL server from db/dbtest: a throwaway cluster per test
// binary, started on first use.
func TestMain(m *testing.M) { dbtest.Main(m) }
