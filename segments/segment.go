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

// segment is one <base>.log file. Its identity (base, path, inode) never changes; it is active until
// sealed, then read-only until purged or deleted.
type segment struct {
	base int64
	path string
	ino  uint64

	size   atomic.Int64 // logical size (active: everything appended, persisted or not)
	mtime  atomic.Int64 // unix nanoseconds of the last append or of the seal
	sealed atomic.Bool

	// wfile is the writer's handle on the active segment, used only under the partition's w.mu and
	// nil once sealed or closed.
	wfile directio.File
	// reserved is the segment offset up to which appends may be accepted: wfile has the disk space
	// for them (see writer.reserveLocked). It is raised under w.mu, and lowered only under w.mu
	// and buf.mu, which a deferred append holds while it checks its end against it and copies its
	// bytes in, so no append is accepted against a reservation that is being given up.
	reserved atomic.Int64

	// mu guards the read source. Readers hold it shared for one read (memory copies and preads of the
	// page cache), so nothing they wait for is a write. The seal switches the source and purge/delete
	// close it under the exclusive lock, so a descriptor is never closed (and its number reused by
	// another file) under a reader: that is what keeps a read from returning another segment's bytes.
	mu     sync.RWMutex
	closed bool
	file   directio.File // active: the writer's File, whose ReadAt never waits for its I/O
	buf    *dirtyBuf     // active in deferred mode: appended bytes not yet handed to file
	rfd    int           // sealed: read-only descriptor, -1 until first needed

	rfdMu sync.Mutex // serializes the lazy open of rfd among readers
}

func newSealedSegment(base int64, path string, st *unix.Stat_t) *segment {
	s := &segment{base: base, path: path, ino: st.Ino, rfd: -1}
	s.size.Store(st.Size)
	s.mtime.Store(time.Unix(st.Mtim.Unix()).UnixNano())
	s.sealed.Store(true)
	return s
}

// info describes s. superseded says whether a later segment exists: the API calls a segment sealed
// only then, so a rotation (seal, then create the successor) is seen as one step, like a rename.
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

// readAt reads segment-relative bytes; see Partition.ReadSegment.
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

// readFD returns the read-only descriptor of a sealed segment, opening it on first use so that a
// recovered partition with many segments does not hold a descriptor per segment. Caller holds mu shared.
func (s *segment) readFD(fs diskCalls) (int, error) {
	s.rfdMu.Lock()
	defer s.rfdMu.Unlock()
	if s.rfd < 0 {
		fd, err := fs.sys.Open(s.path, unix.O_RDONLY, 0)
		if err != nil {
			return -1, fmt.Errorf("open segment %s: %w", s.path, err)
		}
		s.rfd = fd
	}
	return s.rfd, nil
}

// closeRead makes every later read fail with ErrNotExist and closes the read descriptor once no read
// is in flight. It returns the active File (if any), which the caller, holding the partition's file
// lock, closes itself: closing a File writes, and readers must not wait for that.
func (s *segment) closeRead(fs diskCalls) (directio.File, error) {
	s.mu.Lock()
	s.closed = true
	f, fd := s.file, s.rfd
	s.file, s.buf, s.rfd = nil, nil, -1
	s.mu.Unlock()
	if fd >= 0 {
		if err := fs.sys.Close(fd); err != nil {
			return f, fmt.Errorf("close segment %s: %w", s.path, err)
		}
	}
	return f, nil
}
