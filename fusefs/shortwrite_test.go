package fusefs

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"segfs/segments"
)

// newSegmentENOSPC: creating a segment file finds the disk full.
func newSegmentENOSPC(path string, flags int) syscall.Errno {
	var st unix.Stat_t
	if flags&unix.O_CREAT != 0 && strings.HasSuffix(path, ".log") && unix.Stat(path, &st) != nil {
		return syscall.ENOSPC
	}
	return 0
}

// TestRotateOnNewlineShortWrite: with rotate_on=newline, a write() that completes a full segment's
// last line and then cannot start the next segment returns a short count: the line is in the log,
// and the retry of the rest gets ENOSPC.
func TestRotateOnNewlineShortWrite(t *testing.T) {
	faults := &faultOpen{refuse: newSegmentENOSPC}
	m := newTestMount(t, segments.Config{SegmentSize: 4096, RotateOn: segments.RotateNewline, Syscalls: faults}, Options{})
	m.mkdir("t")
	cur := m.path("t", "0", "current")
	first := append(bytes.Repeat([]byte("a"), 4070), "\nhalf a li"...)
	appendTo(t, cur, first)
	f, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	faults.armed.Store(true)
	n, err := f.Write([]byte("ne\nthe next line\n")) // os.File.Write retries the rest of a short write
	faults.armed.Store(false)
	if n != 3 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write = %d, %v; want 3 bytes written, then ENOSPC", n, err)
	}
	if got := m.readPartition("t", 0); string(got) != string(first)+"ne\n" {
		t.Fatalf("partition ends in %q, want the completed line and nothing more", got[len(got)-20:])
	}
}
