package plans

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// samplePlan exercises every part of the renderers: known and unknown
// facts, warnings with code spans, an irreversible step, a gate, a
// batched backfill with triggers, a statement outside a transaction,
// pipes and backticks in user text.
func samplePlan() *Plan {
	return &Plan{
		Version: Version,
		Input:   "ALTER TABLE \"Order Items\" RENAME COLUMN \"Unit Price\" TO price;\nALTER TABLE customer ALTER COLUMN note TYPE text USING note || '`|`';",
		Warnings: []string{
			"The backfill of public.customer fires its UPDATE trigger(s) last_updated on every row; `cutover apply` asks whether to fire or skip them.",
			"Names like *stars* and <tags> and [links](x) stay literal.",
		},
		Assumptions: []string{"Unqualified table names are in schema public."},
		Facts: Facts{
			Source:        "live database",
			ServerVersion: 150004,
			Tables: []TableFacts{
				{Name: "public.Order Items", Rows: -1, Bytes: -1},
				{Name: "public.customer", Rows: 1234567, Bytes: 3 << 30, BatchKey: []string{"customer_id"},
					UpdateTriggers: []string{"last_updated"}, DependentViews: []string{"public.customer_list"}, BackfillSeconds: 24.7},
			},
		},
		Phases: []Phase{
			{Name: Expand, Rollback: "Run the rollback of each expand step in reverse order.", Deploys: []Deploy{{
				Kind: DB, Title: "Expand the schema",
				Instructions: []string{"Run with `cutover apply`."},
				Steps: []Step{
					{ID: "E1-add-column-price", Summary: "Add price | a copy", SQL: `ALTER TABLE "public"."Order Items" ADD COLUMN "price" numeric`,
						Rollback: `ALTER TABLE "public"."Order Items" DROP COLUMN IF EXISTS "price"`, Lock: LockAccessExclusive,
						Table: "public.Order Items", Transactional: true, Rewrite: ImpactNone,
						Hazards: []Hazard{{Type: HazardAccessExclusive, Message: "ADD COLUMN takes ACCESS EXCLUSIVE"}}},
					{ID: "E2-index-price", Summary: "Build index", SQL: "CREATE INDEX CONCURRENTLY \"ix\" ON \"public\".\"Order Items\" (\"price\")",
						Rollback: "DROP INDEX CONCURRENTLY IF EXISTS \"public\".\"ix\"", Lock: LockShareUpdateExclusive,
						Table: "public.Order Items", Transactional: false, Rewrite: ImpactScan},
				},
			}}},
			{Name: Migrate, Rollback: "Redeploy the previous release first.", Deploys: []Deploy{
				{Kind: DB, Title: "Backfill in batches", Steps: []Step{{
					ID: "B1-backfill-customer", Summary: "Backfill note2 from note",
					SQL:      "UPDATE \"public\".\"customer\" SET \"note2\" = \"note\" || '```' WHERE \"note2\" IS DISTINCT FROM \"note\"",
					Rollback: "SELECT 1", Lock: LockRowExclusive, Table: "public.customer", Transactional: true, Rewrite: ImpactBatched,
					Gate: &Gate{Description: "every row is backfilled", SQL: "SELECT count(*) FROM \"public\".\"customer\" WHERE \"note2\" IS DISTINCT FROM \"note\""},
					Backfill: &Backfill{Table: `"public"."customer"`, Key: []string{`"customer_id"`}, Set: []string{`"note2" = "note"`},
						Where: `"note2" IS DISTINCT FROM "note"`, Triggers: []string{"last_updated"}},
					Hazards: []Hazard{{Type: HazardHeavyWrite, Message: "writes every row"}, {Type: HazardFiresTriggers, Message: "fires last_updated"}},
				}}},
				{Kind: App, Title: "Application release: use the new shape", Instructions: []string{
					"Switch reads of public.customer from `note` to `note2`.",
					"- leading dash and a | pipe",
				}},
			}},
			{Name: Contract, Rollback: "Irreversible steps cannot be undone.", Deploys: []Deploy{{
				Kind: DB, Title: "Contract the schema", Steps: []Step{{
					ID: "C1-drop-note", Summary: "Drop note", SQL: "ALTER TABLE \"public\".\"customer\" DROP COLUMN \"note\"",
					Irreversible: true, IrreversibleReason: "the column's data is gone", Lock: LockAccessExclusive,
					Table: "public.customer", Transactional: true, Rewrite: ImpactNone,
					Hazards: []Hazard{{Type: HazardDataLoss, Message: "drops data"}},
				}},
			}}},
		},
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./plans -update to create it)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		t.Errorf("%s differs from the golden file at line %d; run go test ./plans -update and review the diff\n  want: %s\n  got:  %s", name, i+1, w, g)
	}
}

