package directio

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// reservation is the writer-side bookkeeping behind File.Reserve, shared by both implementations.
//
// Two bounds are kept because a failed fallocate may still have allocated part of its range: known
// is what the File can count on (skipping the syscall for it), touched is what Close must give back
// so that a closed file holds no blocks past its end.
type reservation struct {
	known       int64 // blocks below this offset were allocated by a Reserve and not freed since; 0 if none
	touched     int64 // a fallocate may have allocated blocks up to this offset; 0 if none
	unsupported bool  // the filesystem has no fallocate (EOPNOTSUPP): Reserve does nothing from then on
}

// reserve allocates the blocks of [from, to) with FALLOC_FL_KEEP_SIZE; from and to are multiples of
// the File's block size. Blocks below from hold data already, and blocks below known were reserved
// before, so the syscall is skipped when they cover the range: callers may ask again cheaply.
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
		// A filesystem without fallocate (ext3 without extents, some FUSE and network filesystems)
		// allocates at write time as before; there is nothing to reserve, and asking again on every
		// append would only cost a syscall that fails the same way.
		r.unsupported = true
		return nil
	}
	r.touched = max(r.touched, to)
	return fmt.Errorf("reserve %s: allocate [%d, %d): %w", path, from, to, err)
}

// release gives back the blocks reserved past the block holding the last byte of an exact file of the
// given size, with a truncate to that same size (which frees them), so a closed file, a sealed segment
// above all, keeps no disk space it will never use. Close calls it after FlushAndTruncate.
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

// released records that a truncate freed every block past the end of the file (ext4, xfs and tmpfs
// free preallocated blocks past EOF on every truncate, even to the same size).
func (r *reservation) released() { r.known, r.touched = 0, 0 }

// lost records that the state of the blocks past the end is unknown (a truncate failed): nothing is
// counted as reserved any more, but the next FlushAndTruncate still truncates.
func (r *reservation) lost() { r.known = 0 }

// roundUp rounds n up to a multiple of bs (a power of two).
func roundUp(n int64, bs int) int64 { return (n + int64(bs) - 1) &^ (int64(bs) - 1) }

// roundDown rounds n down to a multiple of bs (a power of two).
func roundDown(n int64, bs int) int64 { return n &^ (int64(bs) - 1) }

func (f *directFile) Reserve(end int64) error {
	if f.closed {
		return errClosed("reserve", f.path)
	}
	onDisk := f.fileSize
	if onDisk < 0 {
		onDisk = f.base // a failed rollback left the end unknown; everything below base is data
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
		return nil // a failed rollback left the end unknown: the next FlushAndTruncate truncates
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
