package planner

import (
	"fmt"
	"strings"
)

// The rules: what `cutover check` reports, and the one list of them.
//
// A rule names one way a migration statement, run as written, hurts a
// running application. The planner and the checker share this registry:
// each operation's naive() (in its op_*.go file, next to its plan()) says
// which rule its naive statement breaks, from the same facts its plan is
// made of; the rules about sequences of statements (transactions,
// lock_timeout) live in the checker (check_context.go) and take their IDs
// from here too. The README's rules table is generated from Rules
// (RulesMarkdown; see rules_test.go).
//
// IDs are stable: a rule is never renumbered, and a retired rule's ID is
// never reused. CUT0xx are statement rules, CUT1xx rules about statement
// sequences, CUT9xx rules about cutover's own comments.

// Rule is one kind of unsafe migration statement.
type Rule struct {
	// ID is the stable identifier (CUT001), used in suppressions.
	ID string `json:"id"`
	// Name is a short slug (rename-column).
	Name string `json:"name"`
	// Catches says which statements the rule reports.
	Catches string `json:"catches"`
	// Why says what goes wrong when such a statement runs as written.
	Why string `json:"why"`
	// Do says what to do instead, in one line.
	Do string `json:"do"`
}

// Rule IDs, for the code that reports them.
const (
	RuleRenameColumn       = "CUT001"
	RuleRenameRelation     = "CUT002"
	RuleDropColumn         = "CUT003"
	RuleDropTable          = "CUT004"
	RuleDropView           = "CUT005"
	RuleChangeType         = "CUT006"
	RuleAddColumnRewrite   = "CUT007"
	RuleAddColumnNotNull   = "CUT008"
	RuleSetNotNull         = "CUT009"
	RuleAddCheck           = "CUT010"
	RuleAddForeignKey      = "CUT011"
	RuleAddUnique          = "CUT012"
	RuleCreateIndex        = "CUT013"
	RuleDropIndex          = "CUT014"
	RuleDropDefaultNotNull = "CUT015"
	RuleBulkDML            = "CUT016"
	RuleRewrite            = "CUT017"
	RuleConcurrentlyInTx   = "CUT101"
	RuleValidateSameTx     = "CUT102"
	RuleLockTimeout        = "CUT103"
	RuleIgnoreComment      = "CUT901"
)

const (
	ignoreDirective         = "cutover:ignore"
	ignoreDirectiveExample  = "-- cutover:ignore CUT001 <why it is safe here>"
	lockTimeoutSuggestion   = "SET lock_timeout = '2s'"
	rulesDocumentationBegin = "<!-- rules:begin -->"
	rulesDocumentationEnd   = "<!-- rules:end -->"
)

