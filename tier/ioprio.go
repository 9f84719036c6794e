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

// idleIO runs f on a thread whose disk reads have the idle I/O priority, so that reading a sealed
// segment back for its upload yields to the appends' writes on the same disk (mq-deadline and bfq
// honour it; with no I/O scheduler it changes nothing). The segment was written with O_DIRECT, so
// this read is the one that reaches the disk; the upload's second pass finds the page cache.
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
