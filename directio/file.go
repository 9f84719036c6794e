package directio

import (
	"fmt"
	"io"
	"sync"

	"golang.org/x/sys/unix"
)

// Options configures Open.
type Options struct {
	Mode      Mode
	Syscalls  Syscalls  // nil means OS{}
	Alignment Alignment // zero means DiscoverAlignment(path)
	// Pool, if shared, needs blocks a multiple of the File's block, aligned to Memory.
	Pool *Pool
	// BeforePad runs before a zero-padded block is written, so the caller can record the size.
	BeforePad func(logicalSize int64, padded []byte) error
}

// File is an append-only file; see the package documentation.
type File interface {
	// Write appends p, or fails and leaves Size and the file as they were.
	Write(p []byte) (int, error)
	// WriteV appends the concatenation of bufs in one pwritev. Same guarantee as Write.
	WriteV(bufs [][]byte) (int, error)
	// Flush writes the tail padded with zeros and keeps it in memory.
	Flush() error
	// WriteFlush is Write plus Flush in one pwritev. Same guarantee as Write.
	WriteFlush(p []byte) (int, error)
	// FlushAndTruncate flushes, then truncates the file to Size if it is longer.
	FlushAndTruncate() error
	// Reserve allocates the blocks up to end, so appends up to end cannot hit ENOSPC.
	// Any truncate frees them.
	Reserve(end int64) error
	// Unreserve frees the blocks Reserve allocated past what is on disk.
	Unreserve() error
	// Sync makes what has been written, and the file size, durable.
	Sync() error
	// Size is the logical size; lock-free.
	Size() int64
	// ReadAt reads logical bytes, never padding; io.EOF past Size.
	ReadAt(p []byte, off int64) (int, error)
	Alignment() Alignment
	Path() string
	// Close is FlushAndTruncate and Unreserve, then closes even if they fail.
	Close() error
}

// Open opens or creates path; an existing file continues where it ends.
func Open(path string, opts Options) (File, error) {
	if opts.Syscalls == nil {
		opts.Syscalls = OS{}
	}
	switch opts.Mode {
	case Buffered:
		return openBuffered(path, opts)
	case Direct, DirectSync:
		return openDirect(path, opts)
	}
	return nil, fmt.Errorf("open %s: unknown io mode %v", path, opts.Mode)
}

func resolveAlignment(path string, a Alignment) (Alignment, error) {
	if a == (Alignment{}) {
		d, err := DiscoverAlignment(path)
		if err != nil {
			return Alignment{}, fmt.Errorf("open %s: %w", path, err)
		}
		a = d
	}
	if err := a.validate(); err != nil {
		return Alignment{}, fmt.Errorf("open %s: %w", path, err)
	}
	return a, nil
}

func fileSize(sys Syscalls, fd int, path string) (int64, error) {
	var st unix.Stat_t
	if err := retryEINTR(func() error { return sys.Fstat(fd, &st) }); err != nil {
		return 0, fmt.Errorf("open %s: fstat: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, fmt.Errorf("open %s: not a regular file", path)
	}
	return st.Size, nil
}

// ReadFullAt fills p from fd at off; a short file is io.ErrUnexpectedEOF.
func ReadFullAt(sys Syscalls, fd int, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := sys.Pread(fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// readerGate lets Close wait for reads in flight, so a reused descriptor is never read.
type readerGate struct {
	mu     sync.RWMutex
	closed bool
}

func (g *readerGate) enter() bool {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return false
	}
	return true
}

func (g *readerGate) leave() { g.mu.RUnlock() }

func (g *readerGate) close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	was := g.closed
	g.closed = true
	return !was
}
