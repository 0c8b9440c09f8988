package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestTUINeedsATerminal(t *testing.T) {
	for _, args := range [][]string{nil, {"--schema", "../testdata/pagila/schema.sql"}} {
		var out, errb bytes.Buffer
		code := Run(args, strings.NewReader(""), &out, &errb, Sample{})
		if code != ExitBadInput {
			t.Errorf("%v: exit %d, want %d", args, code, ExitBadInput)
		}
		if out.Len() != 0 {
			t.Errorf("%v: stdout %q, want nothing", args, out.String())
		}
		msg := errb.String()
		if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "needs a terminal") {
			t.Errorf("%v: stderr %q, want one line saying a terminal is needed", args, msg)
		}
	}
}

func TestRootHelpStillWorks(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run([]string{"--help"}, strings.NewReader(""), &out, &errb, Sample{}); code != ExitOK {
		t.Fatalf("--help: exit %d, stderr %q", code, errb.String())
	}
	for _, want := range []string{"terminal UI", "--schema", "plan", "apply"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRootRejectsUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := Run([]string{"plna"}, strings.NewReader(""), &out, &errb, Sample{})
	if code != ExitBadInput || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
