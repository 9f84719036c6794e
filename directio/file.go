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
	// Pool is an optional shared pool for scratch blocks. Its block size must be a multiple of the
	// File's block size (the larger of the two alignments) and its alignment at least Memory. nil
	// means a private pool.
	Pool *Pool
	// BeforePad, if set, runs before any write of a zero-padded partial block (in Flush,
	// FlushAndTruncate and WriteFlush) with the logical size being made durable and the padded block
	// about to be written (read-only, valid during the call). segments uses it to write a
	// checksummed length record first, so a crash between the padded write and the truncate can be
	// told apart from data. An error aborts the write before anything is written.
	BeforePad func(logicalSize int64, padded []byte) error
}

// File is an append-only file; see the package documentation for the on-disk behaviour and the
// concurrency contract.
type File interface {
	// Write appends p. All of p is accepted (written as full blocks and/or kept in the tail) or an
	// error is returned and Size() and the on-disk content are exactly what they were before the call.
	Write(p []byte) (int, error)
	// WriteV appends the concatenation of bufs. Full aligned blocks go to disk in one pwritev; a buf
	// whose memory and file position are aligned is passed to pwritev as is (no copy). Same error
	// guarantee as Write.
	WriteV(bufs [][]byte) (int, error)
	// Flush pads the tail with zeros and writes it, keeping the tail in memory so the next append
	// rewrites that block.
	Flush() error
	// WriteFlush is Write followed by Flush in as few writes as the disk needs: the full blocks and
	// the padded tail go in one pwritev, after BeforePad. Same error guarantee as Write.
	WriteFlush(p []byte) (int, error)
	// FlushAndTruncate flushes, then truncates the file to its exact logical size (if it is not
	// exact already; the truncate also frees the blocks Reserve allocated).
	FlushAndTruncate() error
	// Reserve makes sure the disk blocks of the file up to offset end are allocated, without changing
	// the size or any byte of the file (fallocate with FALLOC_FL_KEEP_SIZE, from the block-aligned end
	// of what is on disk up to end rounded up to the block size), so that appends up to end, and the
	// padded writes of their tail, cannot fail for lack of space. It is a writer-side call, serialized
	// with Write like the others. A range already reserved costs no syscall. A full disk gives an
	// error wrapping unix.ENOSPC (or EDQUOT) and leaves Size, the file's size and content as they
	// were; blocks the failed call allocated anyway are given back with the rest. On a filesystem
	// without fallocate (EOPNOTSUPP) Reserve does nothing, then and on every later call, and returns
	// nil: space is allocated at write time as without it. The reservation lasts until a truncate
	// frees it: a FlushAndTruncate that has to truncate (in the direct modes, whenever the tail is
	// partial), the rollback of a failed write, or Close, which always gives back what was reserved
	// past the end so a closed file keeps no spare blocks. Callers that rely on it re-Reserve after
	// those; a range still reserved costs them no syscall.
	Reserve(end int64) error
	// Unreserve gives back the blocks Reserve allocated past what is on disk, without writing, and
	// without changing the size or any byte of the file: a truncate to the size on disk frees them.
	// The space reserved for appended bytes still in memory (the tail) goes too; a caller that needs it
	// reserves again.
	Unreserve() error
	// Sync makes what has been written, and the file size, durable.
	Sync() error
	// Size is the logical size; lock-free.
	Size() int64
	// ReadAt reads logical bytes, including the in-memory tail, never padding; io.EOF past Size.
	ReadAt(p []byte, off int64) (int, error)
	Alignment() Alignment
	Path() string
	// Close is FlushAndTruncate, giving back reserved blocks past the end, then closing the
	// descriptors; it closes them even if the flush fails.
	Close() error
}

// Open opens path as an append-only File, creating it if missing. If it exists, the logical size is
// the file size and, in the direct modes, the tail is rebuilt from the last partial block, so appends
// continue exactly where they left off.
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

// fileSize reads the size of an open regular file through the seam.
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

// ReadFullAt fills p from fd at off through sys, retrying EINTR and short reads; a file shorter than
// expected is io.ErrUnexpectedEOF, because callers only read below a size they know.
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

// readerGate lets ReadAt use the read descriptor without a lock shared with the writer, while Close
// waits for in-flight reads so a closed (and possibly reused) descriptor number is never read.
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
