package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestApplyWorkerFlagsBadInput: --backfill-workers or --batch-gap out of
// range is one line on stderr saying the range, and exit 2, before the
// plan is read or a connection made.
func TestApplyWorkerFlagsBadInput(t *testing.T) {
	for _, tc := range []struct{ flag, value, want string }{
		{"--backfill-workers", "0", "--backfill-workers must be between 1 and 32"},
		{"--backfill-workers", "-1", "--backfill-workers must be between 1 and 32"},
		{"--backfill-workers", "33", "--backfill-workers must be between 1 and 32"},
		{"--batch-gap", "-1ms", "--batch-gap must be between 0 and 1s"},
		{"--batch-gap", "2s", "--batch-gap must be between 0 and 1s"},
	} {
		args := []string{"apply", "--plan", "plan.json", "--db", "postgres://x@127.0.0.1:1/x", tc.flag, tc.value}
		var out, errb bytes.Buffer
		code := Run(args, strings.NewReader(""), &out, &errb, Sample{})
		if code != ExitBadInput {
			t.Errorf("%s %s: exit %d, want %d (stderr %q)", tc.flag, tc.value, code, ExitBadInput, errb.String())
		}
		if msg := errb.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s %s: stderr %q, want one line saying %q", tc.flag, tc.value, msg, tc.want)
		}
	}
}
