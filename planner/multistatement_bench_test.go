package planner_test

import (
	"testing"

	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/schema"
)

// BenchmarkPlanMultiStatement1000Tables plans an input of several
// statements that build on each other against the parsed 1,000-table
// schema: each statement after the first costs a Snapshot of the schema
// and an Apply (multistatement.go).
func BenchmarkPlanMultiStatement1000Tables(b *testing.B) {
	s, err := schema.ParseDump("generated", genDump(1000))
	if err != nil {
		b.Fatal(err)
	}
	const sql = `ALTER TABLE t0500 ADD COLUMN nickname text DEFAULT '';
ALTER TABLE t0500 ALTER COLUMN nickname SET NOT NULL;
CREATE TABLE t9999 (id bigint PRIMARY KEY, t0500_id integer);
CREATE INDEX ON t9999 (t0500_id);
ALTER TABLE t9999 ADD FOREIGN KEY (t0500_id) REFERENCES t0500 (id);
ALTER TABLE t0501 RENAME COLUMN email TO email_address;
CREATE INDEX ON t0501 (email_address);
DROP VIEW t0491_with_parent;
DROP TABLE t0491 CASCADE`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := planner.Plan(sql, planner.Options{Schema: s}); err != nil {
			b.Fatal(err)
		}
	}
}
