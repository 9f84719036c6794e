package segments

import (
	"errors"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// closeFaultSyscalls fails every close of a read-only segment descriptor with EIO while armed (after
// closing it, as Linux does).
type closeFaultSyscalls struct {
	*fdLimitSyscalls
	armed atomic.Bool
}

func (f *closeFaultSyscalls) Close(fd int) error {
	f.mu.Lock()
	ro := f.open[fd]
	f.mu.Unlock()
	err := f.fdLimitSyscalls.Close(fd)
	if f.armed.Load() && ro {
		return unix.EIO
	}
	return err
}

// TestPurgeWhenCloseFails: a purge whose close of the segment's read descriptor fails still removes
// the file, so the segment does not come back at the next Open.
func TestPurgeWhenCloseFails(t *testing.T) {
	sys := &closeFaultSyscalls{fdLimitSyscalls: newFDLimitSyscalls()}
	l, p := sealedPartition(t, mode{directio.DirectSync, Deferred}, sys, 1000, 3)
	if err := readEverySegment(t, p); err != nil { // every sealed segment has its descriptor open
		t.Fatal(err)
	}
	seg, err := p.Segment(0)
	if err != nil {
		t.Fatal(err)
	}
	sys.armed.Store(true)
	if err := p.Purge(0); err != nil {
		t.Errorf("purge with a failing close: %v, want success (the segment is gone)", err)
	}
	sys.armed.Store(false)
	var st unix.Stat_t
	if err := unix.Stat(seg.Path, &st); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("backing file %s after purge: %v, want ENOENT", seg.Path, err)
	}
	dir, cfg := l.Dir(), l.Config()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, cfg)
	p2 := mustPartition(t, l2, "t", 0)
	if segs := p2.Segments(); segs[0].Base == 0 {
		t.Fatalf("purged segment 0 is back after reopening: %s", segInfoString(segs))
	}
}
