package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestDemoBadInput: each mistake is one line on stderr, exit 2, nothing on
// stdout, and no server is started (the checks come first).
func TestDemoBadInput(t *testing.T) {
	sample := Sample{Source: "pagila sample", Dump: "-- schema", Data: "-- data"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo"}, "needs a terminal on standard input; for a headless demo database use cutover demo --print-url"},
		{[]string{"demo", "--keep", "--print-url"}, "--keep and --print-url do not go together"},
		{[]string{"demo", "--print-url", "--rows", "10"}, "--rows 10 is out of range"},
		{[]string{"demo", "--print-url", "--rate", "0"}, "--rate 0 is out of range"},
		{[]string{"demo", "--print-url", "extra"}, "unknown command \"extra\""},
	} {
		var out, errb bytes.Buffer
		code := Run(tc.args, strings.NewReader(""), &out, &errb, sample)
		if code != ExitBadInput {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, ExitBadInput, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("%v: stdout %q, want nothing", tc.args, out.String())
		}
		if msg := errb.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: stderr %q, want one line containing %q", tc.args, msg, tc.want)
		}
	}
}

func TestDemoWithoutSampleData(t *testing.T) {
	var out, errb bytes.Buffer
	code := Run([]string{"demo", "--print-url"}, strings.NewReader(""), &out, &errb, Sample{Dump: "-- schema"})
	if code != ExitBadInput || !strings.Contains(errb.String(), "no pagila sample to load") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func TestDemoLicense(t *testing.T) {
	var out, errb bytes.Buffer
	lic := "# Licence\n\nCopyright (c) Someone <a@b.c>\n\nPermission is hereby granted...\n"
	if code := Run([]string{"demo", "--license"}, strings.NewReader(""), &out, &errb, Sample{License: lic}); code != ExitOK {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if out.String() != lic {
		t.Errorf("printed %q, want the licence", out.String())
	}
	if got := copyrightLine(lic); got != "Copyright (c) Someone <a@b.c>" {
		t.Errorf("copyrightLine = %q", got)
	}
	out.Reset()
	if code := Run([]string{"demo", "--license"}, strings.NewReader(""), &out, &errb, Sample{}); code != ExitBadInput {
		t.Errorf("without a sample: exit %d, want %d", code, ExitBadInput)
	}
}
