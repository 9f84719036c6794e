package fusefs

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"segfs/directio"
	"segfs/segments"
)

// faultOpen fails the opens that refuse picks, with the errno it returns, while armed.
type faultOpen struct {
	directio.OS
	armed  atomic.Bool
	refuse func(path string, flags int) syscall.Errno
}

func (f *faultOpen) Open(path string, flags int, perm uint32) (int, error) {
	if f.armed.Load() {
		if errno := f.refuse(path, flags); errno != 0 {
			return -1, errno
		}
	}
	return f.OS.Open(path, flags, perm)
}

// dirOpenEMFILE: the fsync of the partition directory after a purge's unlink needs a descriptor.
func dirOpenEMFILE(path string, flags int) syscall.Errno {
	if flags&unix.O_DIRECTORY != 0 {
		return syscall.EMFILE
	}
	return 0
}

// TestUnlinkSuccessIffGone: rm of a sealed segment succeeds when the segment is gone although the
// directory fsync after the unlink failed with EMFILE, and fails while the segment is still there.
func TestUnlinkSuccessIffGone(t *testing.T) {
	faults := &faultOpen{refuse: dirOpenEMFILE}
	m := newTestMount(t, segments.Config{Syscalls: faults, Partitions: 1}, Options{})
	if err := os.Mkdir(m.path("T"), 0o755); err != nil {
		t.Fatal(err)
	}
	cur := m.path("T", "0", "current")
	for i := 0; i < 3; i++ {
		f, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(make([]byte, testSegmentSize-100)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	segs := m.partition("T", 0).Segments()
	if len(segs) < 2 {
		t.Fatalf("want a sealed segment, got %v", segs)
	}
	for _, s := range segs[:len(segs)-1] {
		if err := m.partition("T", 0).WaitSealed(s.Base); err != nil {
			t.Fatal(err)
		}
	}
	name := m.path("T", "0", segments.SegmentName(segs[0].Base))
	faults.armed.Store(true)
	err := os.Remove(name)
	faults.armed.Store(false)
	if err != nil {
		t.Fatalf("rm %s with the directory fsync failing: %v, want success (the segment is gone)", name, err)
	}
	if _, err := os.Stat(filepath.Join(segs[0].Path)); !os.IsNotExist(err) {
		t.Errorf("backing file %s still there: %v", segs[0].Path, err)
	}
	if _, err := m.partition("T", 0).Segment(segs[0].Base); err == nil {
		t.Errorf("segment %d still listed", segs[0].Base)
	}
}
