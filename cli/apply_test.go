package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestApplyBackfillWorkersBadInput: --backfill-workers out of range is one
// line on stderr and exit 2, before the plan is read or a connection made.
func TestApplyBackfillWorkersBadInput(t *testing.T) {
	for _, n := range []string{"0", "-1", "33"} {
		args := []string{"apply", "--plan", "plan.json", "--db", "postgres://x@127.0.0.1:1/x", "--backfill-workers", n}
		var out, errb bytes.Buffer
		code := Run(args, strings.NewReader(""), &out, &errb, Sample{})
		if code != ExitBadInput {
			t.Errorf("--backfill-workers %s: exit %d, want %d (stderr %q)", n, code, ExitBadInput, errb.String())
		}
		if msg := errb.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "--backfill-workers must be between 1 and 32") {
			t.Errorf("--backfill-workers %s: stderr %q, want one line saying the range", n, msg)
		}
	}
}

// TestApplyBatchGapBadInput: --batch-gap below 0 or over 1s is one line on
// stderr and exit 2, before a connection is made.
func TestApplyBatchGapBadInput(t *testing.T) {
	for _, d := range []string{"-1ms", "2s"} {
		args := []string{"apply", "--plan", "plan.json", "--db", "postgres://x@127.0.0.1:1/x", "--batch-gap", d}
		var out, errb bytes.Buffer
		code := Run(args, strings.NewReader(""), &out, &errb, Sample{})
		if code != ExitBadInput {
			t.Errorf("--batch-gap %s: exit %d, want %d (stderr %q)", d, code, ExitBadInput, errb.String())
		}
		if msg := errb.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "--batch-gap must be between 0 and 1s") {
			t.Errorf("--batch-gap %s: stderr %q, want one line saying the range", d, msg)
		}
	}
}
