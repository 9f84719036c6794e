package segments

import (
	"testing"
	"time"

	"segfs/directio"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRetentionBytes: the oldest sealed segments go while the partition keeps at least
// RetentionBytes without them; the active segment never goes.
func TestRetentionBytes(t *testing.T) {
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.SegmentSize = 1000
	cfg.RetentionBytes = 2500
	cfg.retentionInterval = 5 * time.Millisecond
	l := openLog(t, t.TempDir(), cfg)
	p := mustPartition(t, l, "r", 0)
	for i := 0; i < 10; i++ {
		appendPattern(t, p, 1, 1000)
	}
	// 10 segments of 1000 (the last active): keep 1000*3 >= 2500 + ... Kafka rule: drop while
	// total-size >= 2500, i.e. down to 3 segments.
	waitFor(t, "retention", func() bool { return len(p.Segments()) == 3 })
	time.Sleep(30 * time.Millisecond)
	segs := p.Segments()
	if len(segs) != 3 || segs[0].Base != 7000 || segs[2].Sealed {
		t.Fatalf("after retention: %s", segInfoString(segs))
	}
}

// TestRetentionAge: sealed segments older than RetentionAge go; the active one stays however old.
func TestRetentionAge(t *testing.T) {
	cfg := testConfig(mode{directio.Buffered, Inline})
	cfg.SegmentSize = 1000
	cfg.RetentionAge = 50 * time.Millisecond
	cfg.retentionInterval = 5 * time.Millisecond
	l := openLog(t, t.TempDir(), cfg)
	p := mustPartition(t, l, "r", 0)
	for i := 0; i < 4; i++ {
		appendPattern(t, p, 1, 1000)
	}
	waitFor(t, "age retention", func() bool { return len(p.Segments()) == 1 })
	time.Sleep(100 * time.Millisecond)
	if segs := p.Segments(); len(segs) != 1 || segs[0].Base != 3000 || segs[0].Size != 1000 {
		t.Fatalf("after age retention: %s", segInfoString(segs))
	}
}
