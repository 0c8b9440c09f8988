package planner_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/plans"
)

// FuzzPlan feeds arbitrary SQL to the planner, with and without the pagila
// schema. Errors are fine; panics are not, and neither is an error of an
// unexpected type (users see every error as one line) or a plan that the
// renderers and the JSON encoding cannot handle.
//
//	go test ./planner -run XXX -fuzz FuzzPlan -fuzztime 5m
//
// Crashers found are kept in testdata/fuzz/FuzzPlan as regression seeds.
func FuzzPlan(f *testing.F) {
	for _, c := range goldenCases {
		f.Add(c.sql)
	}
	for _, s := range []string{
		"",
		";",
		";;;",
		"-- only a comment",
		"/* unterminated",
		"'unterminated",
		"$$",
		"$a$ x $b$",
		"\x00",
		"\xff\xfe",
		"BEGIN; COMMIT;",
		"SET lock_timeout = '1s'",
		"SELECT 1",
		"ALTER TABLE",
		`ALTER TABLE "" RENAME COLUMN "" TO ""`,
		"ALTER TABLE customer RENAME COLUMN email TO email",
		"ALTER TABLE customer RENAME COLUMN email TO first_name",
		"ALTER TABLE nope.customer RENAME COLUMN email TO x",
		"ALTER TABLE customer ADD COLUMN x int, DROP COLUMN x",
		"ALTER TABLE customer ALTER COLUMN email TYPE int USING email::int",
		"ALTER TABLE customer ALTER COLUMN email TYPE text COLLATE \"C\"",
		"ALTER TABLE ONLY customer ALTER COLUMN customer_id TYPE bigint",
		"ALTER TABLE IF EXISTS nope DROP COLUMN IF EXISTS x",
		"ALTER TABLE customer ADD COLUMN c int GENERATED ALWAYS AS (customer_id * 2) STORED",
		"ALTER TABLE customer ADD CONSTRAINT c CHECK (((((((((((1=1)))))))))))",
		"ALTER TABLE customer ADD FOREIGN KEY (store_id, address_id) REFERENCES store",
		"ALTER TABLE payment ADD CONSTRAINT p FOREIGN KEY (rental_id) REFERENCES rental (rental_id)",
		"ALTER TABLE payment ALTER COLUMN amount TYPE numeric(7,2)",
		"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON customer (lower(email)) WHERE active = 1",
		"DROP INDEX CONCURRENTLY IF EXISTS a, b",
		"DROP TABLE customer, film CASCADE",
		"UPDATE customer SET email = lower(email) FROM address WHERE customer.address_id = address.address_id RETURNING *",
		"WITH x AS (SELECT 1) DELETE FROM rental USING x",
		"DELETE FROM rental",
		"ALTER TYPE mpaa_rating ADD VALUE IF NOT EXISTS 'X' BEFORE 'G'",
		"CREATE TABLE \"Ünïcødé tåble\" (\"ß\" int)",
		"ALTER TABLE customer RENAME COLUMN email TO " + strings.Repeat("x", 100),
		strings.Repeat("ALTER TABLE customer ADD COLUMN c int;\n", 3),
		strings.Repeat("(", 1000),
	} {
		f.Add(s)
	}
	s := loadSchema(f, "pagila")
	f.Fuzz(func(t *testing.T, sql string) {
		for _, opts := range []planner.Options{{}, {Schema: s}} {
			p, err := planner.Plan(sql, opts)
			if err != nil {
				var se *planner.SyntaxError
				var ue *planner.UnsupportedError
				var ie *planner.InvalidError
				if !errors.As(err, &se) && !errors.As(err, &ue) && !errors.As(err, &ie) {
					t.Fatalf("error of type %T (want Syntax, Unsupported or Invalid): %v", err, err)
				}
				if strings.ContainsAny(err.Error(), "\n\r") {
					t.Fatalf("error is not one line: %q", err.Error())
				}
				continue
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("invalid plan: %v", err)
			}
			js, err := plans.Encode(p)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if _, err := plans.Decode(js); err != nil {
				t.Fatalf("decode own encoding: %v", err)
			}
			_ = plans.Markdown(p)
			_ = plans.Text(p)
		}
	})
}
