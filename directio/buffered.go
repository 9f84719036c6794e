package directio

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// bufferedFile writes every byte with pwrite, so the file always has its logical size.
type bufferedFile struct {
	path  string
	sys   Syscalls
	fd    int
	align Alignment
	size  atomic.Int64

	fileSize int64 // -1: unknown after a failed rollback
	res      reservation
	closed   bool
	one      [1][]byte
	iovs     [][]byte
	gate     readerGate
}

func openBuffered(path string, opts Options) (_ File, err error) {
	sys := opts.Syscalls
	fd, err := sys.Open(path, unix.O_RDWR|unix.O_CREAT, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = sys.Close(fd)
		}
	}()
	a, err := resolveAlignment(path, opts.Alignment)
	if err != nil {
		return nil, err
	}
	size, err := fileSize(sys, fd, path)
	if err != nil {
		return nil, err
	}
	f := &bufferedFile{path: path, sys: sys, fd: fd, align: a, fileSize: size}
	f.size.Store(size)
	return f, nil
}

func (f *bufferedFile) Size() int64          { return f.size.Load() }
func (f *bufferedFile) Alignment() Alignment { return f.align }
func (f *bufferedFile) Path() string         { return f.path }

func (f *bufferedFile) Write(p []byte) (int, error) {
	f.one[0] = p
	n, err := f.WriteV(f.one[:])
	f.one[0] = nil
	return n, err
}

// WriteFlush is Write: a buffered file has no tail to pad.
func (f *bufferedFile) WriteFlush(p []byte) (int, error) { return f.Write(p) }

func (f *bufferedFile) WriteV(bufs [][]byte) (int, error) {
	if f.closed {
		return 0, errClosed("write", f.path)
	}
	total := 0
	f.iovs = f.iovs[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			total += len(b)
			f.iovs = append(f.iovs, b)
		}
	}
	if total == 0 {
		return 0, nil
	}
	size := f.size.Load()
	err := pwritevAll(f.sys, f.fd, f.iovs, size, 1)
	clear(f.iovs)
	if err != nil {
		return 0, f.rollback(fmt.Errorf("write %s at %d: %w", f.path, size, err))
	}
	f.fileSize = size + int64(total)
	f.size.Store(f.fileSize)
	return total, nil
}

// rollback cuts off whatever part of a failed write reached the file.
func (f *bufferedFile) rollback(cause error) error {
	if f.fileSize < 0 {
		return cause
	}
	err := retryEINTR(func() error { return f.sys.Ftruncate(f.fd, f.fileSize) })
	if err == nil {
		f.res.released()
		return cause
	}
	f.res.lost()
	err = fmt.Errorf("restore %s to %d bytes: %w", f.path, f.fileSize, err)
	f.fileSize = -1
	return errors.Join(cause, err)
}

func (f *bufferedFile) Flush() error {
	if f.closed {
		return errClosed("flush", f.path)
	}
	return nil
}

// FlushAndTruncate only truncates after a failed rollback, so a reservation survives a Sync.
func (f *bufferedFile) FlushAndTruncate() error {
	if f.closed {
		return errClosed("flush", f.path)
	}
	size := f.size.Load()
	if f.fileSize == size {
		return nil
	}
	if err := retryEINTR(func() error { return f.sys.Ftruncate(f.fd, size) }); err != nil {
		f.res.lost()
		return fmt.Errorf("truncate %s to %d: %w", f.path, size, err)
	}
	f.fileSize = size
	f.res.released()
	return nil
}

func (f *bufferedFile) Sync() error {
	if f.closed {
		return errClosed("sync", f.path)
	}
	if err := retryEINTR(func() error { return f.sys.Fdatasync(f.fd) }); err != nil {
		return fmt.Errorf("sync %s: %w", f.path, err)
	}
	return nil
}

func (f *bufferedFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s at %d: negative offset", f.path, off)
	}
	if !f.gate.enter() {
		return 0, errClosed("read", f.path)
	}
	defer f.gate.leave()
	size := f.size.Load()
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), size)
	if err := ReadFullAt(f.sys, f.fd, p[:end-off], off); err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", f.path, off, err)
	}
	if n := int(end - off); n < len(p) {
		return n, io.EOF
	}
	return len(p), nil
}

func (f *bufferedFile) Close() error {
	if f.closed {
		return errClosed("close", f.path)
	}
	err := f.FlushAndTruncate()
	if err == nil {
		err = f.res.release(f.sys, f.fd, f.path, f.fileSize, f.align.block())
	}
	f.closed = true
	f.gate.close()
	if cerr := f.sys.Close(f.fd); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close %s: %w", f.path, cerr))
	}
	return err
}