// Rules lists every rule, in ID order.
var Rules = []Rule{
	{RuleRenameColumn, "rename-column",
		"`ALTER TABLE ... RENAME COLUMN` on an existing table",
		"Instant, but every running release that still uses the old name fails from the moment it commits until the new release is out everywhere.",
		"Rename in the application only (an ORM alias), or add the new column, keep both in sync with a trigger, backfill, release, then swap (`cutover plan` writes it)."},
	{RuleRenameRelation, "rename-relation",
		"`ALTER TABLE / VIEW / SEQUENCE ... RENAME TO` of an existing table, view or sequence",
		"Every running release that still uses the old name fails until the new release is out everywhere.",
		"Rename the table and create an updatable view under the old name in one transaction; drop the view once nothing uses the old name (`cutover plan`)."},
	{RuleDropColumn, "drop-column",
		"`ALTER TABLE ... DROP COLUMN`",
		"Running releases that still read or write the column (or `SELECT *` into a model that expects it) fail at once, and its data is gone: there is no rollback.",
		"Release the application that no longer uses the column first, then drop it in a later migration."},
	{RuleDropTable, "drop-table",
		"`DROP TABLE` of an existing table",
		"Running releases that use the table fail, and its rows are gone with no way back but a restore.",
		"Release the application that stops using it; rename it aside, wait, then drop it in a later migration (`cutover plan`)."},
	{RuleDropView, "drop-view",
		"`DROP VIEW` and `DROP MATERIALIZED VIEW`",
		"Running releases that query the view fail from then on.",
		"Release the application that stops using the view first, then drop it in a later migration."},
	{RuleChangeType, "change-column-type",
		"`ALTER COLUMN ... TYPE` that is not binary-coercible (anything but widening `varchar(n)`, `varchar` to `text`, raising `numeric` precision at the same scale, and the like)",
		"Rewrites the whole table and rebuilds every index on it under ACCESS EXCLUSIVE: no read or write of the table until it ends. Without a schema cutover cannot tell a binary-coercible change and reports every type change.",
		"Add a column of the new type, sync it with a trigger, backfill in batches, build its indexes concurrently, then swap in one short transaction (`cutover plan`)."},
	{RuleAddColumnRewrite, "add-column-rewrite",
		"`ADD COLUMN` that fills every existing row: a volatile default (`gen_random_uuid()`, `clock_timestamp()`, `random()`, `nextval()`), `serial`, identity, `GENERATED ... STORED`, a domain with constraints, any default before PostgreSQL 11",
		"Rewrites the whole table under ACCESS EXCLUSIVE: no read or write of the table until it ends.",
		"Add the column without a default, `SET DEFAULT` for new rows, then backfill existing rows in batches (`cutover plan`)."},
	{RuleAddColumnNotNull, "add-column-not-null",
		"`ADD COLUMN ... NOT NULL` without a default on an existing table",
		"Fails on any table that has rows: every existing row would hold NULL.",
		"Add the column nullable (or with a constant default), fill it, then make it NOT NULL with the CUT009 sequence."},
	{RuleSetNotNull, "set-not-null",
		"`ALTER COLUMN ... SET NOT NULL` with no validated `CHECK (col IS NOT NULL)` to prove it",
		"Scans the whole table under ACCESS EXCLUSIVE to look for NULLs: no read or write of the table meanwhile.",
		"`ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID`; `VALIDATE CONSTRAINT c` in a later transaction; then `SET NOT NULL` (no scan since PostgreSQL 12) and drop c."},
	{RuleAddCheck, "add-check",
		"`ADD CHECK` without `NOT VALID` on an existing table",
		"Scans the whole table under ACCESS EXCLUSIVE to check every row.",
		"`ADD CONSTRAINT ... CHECK (...) NOT VALID`, then `VALIDATE CONSTRAINT` in a later transaction (SHARE UPDATE EXCLUSIVE: reads and writes go on)."},
	{RuleAddForeignKey, "add-foreign-key",
		"`ADD FOREIGN KEY` (or `REFERENCES` on a new column) without `NOT VALID` on an existing table",
		"Takes SHARE ROW EXCLUSIVE on both tables while it checks every row: writes to both wait for the whole scan.",
		"Index the referencing columns concurrently, `ADD ... NOT VALID`, then `VALIDATE CONSTRAINT` in a later transaction."},
	{RuleAddUnique, "add-unique",
		"`ADD UNIQUE` / `ADD PRIMARY KEY` that builds its index (no `USING INDEX`), or a primary key on nullable columns",
		"Builds the unique index under ACCESS EXCLUSIVE (a primary key also scans for NULLs): no read or write of the table meanwhile.",
		"`CREATE UNIQUE INDEX CONCURRENTLY`, then `ADD CONSTRAINT ... UNIQUE / PRIMARY KEY USING INDEX` (instant)."},
	{RuleCreateIndex, "create-index",
		"`CREATE INDEX` without `CONCURRENTLY` on an existing table",
		"Holds a SHARE lock for the whole build: every INSERT, UPDATE and DELETE on the table waits until the index is built.",
		"`CREATE INDEX CONCURRENTLY`, alone, outside a transaction block."},
	{RuleDropIndex, "drop-index",
		"`DROP INDEX` without `CONCURRENTLY`",
		"Takes ACCESS EXCLUSIVE on the index's table: queued behind a long transaction, it blocks every query on the table while it waits.",
		"`DROP INDEX CONCURRENTLY`, outside a transaction block."},
	{RuleDropDefaultNotNull, "drop-default-not-null",
		"`ALTER COLUMN ... DROP DEFAULT` of a NOT NULL column (known from `--schema` or `--db`)",
		"Every INSERT of a running release that leaves the column out fails from then on.",
		"Release the application that always writes the column first, then drop the default in a later migration."},
	{RuleBulkDML, "bulk-dml",
		"`UPDATE` or `DELETE` of an existing table in a migration",
		"One transaction locks every row it changes until it commits, writes all its WAL at once (replica lag) and rolls everything back if it fails late.",
		"Run it in keyset batches of short transactions, outside the schema migration (`cutover plan` batches it)."},
	{RuleRewrite, "rewrite",
		"`VACUUM FULL`, `CLUSTER`, `REINDEX` and `REFRESH MATERIALIZED VIEW` without `CONCURRENTLY`, `SET TABLESPACE`",
		"Rewrites a table, index or materialized view while holding a lock that blocks its reads or writes for the whole rewrite.",
		"`REINDEX ... CONCURRENTLY`, `REFRESH MATERIALIZED VIEW CONCURRENTLY`; an online tool such as pg_repack for bloat."},
	{RuleConcurrentlyInTx, "concurrently-in-transaction",
		"`CREATE / DROP INDEX CONCURRENTLY`, `REINDEX CONCURRENTLY`, `DETACH PARTITION CONCURRENTLY` or `VACUUM` in a transaction block: an explicit `BEGIN`, or the migration tool's own (goose and dbmate by default, Flyway next to other statements, golang-migrate for a file of several statements)",
		"PostgreSQL refuses it (\"cannot run inside a transaction block\"): the migration fails.",
		"Give it a migration of its own that runs outside a transaction (`-- +goose NO TRANSACTION`, `-- migrate:up transaction:false`, one statement per golang-migrate file)."},
	{RuleValidateSameTx, "validate-in-same-transaction",
		"`ADD CONSTRAINT ... NOT VALID` followed by `VALIDATE CONSTRAINT` in the same transaction",
		"The lock of the ADD (ACCESS EXCLUSIVE; SHARE ROW EXCLUSIVE for a foreign key) is held until commit, so the validation scan runs under it: NOT VALID gains nothing.",
		"Commit in between: `VALIDATE CONSTRAINT` in a later migration."},
	{RuleLockTimeout, "lock-timeout",
		"A statement that takes ACCESS EXCLUSIVE (or another lock that blocks writes) on an existing table with no `SET lock_timeout` before it in the file (`SET LOCAL` counts in its transaction)",
		"Waiting for its lock behind any long transaction, it makes every later query on the table wait behind it: an outage, even for an instant change.",
		"`" + lockTimeoutSuggestion + "` (or `SET LOCAL` in the migration's transaction) at the top of the migration, and retry when it times out."},
	{RuleIgnoreComment, "ignore-comment",
		"A `-- cutover:ignore` comment without a reason, naming an unknown rule, or not on the line right before a statement",
		"A suppression must tell the reviewer why the risk is accepted; one that names no known rule, or stands where it applies to no statement, suppresses nothing.",
		"`" + ignoreDirectiveExample + "` on the line right before the statement."},
}

