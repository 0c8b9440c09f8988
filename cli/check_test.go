package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cutover/cutover/migrations"
	"github.com/cutover/cutover/planner"
	"github.com/cutover/cutover/schema"
)

// The corpus: testdata/migrations/<layout>/ holds one migration set per
// supported layout, checked against testdata/migrations/schema.sql. Each
// statement says what the checker must report on its line, in a trailing
// comment:
//
//	-- want: CUT001 CUT103     these findings, not suppressed
//	-- suppressed: CUT013      this finding, suppressed by a cutover:ignore
//	-- ok: CUT006              a negative case of CUT006 (nothing is reported
//	                           that is not listed, so this documents it)
//	-- next want: CUT901       the same, about the next line (a comment line
//	                           cannot carry a marker of its own)
//
// Nothing else may be reported, and in every layout every rule has at
// least one positive case (want or suppressed) and one negative case (ok).

const corpusDir = "../testdata/migrations"

var corpusLayouts = []struct {
	dir  string
	tool migrations.Tool
}{
	{"plain", migrations.Plain},
	{"golang-migrate", migrations.GolangMigrate},
	{"goose", migrations.Goose},
	{"dbmate", migrations.Dbmate},
	{"flyway", migrations.Flyway},
}

func corpusSchema(t testing.TB) *schema.Schema {
	t.Helper()
	path := filepath.Join(corpusDir, "schema.sql")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.ParseDump(path, string(b))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// marker is what the corpus expects at a line.
type marker struct {
	want, suppressed, ok []string
}

// markers reads the expectations of a corpus file, by line.
func markers(t *testing.T, path string) map[int]*marker {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]*marker{}
	for i, text := range strings.Split(string(b), "\n") {
		line := i + 1
		for rest := text; ; {
			at := strings.Index(rest, "--")
			if at < 0 {
				break
			}
			rest = rest[at+2:]
			words := strings.Fields(rest)
			if len(words) == 0 {
				continue
			}
			target := line
			if words[0] == "next" {
				target, words = line+1, words[1:]
			}
			if len(words) == 0 || !isMarkerKind(words[0]) {
				continue
			}
			m := out[target]
			if m == nil {
				m = &marker{}
				out[target] = m
			}
			var list *[]string
			for _, w := range words {
				switch w {
				case "want:":
					list = &m.want
				case "suppressed:":
					list = &m.suppressed
				case "ok:":
					list = &m.ok
				default:
					if planner.RuleByID(w) == nil {
						t.Fatalf("%s:%d: marker names %q, not a rule", path, line, w)
					}
					*list = append(*list, w)
				}
			}
			break
		}
	}
	return out
}

func isMarkerKind(w string) bool { return w == "want:" || w == "suppressed:" || w == "ok:" }

func TestCheckCorpus(t *testing.T) {
	s := corpusSchema(t)
	for _, layout := range corpusLayouts {
		t.Run(layout.dir, func(t *testing.T) {
			files, err := migrations.Load([]string{filepath.Join(corpusDir, layout.dir)})
			if err != nil {
				t.Fatal(err)
			}
			if len(files) < 3 {
				t.Fatalf("%d files in the %s corpus", len(files), layout.dir)
			}
			for _, f := range files {
				if f.Tool != layout.tool {
					t.Errorf("%s read as %s, want %s", f.Path, f.Tool, layout.tool)
				}
			}
			rep, err := check(files, s, true)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]planner.Finding{}
			for _, list := range [][]checkedFinding{rep.Findings, rep.Suppressed} {
				for _, fd := range list {
					key := fmt.Sprintf("%s:%d %s", fd.File, fd.Line, fd.Rule)
					if fd.Suppressed != "" {
						key += " (suppressed)"
					}
					got[key] = fd.Finding
					if strings.HasPrefix(fd.Rule, "CUT0") && fd.Plan == nil && fd.PlanError == "" {
						t.Errorf("%s: a statement rule's finding has neither a plan nor a reason for none", key)
					}
				}
			}
			want := map[string]bool{}
			pos, neg := map[string]bool{}, map[string]bool{}
			for _, f := range files {
				for line, m := range markers(t, f.Path) {
					for _, r := range m.want {
						want[fmt.Sprintf("%s:%d %s", f.Path, line, r)] = true
						pos[r] = true
					}
					for _, r := range m.suppressed {
						want[fmt.Sprintf("%s:%d %s (suppressed)", f.Path, line, r)] = true
						pos[r] = true
					}
					for _, r := range m.ok {
						neg[r] = true
					}
				}
			}
			for _, k := range sortedKeys(got) {
				if !want[k] {
					t.Errorf("unexpected finding %s: %s", k, got[k].Reason)
				}
			}
			for _, k := range sortedKeys(want) {
				if _, ok := got[k]; !ok {
					t.Errorf("missing finding %s", k)
				}
			}
			for _, r := range planner.Rules {
				if !pos[r.ID] {
					t.Errorf("rule %s (%s) has no positive case in the %s corpus", r.ID, r.Name, layout.dir)
				}
				if !neg[r.ID] {
					t.Errorf("rule %s (%s) has no negative case in the %s corpus", r.ID, r.Name, layout.dir)
				}
			}
		})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
