package planner_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover/cutover/planner"
)

// The rule registry is the one list of rules: every ID the code reports is
// in it, well formed and documented.
func TestRules(t *testing.T) {
	ids := []string{
		planner.RuleRenameColumn, planner.RuleRenameRelation, planner.RuleDropColumn, planner.RuleDropTable,
		planner.RuleDropView, planner.RuleChangeType, planner.RuleAddColumnRewrite, planner.RuleAddColumnNotNull,
		planner.RuleSetNotNull, planner.RuleAddCheck, planner.RuleAddForeignKey, planner.RuleAddUnique,
		planner.RuleCreateIndex, planner.RuleDropIndex, planner.RuleDropDefaultNotNull, planner.RuleBulkDML,
		planner.RuleRewrite, planner.RuleConcurrentlyInTx, planner.RuleValidateSameTx, planner.RuleLockTimeout,
		planner.RuleIgnoreComment,
	}
	if len(ids) != len(planner.Rules) {
		t.Errorf("%d rule constants, %d rules", len(ids), len(planner.Rules))
	}
	for _, id := range ids {
		if planner.RuleByID(id) == nil {
			t.Errorf("rule %s is not in planner.Rules", id)
		}
	}
	seenName := map[string]bool{}
	prev := ""
	for _, r := range planner.Rules {
		if len(r.ID) != 6 || !strings.HasPrefix(r.ID, "CUT") || strings.Trim(r.ID[3:], "0123456789") != "" {
			t.Errorf("rule id %q: want CUT and three digits", r.ID)
		}
		if r.ID <= prev {
			t.Errorf("rule %s comes after %s: keep Rules in ID order", r.ID, prev)
		}
		prev = r.ID
		if seenName[r.Name] || r.Name == "" || strings.ToLower(r.Name) != r.Name || strings.Contains(r.Name, " ") {
			t.Errorf("rule %s: name %q must be a unique lower-case slug", r.ID, r.Name)
		}
		seenName[r.Name] = true
		for field, v := range map[string]string{"Catches": r.Catches, "Why": r.Why, "Do": r.Do} {
			if strings.TrimSpace(v) == "" || strings.Contains(v, "\n") {
				t.Errorf("rule %s: %s must be one non-empty line", r.ID, field)
			}
		}
	}
	if planner.RuleByID("CUT000") != nil {
		t.Error("RuleByID finds a rule that does not exist")
	}
}

// The README's rules table is generated from planner.Rules: it must be
// what RulesMarkdown gives. Regenerate it with
//
//	go test ./planner -run TestRulesDocumentation -update
//
// CUTOVER_RULES_DOC may name more Markdown files holding the block (a
// section waiting to be merged into the README).
func TestRulesDocumentation(t *testing.T) {
	docs := []string{"../README.md"}
	extra := map[string]bool{}
	if env := os.Getenv("CUTOVER_RULES_DOC"); env != "" {
		for _, p := range filepath.SplitList(env) {
			docs = append(docs, p)
			extra[p] = true
		}
	}
	for _, path := range docs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		updated, found := planner.RulesDocumentation(string(b))
		if !found {
			if extra[path] {
				t.Errorf("%s has no <!-- rules:begin --> ... <!-- rules:end --> block", path)
			}
			continue
		}
		if updated == string(b) {
			continue
		}
		if updating() {
			if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("the rules table in %s is not the one planner.Rules gives; run go test ./planner -run TestRulesDocumentation -update", path)
	}
	table := planner.RulesMarkdown()
	for _, r := range planner.Rules {
		if !strings.Contains(table, "| "+r.ID+" | "+r.Name+" |") {
			t.Errorf("the generated table lacks rule %s", r.ID)
		}
	}
}
