package segments

import (
	"sync/atomic"
	"testing"
	"time"

	"segfs/directio"
)

// slowWriteSyscalls is a fault-injection seam: a slow disk (every pwritev takes 20 ms more), so
// producers outrun it and a backlog builds up; it records the largest pwritev it passes on.
type slowWriteSyscalls struct {
	directio.OS
	largest atomic.Int64
}

func (s *slowWriteSyscalls) Pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	time.Sleep(20 * time.Millisecond)
	var n int64
	for _, b := range iovs {
		n += int64(len(b))
	}
	for {
		cur := s.largest.Load()
		if n <= cur || s.largest.CompareAndSwap(cur, n) {
			break
		}
	}
	return s.OS.Pwritev(fd, iovs, off)
}

// TestFlusherWritesAreCapped: a backlog larger than the cap is written in pieces of at most the cap
// (plus the File's tail block), so producers blocked on max_dirty get memory back after
// each piece instead of after the whole backlog; and the bytes are all there, in order, after reopen.
func TestFlusherWritesAreCapped(t *testing.T) {
	sys := &slowWriteSyscalls{}
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.Syscalls = sys
	cfg.MaxDirty, cfg.MaxDirtyTotal = 64<<20, 64<<20
	// Small enough that the backlog this slow disk builds (megabytes) is cut into many pieces.
	cfg.flushWriteCap = 256 << 10
	dir := t.TempDir()
	l := openLog(t, dir, cfg)
	p := mustPartition(t, l, "f", 0)
	const total = 40 << 20
	for p.Size() < total {
		appendPattern(t, p, 5, 1<<20+333)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, limit := sys.largest.Load(), cfg.flushWriteCap+64<<10; got > limit {
		t.Fatalf("largest flusher write %d bytes, want at most %d", got, limit)
	}
	size := p.Size()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.Syscalls = nil
	p2 := mustPartition(t, openLog(t, dir, cfg), "f", 0)
	data := make([]byte, size)
	if n, err := p2.ReadAt(data, 0); int64(n) != size {
		t.Fatalf("reopened: read %d of %d bytes: %v", n, size, err)
	}
	checkPattern(t, "reopened", 5, 0, data)
}
