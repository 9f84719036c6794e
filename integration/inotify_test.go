package integration

import (
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestInotifyRotation: an inotify watcher of `current` gets IN_DELETE_SELF when the partition rotates,
// as a watcher of multilog's current does when it is renamed away: segfs sends the kernel
// FUSE_NOTIFY_DELETE for the retired `current`.
func TestInotifyRotation(t *testing.T) {
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=64KiB")
	mkdir(t, filepath.Join(mnt, "T"))
	cur := filepath.Join(mnt, "T", "0", "current")
	appendFile(t, cur, []byte("first line\n"))

	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, cur, unix.IN_DELETE_SELF); err != nil {
		t.Fatal(err)
	}
	appendFile(t, cur, make([]byte, 64<<10)) // does not fit: rotates
	deadline := time.Now().Add(20 * time.Second)
	buf := make([]byte, 4096)
	for time.Now().Before(deadline) {
		n, err := unix.Read(fd, buf)
		for off := 0; err == nil && off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&unix.IN_DELETE_SELF != 0 {
				return
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no IN_DELETE_SELF for %s within 20 s of a rotation", cur)
}
