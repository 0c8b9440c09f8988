package planner

import (
	"fmt"
	"strings"
)

// syncPair is one column kept in step with another by a sync trigger while
// old and new application releases run side by side.
type syncPair struct {
	from, to string
	// forward computes `to` from the row's `from` (SQL over NEW."from");
	// "" means a plain copy.
	forward string
	// sources are the columns forward reads (a USING expression may read
	// other columns than from); nil means just from. wholeRow: forward
	// reads the whole row (t.*), so any column may change it.
	sources  []string
	wholeRow bool
	// twoWay: writes to `to` are copied back to `from` (a rename, where new
	// releases write the new column while old ones write the old one).
	// Back-copy uses reverse, or a plain copy when reverse is "".
	twoWay  bool
	reverse string
}

func (p syncPair) fwd() string {
	if p.forward != "" {
		return p.forward
	}
	return "NEW." + ident(p.from)
}

func (p syncPair) rev() string {
	if p.reverse != "" {
		return p.reverse
	}
	return "NEW." + ident(p.to)
}

// unequal is true when NEW's `to` is not what `from` gives.
func (p syncPair) unequal() string {
	return fmt.Sprintf("NEW.%s IS DISTINCT FROM %s", ident(p.to), p.fwd())
}

// syncFunctionSQL returns CREATE OR REPLACE FUNCTION fn() for the row
// triggers syncTriggerSQL creates, keeping the pairs in step.
//
// Called by a pair's back-copy trigger (its argument is the pair's `to`
// column: the UPDATE sets `to`), `from` is computed from `to`. Otherwise,
// on INSERT, a value given for the new column wins (a new release wrote
// it); the new column is computed from the old one when it is NULL. On
// UPDATE, a changed new column is copied back (two-way pairs); otherwise
// the new column is recomputed from the old one, so any old release's
// write leaves the pair equal.
func syncFunctionSQL(fn string, pairs []syncPair) string {
	var body strings.Builder
	var back []syncPair
	for _, p := range pairs {
		if p.twoWay {
			back = append(back, p)
		}
	}
	if len(back) > 0 {
		fmt.Fprintf(&body, "  IF TG_NARGS > 0 THEN\n")
		for _, p := range back {
			fmt.Fprintf(&body, "    IF TG_ARGV[0] = %s THEN NEW.%s := %s; END IF;\n", literal(p.to), ident(p.from), p.rev())
		}
		fmt.Fprintf(&body, "    RETURN NEW;\n  END IF;\n")
	}
	for _, p := range pairs {
		from, to := "NEW."+ident(p.from), "NEW."+ident(p.to)
		fwd := p.fwd()
		if p.twoWay {
			rev := p.rev()
			fmt.Fprintf(&body, "  IF TG_OP = 'INSERT' THEN\n")
			fmt.Fprintf(&body, "    IF %s IS NULL THEN %s := %s; ELSE %s := %s; END IF;\n", to, to, fwd, from, rev)
			fmt.Fprintf(&body, "  ELSIF %s IS DISTINCT FROM OLD.%s THEN\n", to, ident(p.to))
			fmt.Fprintf(&body, "    %s := %s;\n", from, rev)
			fmt.Fprintf(&body, "  ELSE\n")
			fmt.Fprintf(&body, "    %s := %s;\n", to, fwd)
			fmt.Fprintf(&body, "  END IF;\n")
		} else {
			fmt.Fprintf(&body, "  %s := %s;\n", to, fwd)
		}
	}
	return fmt.Sprintf("CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $cutover$\nBEGIN\n%s  RETURN NEW;\nEND\n$cutover$", fn, body.String())
}

// backTriggerName names the back-copy trigger of a two-way pair: it sorts
// before the main trigger ("cutover_back" < "cutover_sync" and
// "cutover_type"), so it fires first.
func backTriggerName(p syncPair) string { return shortName("cutover_back", p.from, p.to) }

