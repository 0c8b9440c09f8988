package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover/cutover/migrations"
)

// BenchmarkCheck1000Files measures the check path of cutover check over a
// directory of 1,000 migration files (the goal: under 1 s): finding and
// reading the files, then checking them as one migration set.
//
//	go test ./cli -run XXX -bench Check1000Files
func BenchmarkCheck1000Files(b *testing.B) {
	dir := b.TempDir()
	for i := 1; i <= 1000; i++ {
		sql := fmt.Sprintf(`-- Migration %d
SET lock_timeout = '2s';
CREATE TABLE items_%d (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX items_%d_name_idx ON items_%d (name);
ALTER TABLE items_%d ADD COLUMN price numeric(10,2);
ALTER TABLE orders ADD COLUMN note_%d text;
CREATE INDEX orders_note_%d_idx ON orders (note_%d);
UPDATE orders SET note_%d = 'n/a' WHERE note_%d IS NULL;
`, i, i, i, i, i, i, i, i, i, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%06d_change.up.sql", i)), []byte(sql), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		files, err := migrations.Load([]string{dir})
		if err != nil {
			b.Fatal(err)
		}
		rep, err := check(files, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Files != 1000 || len(rep.Findings) != 2000 {
			b.Fatalf("%d files, %d findings", rep.Files, len(rep.Findings))
		}
	}
}
