// Package logfields holds the structured fields segfs puts on warnings and errors, so that every
// package names an errno the same way: ENOSPC, not "no space left on device" in one place and 28 in
// another.
package logfields

import (
	"errors"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Err adds err to e and, when err wraps a syscall errno, its name as the errno field.
func Err(e *logrus.Entry, err error) *logrus.Entry {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		e = e.WithField("errno", Errno(errno))
	}
	return e.WithError(err)
}

// Errno is the symbolic name of errno (ENOENT), or its text when it has none.
func Errno(errno syscall.Errno) string {
	if name := unix.ErrnoName(errno); name != "" {
		return name
	}
	return errno.Error()
}
