package bench

import (
	"time"

	"golang.org/x/sys/unix"
)

// The open loop's clock. A Go timer can wake up to a millisecond late: the runtime waits for timers in
// epoll_wait, whose timeout is in whole milliseconds. That lateness would be counted as the
// filesystem's latency (the corrected latency runs from the due time), and a uniform 0–1 ms error alone
// has a standard deviation of 0.29 ms. So a producer sleeps on the timer only until shortly before a
// write is due, and the rest with clock_nanosleep to an absolute CLOCK_MONOTONIC deadline, which the
// kernel keeps within its 50 µs timer slack.

// coarseMargin is how long before the due time the Go timer hands over to clock_nanosleep: more than
// the timer's lateness, so the thread blocks in the kernel for about a millisecond at most.
const coarseMargin = 2 * time.Millisecond

// monoNow is CLOCK_MONOTONIC in nanoseconds, the clock Go's own monotonic readings use.
func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // cannot fail for CLOCK_MONOTONIC
	return ts.Nano()
}

// sleepUntil returns once CLOCK_MONOTONIC reaches due (true), or early with false when stop is closed
// first. timer is the caller's, reused across calls.
func sleepUntil(due int64, stop <-chan struct{}, timer *time.Timer) bool {
	if wait := time.Duration(due - monoNow()); wait > coarseMargin {
		timer.Reset(wait - coarseMargin)
		select {
		case <-timer.C:
		case <-stop:
			return false
		}
	}
	ts := unix.NsecToTimespec(due)
	for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil) == unix.EINTR {
	}
	return true
}
