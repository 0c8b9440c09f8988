package plans

import (
	"strings"
	"testing"
)

func TestTextGolden(t *testing.T) {
	checkGolden(t, "sample.txt", Text(samplePlan()))
}

func TestTextContent(t *testing.T) {
	p := samplePlan()
	txt := Text(p)
	if txt != Text(samplePlan()) {
		t.Fatal("two renderings of the same plan differ")
	}
	for _, ref := range p.Steps() {
		if !strings.Contains(txt, "    "+ref.Step.ID+"  "+ref.Step.Summary+"\n") {
			t.Errorf("step %s is not listed with its summary", ref.Step.ID)
		}
	}
	for _, s := range []string{
		"cutover plan: 4 deploys in 3 phases (3 database, 1 application)",
		"  [3/4] app: Application release: use the new shape\n    [ ] Switch reads",
		"      lock SHARE UPDATE EXCLUSIVE on public.Order Items · impact scan · risk scan · outside a transaction\n        CREATE INDEX CONCURRENTLY",
		"      irreversible: the column's data is gone",
		"      gate: every row is backfilled",
		"EXPAND\n  rollback: ",
	} {
		if !strings.Contains(txt, s) {
			t.Errorf("text lacks %q", s)
		}
	}
	if strings.Contains(txt, "\x1b") {
		t.Error("text output contains escape sequences")
	}
}
