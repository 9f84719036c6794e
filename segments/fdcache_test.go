package segments

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// fdLimitSyscalls counts the descriptors of segment files (*.log) open through the seam and, as a
// fault injector for RLIMIT_NOFILE, refuses read-only opens of them with EMFILE once readLimit of
// those are open (readLimit < 0: no limit).
type fdLimitSyscalls struct {
	directio.OS
	mu        sync.Mutex
	open      map[int]bool // fd -> read-only
	reads     int          // read-only descriptors open
	maxOpen   int
	readLimit int
}

func newFDLimitSyscalls() *fdLimitSyscalls {
	return &fdLimitSyscalls{open: map[int]bool{}, readLimit: -1}
}

func (f *fdLimitSyscalls) Open(path string, flags int, perm uint32) (int, error) {
	seg := strings.HasSuffix(path, ".log")
	ro := flags&unix.O_ACCMODE == unix.O_RDONLY
	f.mu.Lock()
	defer f.mu.Unlock()
	if seg && ro && f.readLimit >= 0 && f.reads >= f.readLimit {
		return -1, unix.EMFILE
	}
	fd, err := f.OS.Open(path, flags, perm)
	if err != nil || !seg {
		return fd, err
	}
	f.open[fd] = ro
	if ro {
		f.reads++
	}
	f.maxOpen = max(f.maxOpen, len(f.open))
	return fd, nil
}

func (f *fdLimitSyscalls) Close(fd int) error {
	f.mu.Lock()
	if ro, ok := f.open[fd]; ok {
		delete(f.open, fd)
		if ro {
			f.reads--
		}
	}
	f.mu.Unlock()
	return f.OS.Close(fd)
}

func (f *fdLimitSyscalls) setReadLimit(n int) {
	f.mu.Lock()
	f.readLimit = n
	f.mu.Unlock()
}

// counts returns the segment descriptors open now and the most ever open at once, and resets the
// latter.
func (f *fdLimitSyscalls) counts() (now, peak int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now, peak = len(f.open), f.maxOpen
	f.maxOpen = len(f.open)
	return now, peak
}

// sealedPartition makes a partition of n sealed segments of segSize bytes each, and an active one
// with room left.
func sealedPartition(t *testing.T, m mode, sys directio.Syscalls, maxOpen, n int) (*Log, *Partition) {
	t.Helper()
	const segSize = 4096
	cfg := testConfig(m)
	cfg.SegmentSize, cfg.Syscalls, cfg.MaxOpenFiles = segSize, sys, maxOpen
	l := openLog(t, t.TempDir(), cfg)
	p := mustPartition(t, l, "t", 0)
	for i := 0; i < n; i++ {
		appendPattern(t, p, 7, segSize)
	}
	appendPattern(t, p, 7, 100) // rotates, and leaves room in the active segment
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Segments()[:n] {
		if err := p.WaitSealed(s.Base); err != nil {
			t.Fatal(err)
		}
	}
	return l, p
}

// readEverySegment reads each sealed segment of p whole and checks its bytes.
func readEverySegment(t *testing.T, p *Partition) error {
	t.Helper()
	segs := p.Segments()
	for _, s := range segs[:len(segs)-1] {
		b := make([]byte, s.Size)
		if _, err := p.ReadSegment(s.Base, b, 0); err != nil {
			return fmt.Errorf("read segment %d: %w", s.Base, err)
		}
		checkPattern(t, fmt.Sprintf("segment %d", s.Base), 7, s.Base, b)
	}
	return nil
}

// TestSealedDescriptorsBounded: reading every one of many sealed segments, twice, keeps at most
// MaxOpenFiles of their descriptors open (plus the active segment's own), reopening evicted ones on
// demand, instead of one per segment read since Open.
func TestSealedDescriptorsBounded(t *testing.T) {
	const maxOpen, segments = MinMaxOpenFiles, 80
	for _, m := range []mode{{directio.DirectSync, Deferred}, {directio.Buffered, Inline}} {
		t.Run(m.String(), func(t *testing.T) {
			sys := newFDLimitSyscalls()
			l, p := sealedPartition(t, m, sys, maxOpen, segments)
			sys.counts()
			for round := 0; round < 2; round++ {
				if err := readEverySegment(t, p); err != nil {
					t.Fatal(err)
				}
			}
			// The active segment's File holds up to two descriptors besides the cached ones.
			if _, peak := sys.counts(); peak > maxOpen+2 {
				t.Errorf("%d segment descriptors open at once while reading %d sealed segments, want at most %d+2", peak, segments, maxOpen)
			}
			if held := l.fs.fds.held(); held > maxOpen {
				t.Errorf("cache holds %d descriptors, limit %d", held, maxOpen)
			}
		})
	}
}