var rulesByID = func() map[string]*Rule {
	m := make(map[string]*Rule, len(Rules))
	for i := range Rules {
		m[Rules[i].ID] = &Rules[i]
	}
	return m
}()

// RuleByID returns the rule with that ID, or nil.
func RuleByID(id string) *Rule { return rulesByID[id] }

// RulesMarkdown is the rules table of the README, generated from Rules.
func RulesMarkdown() string {
	var sb strings.Builder
	sb.WriteString("| id | name | catches | why | do instead |\n|---|---|---|---|---|\n")
	cell := strings.NewReplacer("|", `\|`, "\n", " ").Replace
	for _, r := range Rules {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", r.ID, r.Name, cell(r.Catches), cell(r.Why), cell(r.Do))
	}
	return sb.String()
}

// RulesDocumentation replaces the text between the rules markers
// (<!-- rules:begin --> and <!-- rules:end -->) in doc by the generated
// table. found is false when doc has no such block.
func RulesDocumentation(doc string) (updated string, found bool) {
	before, rest, ok := strings.Cut(doc, rulesDocumentationBegin)
	if !ok {
		return doc, false
	}
	_, after, ok := strings.Cut(rest, rulesDocumentationEnd)
	if !ok {
		return doc, false
	}
	return before + rulesDocumentationBegin + "\n" + RulesMarkdown() + rulesDocumentationEnd + after, true
}
