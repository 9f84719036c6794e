package segments

import (
	"testing"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// TestTopUpReachesSegmentEnd: near the end of a segment the top-up must still cover what appends may
// take before the next one. Comparing the target capped at SegmentSize with the reservation skipped
// the top-up there, so the last appends of every segment reserved for themselves behind flusher
// writes.
func TestTopUpReachesSegmentEnd(t *testing.T) {
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.SegmentSize = 16 << 20
	cfg.MaxDirty, cfg.MaxDirtyTotal = 4<<20, 4<<20
	cfg.flushWriteCap = 1 << 20
	p := mustPartition(t, openLog(t, t.TempDir(), cfg), "t", 0)
	limit := cfg.SegmentSize
	for p.Size() < limit-2<<20 {
		appendPattern(t, p, 1, 256<<10)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	seg := p.list.active()
	if err := p.w.reserveLocked(seg, limit-1<<20, 0); err != nil {
		t.Fatal(err)
	}
	p.w.lastWrite.Store(cfg.flushWriteCap) // a streaming producer
	p.w.topUpLocked()
	if got := seg.reserved.Load(); got != limit {
		t.Fatalf("after top-up at end %d: reserved %d, want the segment end %d", seg.size.Load(), got, limit)
	}
	// And the blocks are really allocated on disk, up to the segment end.
	var st unix.Stat_t
	if err := unix.Stat(seg.path, &st); err != nil {
		t.Fatal(err)
	}
	if got := st.Blocks * 512; got < limit {
		t.Fatalf("after top-up: %d bytes allocated on disk, want at least the segment end %d", got, limit)
	}
}

// TestReserveAheadStreaming: a partition whose flusher writes full pieces reserves the whole dirty
// budget ahead (its producer can fill it before the next top-up); a lightly written one reserves
// twice its recent backlog.
func TestReserveAheadStreaming(t *testing.T) {
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.MaxDirty, cfg.MaxDirtyTotal = 64<<20, 64<<20
	cfg.flushWriteCap = 8 << 20
	p := mustPartition(t, openLog(t, t.TempDir(), cfg), "t", 0)
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	p.w.lastWrite.Store(1 << 20)
	if got, want := p.w.reserveAhead(), int64(reserveStep+2<<20); got != want {
		t.Fatalf("light writer: reserveAhead %d, want %d", got, want)
	}
	p.w.lastArrived.Store(8 << 20) // a burst arrived during the last write
	if got, want := p.w.reserveAhead(), int64(reserveStep+64<<20+8<<20); got != want {
		t.Fatalf("streaming writer: reserveAhead %d, want %d", got, want)
	}
}