// TestSealedReadAtDescriptorLimit: when the process is out of descriptors, the cache closes its idle
// ones (and releases the idle partition) and opens again, so reads of every segment succeed with far
// fewer descriptors than segments; with none to be had, only the operations that need one fail, with
// EMFILE, and later ones carry on.
func TestSealedReadAtDescriptorLimit(t *testing.T) {
	sys := newFDLimitSyscalls()
	_, p := sealedPartition(t, mode{directio.DirectSync, Deferred}, sys, 1000, 40)
	sys.setReadLimit(4) // the active File's read descriptor and three more
	if err := readEverySegment(t, p); err != nil {
		t.Fatalf("reads under a process limit of 4 read descriptors: %v", err)
	}

	sys.setReadLimit(0)
	// Evict everything first: the limit lets no descriptor be opened now.
	p.fs.fds.mu.Lock()
	victims := p.fs.fds.evictLocked(p.fs.fds.idle.Len())
	p.fs.fds.mu.Unlock()
	p.fs.fds.closeAll(victims)
	b := make([]byte, 10)
	if _, err := p.ReadSegment(0, b, 0); !errors.Is(err, unix.EMFILE) {
		t.Fatalf("read without any descriptor left: %v, want EMFILE", err)
	}
	// The partition was released to make room for the reads above, so the append needs descriptors to
	// reopen it: it fails with EMFILE too, and accepts nothing.
	end := p.Size()
	if _, err := p.Append(pattern(7, end, 100)); !errors.Is(err, unix.EMFILE) || p.Size() != end {
		t.Fatalf("append without any descriptor left: %v, size %d -> %d; want EMFILE and nothing appended", err, end, p.Size())
	}
	if err := p.Sync(); err != nil {
		t.Fatalf("sync after a read failed with EMFILE: %v", err)
	}
	sys.setReadLimit(-1)
	appendPattern(t, p, 7, 100)
	if err := readEverySegment(t, p); err != nil {
		t.Fatalf("reads once descriptors are back: %v", err)
	}
}

// TestRotationAtDescriptorLimit: every open segments makes counts against the budget, so when the
// process is out of descriptors, a rotation (which opens the next segment) gets room by closing the
// idle cached ones instead of failing the append.
func TestRotationAtDescriptorLimit(t *testing.T) {
	for _, m := range []mode{{directio.DirectSync, Deferred}, {directio.DirectSync, Inline}} {
		t.Run(m.String(), func(t *testing.T) {
			sys := newFDLimitSyscalls()
			l, p := sealedPartition(t, m, sys, 1000, 20)
			if err := readEverySegment(t, p); err != nil { // every sealed segment's descriptor cached
				t.Fatal(err)
			}
			sys.mu.Lock()
			sys.readLimit = sys.reads // not one more read-only descriptor
			sys.mu.Unlock()
			for i := 0; i < 3; i++ {
				appendPattern(t, p, 7, 4096) // rotates: opens the next segment, seals the last
			}
			if err := p.Sync(); err != nil {
				t.Fatal(err)
			}
			sys.setReadLimit(-1)
			if err := readEverySegment(t, p); err != nil {
				t.Fatal(err)
			}
			if held, _ := sys.counts(); held+1 != l.fs.fds.held() {
				t.Errorf("budget counts %d descriptors; %d segment files and the commit file are open", l.fs.fds.held(), held)
			}
		})
	}
}

// dirEMFILESyscalls refuses opens of directories with EMFILE while armed: a seal needs one for its
// directory fsync.
type dirEMFILESyscalls struct {
	directio.OS
	armed atomic.Bool
}

func (f *dirEMFILESyscalls) Open(path string, flags int, perm uint32) (int, error) {
	if f.armed.Load() && flags&unix.O_DIRECTORY != 0 {
		return -1, unix.EMFILE
	}
	return f.OS.Open(path, flags, perm)
}

// TestSealOutOfDescriptorsIsRetried: a seal that finds the process out of descriptors fails only the
// append that needed it (inline) or is retried like a write on a full disk (deferred); the partition
// does not fail, and every append that succeeded is there after the Log is closed and reopened.
func TestSealOutOfDescriptorsIsRetried(t *testing.T) {
	for _, m := range allModes() {
		t.Run(m.String(), func(t *testing.T) {
			sys := &dirEMFILESyscalls{}
			cfg := testConfig(m)
			cfg.SegmentSize, cfg.Syscalls = 8192, sys
			dir := t.TempDir()
			l := openLog(t, dir, cfg)
			p := mustPartition(t, l, "t", 0)
			var acked []byte
			appendSome := func(n int) {
				b := pattern(5, int64(len(acked)), n)
				if _, err := p.Append(b); err == nil {
					acked = append(acked, b...)
				} else if !errors.Is(err, unix.EMFILE) {
					t.Fatalf("append: %v, want success or EMFILE", err)
				}
			}
			appendSome(6000)
			sys.armed.Store(true)
			for i := 0; i < 4; i++ {
				appendSome(6000) // each one rotates; the seal cannot open the directory
			}
			_ = p.Sync()
			sys.armed.Store(false)
			for i := 0; i < 4; i++ {
				appendSome(6000)
			}
			if err := p.Sync(); err != nil {
				t.Fatalf("sync once descriptors are back: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			p = mustPartition(t, openLog(t, dir, cfg), "t", 0)
			got := make([]byte, len(acked)+1)
			if n, _ := p.ReadAt(got, 0); n != len(acked) || !bytes.Equal(got[:n], acked) {
				t.Fatalf("after reopening: %d bytes, want the %d acknowledged", n, len(acked))
			}
		})
	}
}
