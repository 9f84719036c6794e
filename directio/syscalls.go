package directio

import (
	"math/bits"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Syscalls is the seam tests use to inject faults and record what reached the disk.
type Syscalls interface {
	Open(path string, flags int, perm uint32) (int, error)
	Pwritev(fd int, iovs [][]byte, off int64) (int, error)
	Pread(fd int, p []byte, off int64) (int, error)
	Ftruncate(fd int, size int64) error
	Fdatasync(fd int) error
	Fsync(fd int) error
	Fstat(fd int, st *unix.Stat_t) error
	// Fallocate is used only with FALLOC_FL_KEEP_SIZE.
	Fallocate(fd int, mode uint32, off, length int64) error
	Close(fd int) error
}

// OS is the real Syscalls, backed by golang.org/x/sys/unix.
type OS struct{}

var _ Syscalls = OS{}

// Open adds O_CLOEXEC so descriptors do not leak into children.
func (OS) Open(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// stackIovecs avoids the allocation unix.Pwritev makes beyond 8 iovecs.
const stackIovecs = 64

func (OS) Pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	if len(iovs) > stackIovecs {
		return unix.Pwritev(fd, iovs, off)
	}
	var vec [stackIovecs]unix.Iovec
	n := 0
	for _, b := range iovs {
		if len(b) > 0 {
			vec[n].Base = &b[0]
			vec[n].SetLen(len(b))
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	// The offset goes as two longs; the high one is 0 on 64-bit.
	lo, hi := uintptr(off), uintptr(uint64(off)>>(bits.UintSize-1)>>1)
	r, _, errno := unix.Syscall6(unix.SYS_PWRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vec[0])), uintptr(n), lo, hi, 0)
	runtime.KeepAlive(iovs)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func (OS) Pread(fd int, p []byte, off int64) (int, error) { return unix.Pread(fd, p, off) }
func (OS) Ftruncate(fd int, size int64) error             { return unix.Ftruncate(fd, size) }
func (OS) Fdatasync(fd int) error                         { return unix.Fdatasync(fd) }
func (OS) Fsync(fd int) error                             { return unix.Fsync(fd) }
func (OS) Fstat(fd int, st *unix.Stat_t) error            { return unix.Fstat(fd, st) }
func (OS) Close(fd int) error                             { return unix.Close(fd) }

func (OS) Fallocate(fd int, mode uint32, off, length int64) error {
	return unix.Fallocate(fd, mode, off, length)
}
