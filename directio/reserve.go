package directio

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// reservation backs Reserve. A failed fallocate may still allocate, so known is what Reserve
// skips and touched what Close frees.
type reservation struct {
	known       int64 // 0 if none
	touched     int64 // 0 if none
	unsupported bool  // fallocate returned EOPNOTSUPP
}

// reserve skips what is already reserved.
func (r *reservation) reserve(sys Syscalls, fd int, path string, from, to int64) error {
	if r.unsupported {
		return nil
	}
	from = max(from, r.known)
	if to <= from {
		return nil
	}
	err := retryEINTR(func() error { return sys.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, from, to-from) })
	switch {
	case err == nil:
		r.known, r.touched = to, max(r.touched, to)
		return nil
	case errors.Is(err, unix.EOPNOTSUPP):
		r.unsupported = true
		return nil
	}
	r.touched = max(r.touched, to)
	return fmt.Errorf("reserve %s: allocate [%d, %d): %w", path, from, to, err)
}

// release frees the blocks reserved past size, so a closed file keeps no spare space.
func (r *reservation) release(sys Syscalls, fd int, path string, size int64, bs int) error {
	if r.touched <= roundUp(size, bs) {
		return nil
	}
	if err := retryEINTR(func() error { return sys.Ftruncate(fd, size) }); err != nil {
		r.lost()
		return fmt.Errorf("release space reserved past the end of %s: truncate to %d: %w", path, size, err)
	}
	r.released()
	return nil
}

// released: ext4, xfs and tmpfs free past EOF on every truncate, even to the same size.
func (r *reservation) released() { r.known, r.touched = 0, 0 }

func (r *reservation) lost() { r.known = 0 }

func roundUp(n int64, bs int) int64 { return (n + int64(bs) - 1) &^ (int64(bs) - 1) }

func roundDown(n int64, bs int) int64 { return n &^ (int64(bs) - 1) }

func (f *directFile) Reserve(end int64) error {
	if f.closed {
		return errClosed("reserve", f.path)
	}
	onDisk := f.fileSize
	if onDisk < 0 {
		onDisk = f.base
	}
	return f.res.reserve(f.sys, f.fd, f.path, roundDown(onDisk, f.bs), roundUp(end, f.bs))
}

func (f *bufferedFile) Reserve(end int64) error {
	if f.closed {
		return errClosed("reserve", f.path)
	}
	onDisk := f.fileSize
	if onDisk < 0 {
		onDisk = f.size.Load()
	}
	bs := f.align.block()
	return f.res.reserve(f.sys, f.fd, f.path, roundDown(onDisk, bs), roundUp(end, bs))
}

func (f *directFile) Unreserve() error {
	if f.closed {
		return errClosed("unreserve", f.path)
	}
	if f.fileSize < 0 {
		return nil
	}
	return f.res.release(f.sys, f.fd, f.path, f.fileSize, f.bs)
}

func (f *bufferedFile) Unreserve() error {
	if f.closed {
		return errClosed("unreserve", f.path)
	}
	if f.fileSize < 0 {
		return nil
	}
	return f.res.release(f.sys, f.fd, f.path, f.fileSize, f.align.block())
}
