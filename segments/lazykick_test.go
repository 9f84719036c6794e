package segments

import (
	"sync/atomic"
	"testing"
	"time"

	"segfs/directio"
)

// countingSyscalls is a fault-injection seam that only counts pwritev calls, to see whether the
// flusher wrote anything.
type countingSyscalls struct {
	directio.OS
	writes atomic.Int64
}

func (s *countingSyscalls) Pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	s.writes.Add(1)
	return s.OS.Pwritev(fd, iovs, off)
}

// TestSmallAppendsWaitForSyncOrTimer: an append smaller than a chunk does not start the flusher (the
// fsync that usually follows writes it on its own thread); a chunk's worth of dirty bytes does, and
// a small append with no fsync after it still reaches the File once the delay passes.
func TestSmallAppendsWaitForSyncOrTimer(t *testing.T) {
	sys := &countingSyscalls{}
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.Syscalls = sys
	cfg.lazyKickDelay = time.Hour
	dir := t.TempDir()
	p := mustPartition(t, openLog(t, dir, cfg), "lazy", 0)

	for range 3 {
		appendPattern(t, p, 9, 4096)
	}
	// Nothing may write these bytes but a Sync: if a flusher had started, 100 ms is ample for it.
	time.Sleep(100 * time.Millisecond)
	if n := sys.writes.Load(); n != 0 {
		t.Fatalf("small appends without fsync: %d pwritev calls, want 0 (flusher started eagerly)", n)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := sys.writes.Load(); n != 1 {
		t.Fatalf("Sync of 12 KiB: %d pwritev calls, want 1", n)
	}
	data, _ := diskContent(t, dir+"/lazy/0")
	checkPattern(t, "after Sync", 9, 0, data)
	if len(data) != 3*4096 {
		t.Fatalf("on disk after Sync: %d bytes, want %d", len(data), 3*4096)
	}

	appendPattern(t, p, 9, int(p.log.chunk)) // a chunk dirty: the flusher starts now
	waitUndirty(t, p)
}

// TestSmallAppendWithoutSyncIsWritten: with the default delay, a lone small append still leaves
// memory for the File without any Sync.
func TestSmallAppendWithoutSyncIsWritten(t *testing.T) {
	p := mustPartition(t, openLog(t, t.TempDir(), testConfig(mode{directio.DirectSync, Deferred})), "lazy", 0)
	appendPattern(t, p, 3, 100)
	waitUndirty(t, p)
	appendPattern(t, p, 3, 100) // the timer is armed again after it fired
	waitUndirty(t, p)
}

func waitUndirty(t *testing.T, p *Partition) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.w.dirty.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d deferred bytes never handed to the File", p.w.dirty.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestChunkPoolKeepsABurstThenTrims: the pool keeps, for reuse, as many free chunks as one partition
// cycles through at max_dirty (so a busy write path does not allocate and zero fresh ones), and gives
// them back once every partition is idle.
func TestChunkPoolKeepsABurstThenTrims(t *testing.T) {
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.MaxDirty = 32 << 20
	l := openLog(t, t.TempDir(), cfg)
	p := mustPartition(t, l, "pool", 0)
	burst := int(cfg.MaxDirty / l.chunk) // what a partition at max_dirty holds
	var held [][]byte
	for range burst {
		held = append(held, l.chunks.Get())
	}
	for _, c := range held {
		l.chunks.Put(c)
	}
	if free := l.chunks.Free(); free != burst {
		t.Fatalf("after a burst of %d chunks the pool keeps %d", burst, free)
	}
	appendPattern(t, p, 4, 1000) // its flusher goes idle after writing it
	deadline := time.Now().Add(20 * time.Second)
	for l.chunks.Free() > directio.DefaultPoolRetain {
		if time.Now().After(deadline) {
			t.Fatalf("idle for 20s: the pool still keeps %d chunks", l.chunks.Free())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFlusherNeverStrandsDirtyBytes: appends that arrive while the flusher goes idle are written
// without a Sync or the lazy timer: either that flusher sees them or the append starts a new one. A
// max_dirty of four chunks makes appends wake up just as the flusher finishes a write.
func TestFlusherNeverStrandsDirtyBytes(t *testing.T) {
	cfg := testConfig(mode{directio.Buffered, Deferred})
	cfg.lazyKickDelay = time.Hour
	cfg.MaxDirty = 16 << 10
	p := mustPartition(t, openLog(t, t.TempDir(), cfg), "strand", 0)
	for round := range 300 {
		for range 1 + round%8 {
			appendPattern(t, p, 5, int(p.log.chunk)) // a chunk dirty: kicks the flusher at once
		}
		waitUndirty(t, p)
	}
}