func TestMarkdownGolden(t *testing.T) {
	p := samplePlan()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "sample.md", Markdown(p))
}

func TestMarkdownDeterministic(t *testing.T) {
	a, b := Markdown(samplePlan()), Markdown(samplePlan())
	if a != b {
		t.Fatal("two renderings of the same plan differ")
	}
}

func TestMarkdownStructure(t *testing.T) {
	p := samplePlan()
	md := Markdown(p)

	// One checkbox per db step and per application instruction.
	want := 0
	for _, ph := range p.Phases {
		for _, d := range ph.Deploys {
			if d.Kind == App {
				want += len(d.Instructions)
			} else {
				want += len(d.Steps)
			}
		}
	}
	if got := strings.Count(md, "- [ ] "); got != want {
		t.Errorf("%d checklist items, want %d", got, want)
	}
	for _, ref := range p.Steps() {
		if !strings.Contains(md, "- [ ] **"+ref.Step.ID+"**") {
			t.Errorf("no checklist item for step %s", ref.Step.ID)
		}
	}

	// Every fence that opens closes, and the SQL containing ``` got a
	// longer fence.
	var open string
	for _, l := range strings.Split(md, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "```") {
			continue
		}
		run := l[:strings.IndexFunc(l+"x", func(r rune) bool { return r != '`' })]
		switch {
		case open == "":
			open = run
		case l == open:
			open = ""
		}
	}
	if open != "" {
		t.Errorf("an unclosed %s fence", open)
	}
	if !strings.Contains(md, "````sql\n  UPDATE") {
		t.Error("SQL containing ``` is not fenced with four backticks")
	}

	// Table rows: pipes in cells are escaped, so every summary row has
	// exactly 6 unescaped pipes.
	inSummary := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "## ") {
			inSummary = l == "## Summary"
		}
		if inSummary && strings.HasPrefix(l, "|") {
			if n := strings.Count(l, "|") - strings.Count(l, `\|`); n != 6 {
				t.Errorf("summary row has %d cell separators, want 6: %s", n, l)
			}
		}
	}
	for _, s := range []string{
		"Add price \\| a copy",
		"| migrate | 2 · db | `B1-backfill-customer` Backfill note2 from note | ROW EXCLUSIVE on `public.customer` | batched writes, fires triggers |",
		"| contract | 4 · db | `C1-drop-note` Drop note | ACCESS EXCLUSIVE on `public.customer` | brief AE, data loss, irreversible |",
		"**Irreversible:** the column's data is gone",
		"**must run outside a transaction block**",
		"Gate, must return 0 or true before going on: every row is backfilled",
		"Names like \\*stars\\* and \\<tags> and \\[links\\](x) stay literal.",
		"`cutover apply` asks",
		"- [ ] \\- leading dash and a | pipe",
		"| `public.customer` | `customer_id` | 1,234,567 | 3.0 GB | ~25 s | UPDATE triggers: `last_updated`; views: `public.customer_list` |",
		"- PostgreSQL server: 15.4",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q", s)
		}
	}
}

