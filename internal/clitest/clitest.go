// Package clitest holds the assertions that the CLI's tests in several packages share.
package clitest

import (
	"strings"
	"testing"
)

// CheckOneLineFailure fails t unless a segfs run exited 1 and its last stderr line is one "segfs: ..." line
// containing every string in want: the shape every CLI failure must have.
func CheckOneLineFailure(t testing.TB, args []string, code int, stderr string, want ...string) {
	t.Helper()
	if code != 1 {
		t.Fatalf("segfs %q exited %d; want 1 (stderr %q)", args, code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "segfs: ") {
		t.Fatalf("segfs %q: last stderr line %q does not start with \"segfs: \" (stderr %q)", args, last, stderr)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("segfs %q: stderr %q does not contain %q", args, last, w)
		}
	}
}
