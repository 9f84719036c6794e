package segments

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// segment is one <base>.log file: active until sealed, then read-only until purged.
type segment struct {
	base int64
	path string
	ino  uint64

	size   atomic.Int64 // logical: everything appended, persisted or not
	mtime  atomic.Int64 // unix nanoseconds of the last append or the seal
	sealed atomic.Bool

	// wfile is the writer's, under writer.mu; nil once sealed or closed.
	wfile directio.File
	// reserved is how far wfile has disk space for appends. Raised under writer.mu; lowered under
	// it and buf.mu, which a deferred append holds while it checks and copies.
	reserved atomic.Int64

	// mu guards the read source: shared for one read, exclusive to switch or close it, so no read
	// meets a descriptor number reused by another file.
	mu     sync.RWMutex
	closed bool
	file   directio.File // active: the writer's File, whose ReadAt never waits for its I/O
	buf    *dirtyBuf     // active, deferred: bytes not yet in file
	// rfd is the sealed segment's descriptor, -1 until a reader opens it: set by CAS under mu shared,
	// otherwise changed only under mu exclusive.
	rfd atomic.Int64
}

func newSegment(base int64, path string) *segment {
	s := &segment{base: base, path: path}
	s.rfd.Store(-1)
	return s
}

func newSealedSegment(base int64, path string, st *unix.Stat_t) *segment {
	s := newSegment(base, path)
	s.ino = st.Ino
	s.size.Store(st.Size)
	s.mtime.Store(time.Unix(st.Mtim.Unix()).UnixNano())
	s.sealed.Store(true)
	return s
}

// info describes s. It is Sealed once superseded, so a rotation is seen as one step.
func (s *segment) info(superseded bool) SegmentInfo {
	si := SegmentInfo{
		Base: s.base, Size: s.size.Load(), Sealed: superseded,
		ModTime: time.Unix(0, s.mtime.Load()), Path: s.path, Ino: s.ino,
	}
	var st unix.Stat_t
	if unix.Stat(s.path, &st) == nil {
		si.Blocks = st.Blocks
	}
	return si
}

func (s *segment) readAt(fs diskCalls, b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read segment %s at %d: negative offset", s.path, off)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, fmt.Errorf("read segment %s: %w", s.path, ErrNotExist)
	}
	switch {
	case s.buf != nil:
		return s.buf.readAt(s.file, b, off)
	case s.file != nil:
		return s.file.ReadAt(b, off)
	}
	size := s.size.Load()
	if off >= size {
		if len(b) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), size-off))
	fd, err := s.readFD(fs)
	if err != nil {
		return 0, err
	}
	if err := directio.ReadFullAt(fs.sys, fd, b[:n], off); err != nil {
		return 0, fmt.Errorf("read segment %s at %d: %w", s.path, off, err)
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// readFD opens a sealed segment's descriptor on first use, so that a recovered partition does not
// hold one per segment. Caller holds mu shared.
func (s *segment) readFD(fs diskCalls) (int, error) {
	if fd := s.rfd.Load(); fd >= 0 {
		return int(fd), nil
	}
	fd, err := fs.sys.Open(s.path, unix.O_RDONLY, 0)
	if err != nil {
		return -1, fmt.Errorf("open segment %s: %w", s.path, err)
	}
	if !s.rfd.CompareAndSwap(-1, int64(fd)) {
		_ = fs.sys.Close(fd) // another reader opened it first
	}
	return int(s.rfd.Load()), nil
}

// closeRead makes later reads fail with ErrNotExist and closes the descriptor once no read is in
// flight. It returns the active File, for the writer to close: closing writes, readers must not wait.
func (s *segment) closeRead(fs diskCalls) (directio.File, error) {
	s.mu.Lock()
	s.closed = true
	f, fd := s.file, int(s.rfd.Swap(-1))
	s.file, s.buf = nil, nil
	s.mu.Unlock()
	if fd >= 0 {
		if err := fs.sys.Close(fd); err != nil {
			return f, fmt.Errorf("close segment %s: %w", s.path, err)
		}
	}
	return f, nil
}
