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

	size   atomic.Int64 // logical: persisted or not
	mtime  atomic.Int64
	sealed atomic.Bool

	// wfile is under writer.mu; nil once sealed or closed.
	wfile directio.File
	// reserved: wfile's disk space for appends. Raised under writer.mu, lowered under it and buf.mu.
	reserved atomic.Int64

	// mu guards the read source: shared for one read, exclusive to switch or close it.
	mu     sync.RWMutex
	closed bool
	file   directio.File // ReadAt never waits for its I/O
	buf    *dirtyBuf     // bytes not yet in file
	rfd    cachedFD      // sealed or released

	tier segmentTier
}

func newSegment(base int64, path string) *segment {
	return &segment{base: base, path: path}
}

func newSealedSegment(base int64, path string, st *unix.Stat_t) *segment {
	s := newSegment(base, path)
	s.ino = st.Ino
	s.size.Store(st.Size)
	s.mtime.Store(time.Unix(st.Mtim.Unix()).UnixNano())
	s.sealed.Store(true)
	return s
}

// info reports Sealed once superseded, so a rotation is seen as one step.
func (s *segment) info(superseded bool) SegmentInfo {
	si := SegmentInfo{
		Base: s.base, Size: s.size.Load(), Sealed: superseded,
		ModTime: time.Unix(0, s.mtime.Load()), Path: s.path, Ino: s.ino,
		Remote: s.tier.evicted.Load(), Uploaded: s.tier.copy.Load() != nil,
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
	fd, err := fs.fds.pin(&s.rfd, s.path)
	if err != nil {
		return 0, err
	}
	err = directio.ReadFullAt(fs.sys, fd, b[:n], off)
	fs.fds.unpin(&s.rfd)
	if err != nil {
		return 0, fmt.Errorf("read segment %s at %d: %w", s.path, off, err)
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// closeRead fails later reads, closes the descriptor once no read is in flight, and returns the
// active File for the writer to close.
func (s *segment) closeRead(fs diskCalls) (directio.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	f := s.file
	s.file, s.buf = nil, nil
	if err := fs.fds.forget(&s.rfd); err != nil {
		return f, fmt.Errorf("close segment %s: %w", s.path, err)
	}
	return f, nil
}

// keepMtime sets the file's mtime to its last append's: sealing and closing moved it, and the
// next Open reads it from the file.
func (s *segment) keepMtime() error {
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(s.mtime.Load())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, s.path, ts, 0); err != nil {
		return fmt.Errorf("set mtime of %s: %w", s.path, err)
	}
	return nil
}
