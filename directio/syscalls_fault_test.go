package directio

import (
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// faultKind is what faultSyscalls does to the call it is aimed at.
type faultKind int

const (
	faultErr            faultKind = iota // fail with errno, writing nothing
	faultShort                           // write the first half (rounded down to what O_DIRECT accepts) and report it
	faultShortUnaligned                  // write an aligned prefix but report one byte more, as a buffered fallback could
	faultZero                            // report 0 bytes written, writing nothing
	faultShortThenErr                    // short write, and the next mutating call fails with errno
)

func (k faultKind) String() string {
	return [...]string{"err", "short", "short-unaligned", "zero", "short-then-err"}[k]
}

// pwritevCall records one pwritev as the kernel saw it.
type pwritevCall struct {
	fd   int
	off  int64
	lens []int
	ptrs []uintptr
}

// faultSyscalls is the fault-injection Syscalls used by the tests: it passes every call to OS, counts
// the mutating calls (pwritev, ftruncate, fdatasync, fsync, fallocate) and makes the one at a chosen position fail
// or short-write. It also records pwritev iovecs (to prove zero-copy), counts descriptors (to find
// leaks) and can hold pwritev calls (to prove readers do not wait for them).
type faultSyscalls struct {
	OS
	mu            sync.Mutex
	unit          map[int]int // O_DIRECT fd -> block size a real short write would be a multiple of
	bs            int
	calls         int // mutating calls so far
	at            int // position of the fault; -1 for none
	kind          faultKind
	errno         unix.Errno
	always        bool // every mutating call from `at` on is faulted
	failOpen      int  // fail the open-phase call (open, fstat, pread) with this index; -1 for none
	opens         int  // open-phase calls so far
	fds           int  // descriptors currently open
	record        bool // record pwritev calls
	writes        []pwritevCall
	fallocates    int           // fallocate calls so far, faulted or not
	lastFallocate [3]int64      // mode, offset and length of the latest one
	hold          chan struct{} // if set, pwritev waits for a receive from it
	entered       chan struct{} // if set, pwritev signals it before waiting on hold
}

func newFaultSyscalls(bs int) *faultSyscalls {
	return &faultSyscalls{unit: map[int]int{}, bs: bs, at: -1, failOpen: -1}
}

// arm aims a fault of kind at the mutating call with index at (counting from now).
func (s *faultSyscalls) arm(at int, kind faultKind, errno unix.Errno) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at, s.kind, s.errno, s.calls = at, kind, errno, 0
}

func (s *faultSyscalls) disarm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at, s.always = -1, false
}

func (s *faultSyscalls) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// next counts a mutating call and says whether it is to be faulted, and how.
func (s *faultSyscalls) next() (faultKind, unix.Errno, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.calls
	s.calls++
	switch {
	case s.at < 0:
		return 0, 0, false
	case i == s.at || (s.always && i > s.at):
		return s.kind, s.errno, true
	case i == s.at+1 && s.kind == faultShortThenErr:
		return faultErr, s.errno, true
	}
	return 0, 0, false
}

func (s *faultSyscalls) openPhase() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.opens
	s.opens++
	if i == s.failOpen {
		return unix.EIO
	}
	return nil
}

func (s *faultSyscalls) Open(path string, flags int, perm uint32) (int, error) {
	if err := s.openPhase(); err != nil {
		return -1, err
	}
	fd, err := s.OS.Open(path, flags, perm)
	if err == nil {
		s.mu.Lock()
		s.fds++
		if flags&unix.O_DIRECT != 0 {
			s.unit[fd] = s.bs
		} else {
			s.unit[fd] = 1
		}
		s.mu.Unlock()
	}
	return fd, err
}

func (s *faultSyscalls) Close(fd int) error {
	s.mu.Lock()
	s.fds--
	delete(s.unit, fd)
	s.mu.Unlock()
	return s.OS.Close(fd)
}

func (s *faultSyscalls) Fstat(fd int, st *unix.Stat_t) error {
	if err := s.openPhase(); err != nil {
		return err
	}
	return s.OS.Fstat(fd, st)
}

func (s *faultSyscalls) Pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	s.mu.Lock()
	if s.record {
		c := pwritevCall{fd: fd, off: off}
		for _, v := range iovs {
			c.lens = append(c.lens, len(v))
			c.ptrs = append(c.ptrs, uintptr(unsafe.Pointer(unsafe.SliceData(v))))
		}
		s.writes = append(s.writes, c)
	}
	hold, entered, unit := s.hold, s.entered, s.unit[fd]
	s.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if hold != nil {
		<-hold
	}
	kind, errno, hit := s.next()
	if !hit {
		return s.OS.Pwritev(fd, iovs, off)
	}
	total := 0
	for _, v := range iovs {
		total += len(v)
	}
	switch kind {
	case faultErr:
		return 0, errno
	case faultZero:
		return 0, nil
	}
	n := (total / 2) / unit * unit
	if n > 0 {
		if _, err := s.OS.Pwritev(fd, prefix(iovs, n), off); err != nil {
			return 0, fmt.Errorf("fault injection: writing short prefix: %w", err)
		}
	}
	if kind == faultShortUnaligned && unit > 1 && n+1 < total {
		n++
	}
	return n, nil
}

// prefix returns the iovecs covering the first n bytes of iovs.
func prefix(iovs [][]byte, n int) [][]byte {
	var out [][]byte
	for _, v := range iovs {
		if n == 0 {
			break
		}
		k := min(n, len(v))
		out = append(out, v[:k])
		n -= k
	}
	return out
}

func (s *faultSyscalls) Pread(fd int, p []byte, off int64) (int, error) {
	if err := s.openPhase(); err != nil {
		return 0, err
	}
	return s.OS.Pread(fd, p, off)
}

func (s *faultSyscalls) Ftruncate(fd int, size int64) error {
	if kind, errno, hit := s.next(); hit && kind == faultErr {
		return errno
	}
	return s.OS.Ftruncate(fd, size)
}

func (s *faultSyscalls) Fdatasync(fd int) error {
	if kind, errno, hit := s.next(); hit && kind == faultErr {
		return errno
	}
	return s.OS.Fdatasync(fd)
}

func (s *faultSyscalls) Fsync(fd int) error {
	if kind, errno, hit := s.next(); hit && kind == faultErr {
		return errno
	}
	return s.OS.Fsync(fd)
}

func (s *faultSyscalls) Fallocate(fd int, mode uint32, off, length int64) error {
	s.mu.Lock()
	s.fallocates++
	s.lastFallocate = [3]int64{int64(mode), off, length}
	s.mu.Unlock()
	if kind, errno, hit := s.next(); hit && kind == faultErr {
		return errno
	}
	return s.OS.Fallocate(fd, mode, off, length)
}

// fallocated returns how many fallocate calls were made and the mode, offset and length of the last.
func (s *faultSyscalls) fallocated() (int, [3]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fallocates, s.lastFallocate
}