func TestRisk(t *testing.T) {
	for _, tc := range []struct {
		step Step
		want string
	}{
		{Step{Lock: LockNone, Rewrite: ImpactNone}, "low"},
		{Step{Lock: LockShareUpdateExclusive, Rewrite: ImpactNone}, "low"},
		{Step{Lock: LockAccessExclusive, Rewrite: ImpactNone}, "brief AE"},
		{Step{Lock: LockShareRowExclusive, Rewrite: ImpactNone}, "brief write block"},
		{Step{Lock: LockShareUpdateExclusive, Rewrite: ImpactScan}, "scan"},
		{Step{Lock: LockShare, Rewrite: ImpactScan}, "write-blocking scan"},
		{Step{Lock: LockAccessExclusive, Rewrite: ImpactScan}, "AE scan"},
		{Step{Lock: LockAccessExclusive, Rewrite: ImpactRewrite}, "AE rewrite"},
		{Step{Lock: LockRowExclusive, Rewrite: ImpactBatched}, "batched writes"},
		{Step{Lock: LockNone, Rewrite: ImpactNone, Irreversible: true}, "irreversible"},
		{Step{Lock: LockAccessExclusive, Rewrite: ImpactRewrite, Hazards: []Hazard{{Type: HazardCastFailure}, {Type: HazardCastFailure}}}, "AE rewrite, cast may fail"},
		{Step{Lock: LockAccessExclusive, Hazards: []Hazard{{Type: HazardCastFailure, Message: "rollback: it fails if ..."}}}, "brief AE"},
	} {
		if got := Risk(&tc.step); got != tc.want {
			t.Errorf("Risk(%s, %s, irreversible=%v) = %q, want %q", tc.step.Lock, tc.step.Rewrite, tc.step.Irreversible, got, tc.want)
		}
	}
}

func TestMarkdownOfflineFacts(t *testing.T) {
	p := &Plan{Version: Version, Input: "CREATE TABLE t (a int)", Facts: Facts{Source: "none",
		Tables: []TableFacts{{Name: "public.t", Rows: -1, Bytes: -1}}}}
	md := Markdown(p)
	if strings.Contains(md, "| rows |") {
		t.Error("rows column shown though no table has a row estimate")
	}
	for _, s := range []string{"no schema (offline, see the assumptions)", "| `public.t` | unknown | — |", "nothing to do"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
}

func TestHumanUnits(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{BytesText(-1), "unknown"},
		{BytesText(512), "512 B"},
		{BytesText(1536), "1.5 kB"},
		{BytesText(200 << 20), "200 MB"},
		{DurationText(0), "—"},
		{DurationText(0.2), "< 1 s"},
		{DurationText(59), "~59 s"},
		{DurationText(600), "~10 min"},
		{DurationText(7200), "~2.0 h"},
		{ServerVersionText(150004), "15.4"},
		{ServerVersionText(90624), "9.6.24"},
		{groupDigits(1000), "1,000"},
		{groupDigits(999), "999"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestCodeSpan(t *testing.T) {
	for in, want := range map[string]string{
		"a":    "`a`",
		"a`b":  "`` a`b ``",
		"`a":   "`` `a ``",
		"a  b": "`a b`",
		"x``y": "``` x``y ```",
		"":     "",
	} {
		if got := code(in); got != want {
			t.Errorf("code(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProse(t *testing.T) {
	for in, want := range map[string]string{
		"email_address":          "email_address",
		"rental_id__cutover_new": "rental_id__cutover_new",
		"_private and trailing_": `\_private and trailing\_`,
		"a * b and *em*":         `a \* b and \*em\*`,
		"see `SELECT *` <b>":     "see `SELECT *` \\<b>",
		"odd ` backtick":         "odd \\` backtick",
		"[x](y)":                 `\[x\](y)`,
		"# not a heading":        `\# not a heading`,
		"two\nlines":             "two lines",
		`back\slash`:             `back\\slash`,
	} {
		if got := prose(in); got != want {
			t.Errorf("prose(%q) = %q, want %q", in, got, want)
		}
	}
}
