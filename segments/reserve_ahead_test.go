package segments

import (
	"testing"
	"time"

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

// TestArrivalRateFollowsTheProducer: the rate behind reserveAhead follows a steady producer, falls
// while it slows, and after a pause longer than two horizons starts over from what arrives now,
// so a burst long gone reserves nothing.
func TestArrivalRateFollowsTheProducer(t *testing.T) {
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.MaxDirty, cfg.MaxDirtyTotal = 64<<20, 64<<20
	p := mustPartition(t, openLog(t, t.TempDir(), cfg), "t", 0)
	w := p.w
	w.mu.Lock()
	defer w.mu.Unlock()
	// The clock moves by shifting the writer's epoch back; the appended end by storing it.
	advance := func(d time.Duration, bytes int64) {
		w.epoch = w.epoch.Add(-d)
		w.end.Add(bytes)
		w.sampleArrivalsLocked()
	}
	advance(0, 0) // the first sample only starts the clock
	for range 30 {
		advance(rateSample, 4<<20) // 40 MiB/s
	}
	if got, want := w.arrivalRate.Load(), int64(40<<20); got < want*95/100 || got > want {
		t.Fatalf("steady 40 MiB/s: rate %d, want about %d", got, want)
	}
	if got := w.reserveAhead(); got < 40<<20 {
		t.Fatalf("reserveAhead at 40 MiB/s: %d, want at least a second of it", got)
	}
	advance(rateSample/2, 1<<20) // shorter than a sample: counted in the next one
	if got := w.arrivalRate.Load(); got < 38<<20 {
		t.Fatalf("a turn shorter than rateSample changed the rate to %d", got)
	}
	advance(time.Second, 0) // a second of silence, within two horizons
	if got := w.arrivalRate.Load(); got > 32<<20 {
		t.Fatalf("after a quiet second: rate %d, want it falling", got)
	}
	advance(10*time.Second, 1<<20) // a long pause, then a trickle
	if got := w.arrivalRate.Load(); got > 1<<20 {
		t.Fatalf("after a 10 s pause: rate %d, want what arrived in it (under 1 MiB/s)", got)
	}
	if got := w.reserveAhead(); got > reserveStep+4<<20 {
		t.Fatalf("reserveAhead after the pause: %d, want the small-producer reservation", got)
	}
}
