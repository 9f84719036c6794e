package segments

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"segfs/directio"
)

// TestMain fails the package's tests if any goroutine (a flusher, a timer's function, the retention
// loop) outlives them: every one of them must be stopped by the Log's Close or a partition's delete.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestCloseStopsTrimTimer: the timer that trims the chunk pool once no chunk is in use belongs to
// the Log, so Close stops it instead of leaving it to fire on a closed Log.
func TestCloseStopsTrimTimer(t *testing.T) {
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	l, err := Open(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := mustPartition(t, l, "t", 0)
	appendPattern(t, p, 1, int(l.chunk)) // a chunk dirty: the flusher writes it, and its release arms the trim
	deadline := time.Now().Add(10 * time.Second)
	for !l.budget.trimArmed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the chunk memory was never released")
		}
		time.Sleep(time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.budget.trim.Stop() {
		t.Fatal("Close left the trim timer running")
	}
}
