package tier

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// ioprio_set(2) values: the idle class gets the disk only when nobody else wants it.
const (
	ioprioWhoProcess = 1
	ioprioClassIdle  = 3
	ioprioClassShift = 13
)

// idleIO runs f with idle I/O priority, so reading a segment back for upload yields to the appends
// (mq-deadline and bfq honour it). The segment was written with O_DIRECT, so this first read is the
// one that reaches the disk.
func idleIO[T any](f func() (T, error)) (T, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	old, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(tid), 0)
	if errno == 0 {
		_, _, errno = unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassIdle<<ioprioClassShift)
	}
	if errno == 0 {
		defer unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), old)
	}
	return f()
}
