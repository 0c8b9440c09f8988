package planner

// The SET NOT NULL sequence, shared by SET NOT NULL, ADD COLUMN ... NOT NULL
// and the type change of a NOT NULL column.
//
// ALTER COLUMN c SET NOT NULL scans the whole table under ACCESS EXCLUSIVE
// to prove there is no NULL. Since PostgreSQL 12 it skips the scan when a
// validated CHECK (c IS NOT NULL) constraint already proves it, and a CHECK
// can be added NOT VALID (instant) and validated later under SHARE UPDATE
// EXCLUSIVE (reads and writes go on). So:
//
//	ADD CONSTRAINT chk CHECK (c IS NOT NULL) NOT VALID   ACCESS EXCLUSIVE, instant
//	VALIDATE CONSTRAINT chk                              SHARE UPDATE EXCLUSIVE, scans
//	SET NOT NULL; DROP CONSTRAINT chk                    ACCESS EXCLUSIVE, instant
//
// A NOT VALID check is enforced on every row written from then on, including
// an UPDATE of an old row that still holds NULL, which would then fail: the
// check is only added once no NULL is left (a pre-check gate, or after the
// backfill that fills the column).

import (
	"fmt"

	"github.com/cutover/cutover/plans"
)

// notNullCheckName names the helper CHECK of column col of table t.
func notNullCheckName(t relName, col string) string {
	return shortName(t.Name, col, "not_null")
}

// notNullPrecheck is a read-only step whose gate stops the plan while the
// column still holds NULLs.
func notNullPrecheck(t relName, col string) plans.Step {
	q := fmt.Sprintf("SELECT NOT EXISTS (SELECT 1 FROM %s WHERE %s IS NULL)", t.quoted(), ident(col))
	return precheck("check-no-nulls-"+col,
		fmt.Sprintf("Check that no row of %s has %s NULL", t, col), t, q,
		fmt.Sprintf("no row of %s has %s NULL; if some do, set a value in them (cutover plan an UPDATE ... WHERE %s IS NULL) and run the gate again", t, col, col),
		"reads the table until it finds a NULL (the whole table when there is none)")
}

// notNullCheckSteps returns the ADD CHECK ... NOT VALID and VALIDATE steps.
func notNullCheckSteps(t relName, col, check string) (add, validate plans.Step) {
	add = plans.Step{
		ID:            "add-not-null-check-" + col,
		Summary:       fmt.Sprintf("Add CHECK (%s IS NOT NULL) NOT VALID: enforced for new writes, existing rows not scanned", col),
		SQL:           fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID", t.quoted(), ident(check), ident(col)),
		Rollback:      dropConstraintSQL(t, check),
		Lock:          plans.LockAccessExclusive,
		Table:         t.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards:       []plans.Hazard{aeHazard("ADD CONSTRAINT ... NOT VALID")},
	}
	validate = plans.Step{
		ID:            "validate-not-null-check-" + col,
		Summary:       fmt.Sprintf("Validate CHECK (%s IS NOT NULL): scans the table while reads and writes go on", col),
		SQL:           validateConstraintSQL(t, check),
		Rollback:      noUndo("validation changes no data"),
		Lock:          plans.LockShareUpdateExclusive,
		Table:         t.String(),
		Transactional: true,
		Rewrite:       plans.ImpactScan,
		Hazards: []plans.Hazard{{Type: plans.HazardTableScan,
			Message: "scans the whole table under SHARE UPDATE EXCLUSIVE: reads and writes go on, other DDL and autovacuum wait"}},
	}
	return add, validate
}

// setNotNullSQL makes the column NOT NULL (no scan thanks to the validated
// check) and drops the check, which is redundant from then on.
func setNotNullSQL(t relName, col, check string) string {
	return fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;\nALTER TABLE %s DROP CONSTRAINT %s",
		t.quoted(), ident(col), t.quoted(), ident(check))
}

// setNotNullStep is the final, instant step of the sequence.
func setNotNullStep(b *builder, t relName, col, check string) plans.Step {
	s := plans.Step{
		ID:            "set-not-null-" + col,
		Summary:       fmt.Sprintf("SET NOT NULL on %s (no scan: the validated check proves it) and drop the check", col),
		SQL:           setNotNullSQL(t, col, check),
		Rollback:      fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL", t.quoted(), ident(col)),
		Lock:          plans.LockAccessExclusive,
		Table:         t.String(),
		Transactional: true,
		Rewrite:       plans.ImpactNone,
		Hazards:       []plans.Hazard{aeHazard("SET NOT NULL")},
	}
	if setNotNullScans(b) {
		s.Rewrite = plans.ImpactScan
		s.Hazards = append(s.Hazards, plans.Hazard{Type: plans.HazardTableScan,
			Message: "before PostgreSQL 12, SET NOT NULL scans the whole table under ACCESS EXCLUSIVE even with a validated check"})
	}
	return s
}

// setNotNullScans reports whether the server is known to be older than
// PostgreSQL 12, where SET NOT NULL always scans. An unknown version is
// assumed recent, and the assumption is recorded.
func setNotNullScans(b *builder) bool {
	v := 0
	if b.schema != nil {
		v = b.schema.ServerVersion
	}
	if v == 0 {
		b.assume("The server runs PostgreSQL 12 or later, where SET NOT NULL skips its table scan when a validated CHECK (c IS NOT NULL) proves it.")
		return false
	}
	if v < 120000 {
		b.warn("PostgreSQL %d.%d cannot use a validated CHECK to skip the scan of SET NOT NULL: that step scans the table under ACCESS EXCLUSIVE. Consider keeping the validated CHECK constraint instead of SET NOT NULL until the server is upgraded.", v/10000, v%10000/100)
		return true
	}
	return false
}
