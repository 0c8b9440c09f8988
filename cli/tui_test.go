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

// cutover --db URL with a server that is not there: one line, exit 2, the
// password never printed; nothing on stdout.
func TestTUILiveConnectionError(t *testing.T) {
	for _, args := range [][]string{
		{"--db", "postgres://app:s3cr3t-pw@127.0.0.1:1/shop?connect_timeout=2"},
		{"--db", "host=127.0.0.1 port=1 user=app password=s3cr3t-pw dbname=shop connect_timeout=2"},
		{"--db", "postgres://app:s3cr3t-pw@127.0.0.1:1/shop?connect_timeout=2", "--plan", "missing.json"},
	} {
		var out, errb bytes.Buffer
		code := Run(args, strings.NewReader(""), &out, &errb, Sample{})
		msg := errb.String()
		if code != ExitBadInput || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q", args, code, out.String())
		}
		if strings.Count(msg, "\n") != 1 || strings.Contains(msg, "s3cr3t-pw") {
			t.Errorf("%v: stderr %q, want one line without the password", args, msg)
		}
		if !strings.Contains(msg, "missing.json") && !strings.Contains(msg, "127.0.0.1:1") {
			t.Errorf("%v: stderr %q does not say where", args, msg)
		}
	}
}

func TestTUILiveBadFlags(t *testing.T) {
	for args, want := range map[string][]string{
		"--plan needs --db":               {"--plan", "p.json"},
		"--schema FILE or --db URL":       {"--db", "postgres://x@127.0.0.1:1/x", "--schema", "s.sql"},
		"--lock-timeout must be positive": {"--db", "postgres://x@127.0.0.1:1/x", "--lock-timeout", "0"},
	} {
		var out, errb bytes.Buffer
		code := Run(want, strings.NewReader(""), &out, &errb, Sample{})
		if code != ExitBadInput || !strings.Contains(errb.String(), args) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want %q", want, code, errb.String(), args)
		}
	}
}
