package directio

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// defaultScratchBlock keeps an unaligned megabyte to a few iovecs while staying cheap per file.
const defaultScratchBlock = 64 << 10

// directFile keeps full blocks on disk and the tail in memory. On disk, [base, fileSize) holds
// tail[:flushed] then zeros, which is what a failed write restores.
type directFile struct {
	path      string
	sys       Syscalls
	mode      Mode
	align     Alignment
	bs        int
	fd, rfd   int
	pool      *Pool
	beforePad func(int64, []byte) error

	// mu guards tail[:tl], base and tl; it is held only for memory copies.
	mu   sync.Mutex
	tail []byte
	base int64 // every byte below it is on disk
	tl   int
	size atomic.Int64 // stored under mu, consistent with base

	// Writer-only.
	fileSize   int64 // -1: unknown after a failed rollback
	flushed    int   // tail bytes in the block on disk at base
	truncDirty bool  // a truncate since the last fdatasync
	verified   bool  // a write succeeded: EINVAL is not "O_DIRECT unsupported"
	res        reservation
	closed     bool
	one        [1][]byte
	plan       planner
	gate       readerGate
}

func openDirect(path string, opts Options) (_ File, err error) {
	sys := opts.Syscalls
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_DIRECT
	if opts.Mode == DirectSync {
		flags |= unix.O_DSYNC
	}
	fd, err := sys.Open(path, flags, 0o644)
	if errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("open %s: %w", path, directUnsupported(err))
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	rfd := -1
	defer func() {
		if err != nil {
			if rfd >= 0 {
				_ = sys.Close(rfd)
			}
			_ = sys.Close(fd)
		}
	}()
	// Reads need no alignment and use the page cache, which O_DIRECT keeps coherent.
	if rfd, err = sys.Open(path, unix.O_RDONLY, 0); err != nil {
		rfd = -1
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	a, err := resolveAlignment(path, opts.Alignment)
	if err != nil {
		return nil, err
	}
	bs := a.block()
	allocAlign := max(bs, 4096)
	pool := opts.Pool
	if pool == nil {
		pool = NewPool(max(bs, defaultScratchBlock), allocAlign)
	} else if pool.BlockSize()%bs != 0 || pool.Align()%a.Memory != 0 {
		return nil, fmt.Errorf("open %s: pool of %d-byte blocks aligned to %d does not fit alignment %+v", path, pool.BlockSize(), pool.Align(), a)
	}
	size, err := fileSize(sys, fd, path)
	if err != nil {
		return nil, err
	}
	f := &directFile{
		path: path, sys: sys, mode: opts.Mode, align: a, bs: bs, fd: fd, rfd: rfd,
		pool: pool, beforePad: opts.BeforePad, tail: AlignedAlloc(bs, allocAlign),
		base: size &^ int64(bs-1), fileSize: size,
	}
	f.tl = int(size - f.base)
	f.flushed = f.tl
	if err := ReadFullAt(sys, rfd, f.tail[:f.tl], f.base); err != nil {
		return nil, fmt.Errorf("open %s: read tail at %d: %w", path, f.base, err)
	}
	f.size.Store(size)
	return f, nil
}

func (f *directFile) Size() int64          { return f.size.Load() }
func (f *directFile) Alignment() Alignment { return f.align }
func (f *directFile) Path() string         { return f.path }

func (f *directFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s at %d: negative offset", f.path, off)
	}
	if !f.gate.enter() {
		return 0, errClosed("read", f.path)
	}
	defer f.gate.leave()
	f.mu.Lock()
	size, base := f.size.Load(), f.base
	if off >= size {
		f.mu.Unlock()
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), size)
	if end > base {
		from := max(off, base)
		copy(p[from-off:end-off], f.tail[from-base:end-base])
	}
	f.mu.Unlock()
	// Bytes below base never change after base is published.
	if off < base {
		if err := ReadFullAt(f.sys, f.rfd, p[:min(end, base)-off], off); err != nil {
			return 0, fmt.Errorf("read %s at %d: %w", f.path, off, err)
		}
	}
	if n := int(end - off); n < len(p) {
		return n, io.EOF
	}
	return len(p), nil
}

func (f *directFile) Sync() error {
	if f.closed {
		return errClosed("sync", f.path)
	}
	// O_DSYNC made every write and its size durable; only a truncate is not.
	if f.mode == DirectSync && !f.truncDirty {
		return nil
	}
	if err := retryEINTR(func() error { return f.sys.Fdatasync(f.fd) }); err != nil {
		return fmt.Errorf("sync %s: %w", f.path, err)
	}
	f.truncDirty = false
	return nil
}

func (f *directFile) Close() error {
	if f.closed {
		return errClosed("close", f.path)
	}
	err := f.FlushAndTruncate()
	if err == nil {
		err = f.res.release(f.sys, f.fd, f.path, f.fileSize, f.bs)
	}
	f.closed = true
	f.gate.close()
	if cerr := f.sys.Close(f.rfd); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close %s: %w", f.path, cerr))
	}
	if cerr := f.sys.Close(f.fd); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close %s: %w", f.path, cerr))
	}
	return err
}
