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
	// twoWay: writes to `to` are copied back to `from` (a rename, where new
	// releases write the new column while old ones write the old one).
	// Back-copy uses reverse, or a plain copy when reverse is "".
	twoWay  bool
	reverse string
}

// syncFunctionSQL returns CREATE OR REPLACE FUNCTION fn() for a BEFORE
// INSERT OR UPDATE row trigger keeping the pairs in step.
//
// On INSERT, a value given for the new column wins (a new release wrote
// it); otherwise the new column is computed from the old one. On UPDATE, a
// changed new column is copied back (two-way pairs); otherwise the new
// column is recomputed from the old one, so a backfill that touches the row
// and any old release's write both leave the pair equal.
func syncFunctionSQL(fn string, pairs []syncPair) string {
	var body strings.Builder
	for _, p := range pairs {
		from, to := "NEW."+ident(p.from), "NEW."+ident(p.to)
		fwd := from
		if p.forward != "" {
			fwd = p.forward
		}
		if p.twoWay {
			rev := to
			if p.reverse != "" {
				rev = p.reverse
			}
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
