package fusefs

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: a mount must stop everything it started
// (server loops, the rotation notifier, entry invalidations) by the time it is unmounted and its log closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