// syncTriggerNames returns the names of the triggers syncTriggerSQL
// creates, in creation order: the back-copy triggers of the two-way pairs,
// then trigger.
func syncTriggerNames(trigger string, pairs []syncPair) []string {
	var out []string
	for _, p := range pairs {
		if p.twoWay {
			out = append(out, backTriggerName(p))
		}
	}
	return append(out, trigger)
}

// syncTriggerSQL returns the CREATE TRIGGER statements running fn
// (syncFunctionSQL of the same pairs) on table, joined by ";\n". They are
// defined so that the backfill's UPDATE, which only sets the `to` columns
// to their computed values, never calls the function (a PL/pgSQL call per
// backfilled row is the largest overhead of a backfill), while every
// application write that needs it does:
//
//   - one-way pairs only: BEFORE INSERT OR UPDATE OF the source columns.
//     PostgreSQL fires a column-specific UPDATE trigger when one of its
//     columns is in the UPDATE's SET list, whatever the value; the
//     backfill's SET list holds only `to` columns, an application write of
//     a source column always names it, and an update of other columns
//     leaves the sources, hence `to`, as they were (a row the backfill has
//     not reached yet keeps `to` NULL until it does).
//   - with a two-way pair: the main trigger is BEFORE INSERT OR UPDATE,
//     WHEN some `to` differs from its value computed from NEW (WHEN may
//     read only NEW in a trigger that also fires on INSERT). After the
//     backfill's SET to = from the pair is equal, so the condition is false
//     and the function is not called; any write leaving the pair unequal
//     calls it, and it makes the pair equal; a write leaving the pair
//     equal needs nothing. In a BEFORE trigger, PostgreSQL evaluates WHEN
//     just before the function would run, so it sees what triggers fired
//     earlier did to NEW. Each two-way pair also has a back-copy trigger,
//     BEFORE UPDATE OF "to" WHEN the pair is unequal, firing first: a new
//     release setting `to` wins even when the value equals the old `to`,
//     which the main function cannot tell from an update of other columns
//     (SET "to" = NULL on a row the backfill has not reached yet). The
//     backfill sets `to` equal to the value from gives: false again.
func syncTriggerSQL(trigger string, table relName, fn string, pairs []syncPair) string {
	twoWay, wholeRow := false, false
	var cols, conds, stmts []string
	for _, p := range pairs {
		twoWay = twoWay || p.twoWay
		wholeRow = wholeRow || p.wholeRow
		src := p.sources
		if len(src) == 0 {
			src = []string{p.from}
		}
		for _, c := range src {
			if !containsString(cols, c) {
				cols = append(cols, c)
			}
		}
		conds = append(conds, p.unequal())
		if p.twoWay {
			stmts = append(stmts, fmt.Sprintf("CREATE TRIGGER %s BEFORE UPDATE OF %s ON %s FOR EACH ROW WHEN (%s) EXECUTE FUNCTION %s(%s)",
				ident(backTriggerName(p)), ident(p.to), table.quoted(), p.unequal(), fn, literal(p.to)))
		}
	}
	head := fmt.Sprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE", ident(trigger))
	when := ""
	if twoWay || wholeRow {
		when = fmt.Sprintf(" WHEN (%s)", orJoin(conds))
	} else {
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = ident(c)
		}
		head += " OF " + strings.Join(quoted, ", ")
	}
	stmts = append(stmts, fmt.Sprintf("%s ON %s FOR EACH ROW%s EXECUTE FUNCTION %s()", head, table.quoted(), when, fn))
	return strings.Join(stmts, ";\n")
}

// dropSyncTriggersSQL returns the DROP TRIGGER IF EXISTS statements of
// syncTriggerSQL's triggers, in reverse creation order.
func dropSyncTriggersSQL(trigger string, table relName, pairs []syncPair) []string {
	names := syncTriggerNames(trigger, pairs)
	out := make([]string, 0, len(names))
	for i := len(names) - 1; i >= 0; i-- {
		out = append(out, fmt.Sprintf("DROP TRIGGER IF EXISTS %s ON %s", ident(names[i]), table.quoted()))
	}
	return out
}
