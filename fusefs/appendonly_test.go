package fusefs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"segfs/segments"
)

// §2.1: writing current requires O_APPEND; O_TRUNC is refused; `>` fails, `>>` works.
func TestOpenCurrentRequiresAppend(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	cur := m.path("t", "0", "current")
	for _, c := range []struct {
		name  string
		flags int
	}{
		{"O_WRONLY", unix.O_WRONLY},
		{"O_RDWR", unix.O_RDWR},
		{"O_WRONLY|O_TRUNC", unix.O_WRONLY | unix.O_TRUNC},
		{"O_WRONLY|O_APPEND|O_TRUNC", unix.O_WRONLY | unix.O_APPEND | unix.O_TRUNC},
		{"O_RDONLY|O_TRUNC", unix.O_RDONLY | unix.O_TRUNC},
		{"O_WRONLY|O_CREAT", unix.O_WRONLY | unix.O_CREAT},
	} {
		fd, err := unix.Open(cur, c.flags, 0o644)
		if err == nil {
			unix.Close(fd)
		}
		wantErrno(t, "open current "+c.name, err, unix.EPERM)
	}
	for _, flags := range []int{unix.O_WRONLY | unix.O_APPEND, unix.O_RDWR | unix.O_APPEND, unix.O_WRONLY | unix.O_APPEND | unix.O_CREAT, unix.O_RDONLY} {
		fd, err := unix.Open(cur, flags, 0o644)
		if err != nil {
			t.Errorf("open current flags %#x: %v, want success", flags, err)
			continue
		}
		unix.Close(fd)
	}

	out, err := exec.Command("sh", "-c", `echo one >> "$0" && echo two >> "$0"`, cur).CombinedOutput()
	if err != nil {
		t.Fatalf("sh >>: %v: %s", err, out)
	}
	out, err = exec.Command("sh", "-c", `echo clobber > "$0"`, cur).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Operation not permitted") {
		t.Fatalf("sh > current: err %v, output %q; want failure with \"Operation not permitted\"", err, out)
	}
	if got := m.readPartition("t", 0); string(got) != "one\ntwo\n" {
		t.Fatalf("partition = %q, want \"one\\ntwo\\n\"", got)
	}
}

// §2.2: each write() lands whole at the end, whatever offset the kernel passes (pwrite offsets, a
// second descriptor whose idea of the size is stale).
func TestWritesAppendAtEnd(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	cur := m.path("t", "0", "current")
	a, err := unix.Open(cur, unix.O_WRONLY|unix.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(a)
	b, err := unix.Open(cur, unix.O_RDWR|unix.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(b)
	steps := []struct {
		fd  int
		off int64
		s   string
	}{{a, -1, "a1;"}, {b, -1, "b1;"}, {a, 0, "a2@0;"}, {b, 1, "b2@1;"}, {a, 1 << 40, "a3@1T;"}}
	var want string
	for _, s := range steps {
		var n int
		var err error
		if s.off < 0 {
			n, err = unix.Write(s.fd, []byte(s.s))
		} else {
			n, err = unix.Pwrite(s.fd, []byte(s.s), s.off)
		}
		if err != nil || n != len(s.s) {
			t.Fatalf("write %q: n=%d err=%v", s.s, n, err)
		}
		want += s.s
	}
	if got := m.readPartition("t", 0); string(got) != want {
		t.Fatalf("partition = %q, want %q", got, want)
	}
}

// §2.2: concurrent writers never interleave within one write(), and nothing is lost across rotations.
func TestConcurrentWritersDoNotInterleave(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	cur := m.path("t", "0", "current")
	const writers, records = 4, 60
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			f, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			for i := 0; i < records; i++ {
				if _, err := f.Write(record(w, i)); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	data := m.readPartition("t", 0)
	seen := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var w, i, n int
		var body string
		if _, err := fmt.Sscanf(string(line), "w%d-%d-%d:%s", &w, &i, &n, &body); err != nil {
			t.Fatalf("garbled record %.80q: %v", line, err)
		}
		if !bytes.Equal(append(line, '\n'), record(w, i)) {
			t.Fatalf("record w%d-%d is torn or interleaved: %.80q", w, i, line)
		}
		seen[fmt.Sprint(w, i)] = true
	}
	if len(seen) != writers*records {
		t.Fatalf("found %d distinct records, want %d", len(seen), writers*records)
	}
	if segs := m.partition("t", 0).Segments(); len(segs) < 3 {
		t.Fatalf("want rotations during the test, got %d segments", len(segs))
	}
}

// record is one write(): a header naming it and a body whose length depends on it.
func record(w, i int) []byte {
	n := 200 + (w*7919+i*104729)%7000
	body := bytes.Repeat([]byte{byte('a' + (w+i)%26)}, n)
	return []byte(fmt.Sprintf("w%d-%d-%d:%s\n", w, i, n, body))
}

// §2.3: sealed segments are 0444, refuse writing with EPERM, and unlink purges them.
func TestSealedSegmentsReadOnly(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	for i := 0; i < 3; i++ {
		appendTo(t, m.path("t", "0", "current"), pattern(i, 40<<10))
	}
	part := m.partition("t", 0)
	first := part.Segments()[0]
	if !first.Sealed {
		t.Fatalf("segment %d not sealed", first.Base)
	}
	name := m.path("t", "0", segments.SegmentName(first.Base))
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != unix.S_IFREG|0o444 {
		t.Errorf("sealed mode = %o, want %o", st.Mode, unix.S_IFREG|0o444)
	}
	for _, flags := range []int{unix.O_WRONLY, unix.O_RDWR, unix.O_WRONLY | unix.O_APPEND, unix.O_RDWR | unix.O_APPEND, unix.O_RDONLY | unix.O_TRUNC} {
		fd, err := unix.Open(name, flags, 0)
		if err == nil {
			unix.Close(fd)
		}
		wantErrno(t, fmt.Sprintf("open sealed flags %#x", flags), err, unix.EPERM)
	}
	wantErrno(t, "truncate sealed", unix.Truncate(name, 0), unix.EPERM)

	// A reader that has it open keeps reading after the purge, as with any unlinked file.
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Unlink(name); err != nil {
		t.Fatalf("unlink sealed segment: %v", err)
	}
	if _, err := part.Segment(first.Base); !errors.Is(err, segments.ErrNotExist) {
		t.Fatalf("segment %d survives unlink: %v", first.Base, err)
	}
	if _, err := os.Stat(first.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("backing file %s survives unlink: %v", first.Path, err)
	}
	wantErrno(t, "stat purged", unix.Access(name, unix.F_OK), unix.ENOENT)
	for _, n := range listDir(t, m.path("t", "0")) {
		if n == segments.SegmentName(first.Base) {
			t.Fatalf("purged segment still listed")
		}
	}
	b := make([]byte, first.Size+10)
	n, err := f.ReadAt(b, 0)
	if int64(n) != first.Size || !bytes.Equal(b[:n], pattern(0, int(first.Size))) {
		t.Fatalf("read of purged segment through an open fd: %d bytes, %v", n, err)
	}
	wantErrno(t, "unlink purged again", unix.Unlink(name), unix.ENOENT)
}

// §2.5: close and fsync leave the backing file exact; a reader's close does not sync the writer's
// bytes behind its back (it costs no I/O).
func TestFlushAndFsyncMakeBackingExact(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	cur := m.path("t", "0", "current")
	part := m.partition("t", 0)
	f, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("12345")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync current: %v", err)
	}
	checkBackingExact(t, part, 5)
	if _, err := f.Write([]byte("678")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close current: %v", err)
	}
	checkBackingExact(t, part, 8)

	// Readers: fsync on a read-only descriptor is allowed and syncs too.
	r, err := os.Open(cur)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(); err != nil {
		t.Fatalf("fsync of a reader: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("close of a reader: %v", err)
	}
}

func checkBackingExact(t *testing.T, part *segments.Partition, size int64) {
	t.Helper()
	if part.Unsynced() {
		t.Errorf("partition still has unsynced bytes after close/fsync")
	}
	a := part.Active()
	var st unix.Stat_t
	if err := unix.Stat(a.Path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size || a.Size != size {
		t.Errorf("backing file %d bytes, logical %d, want both %d", st.Size, a.Size, size)
	}
}

// §2.4: truncate, rename, link, symlink, mknod, setxattr, chmod/chown, explicit times and creating
// names get EPERM (setxattr in every namespace, POSIX ACLs included); touch (times to now) is accepted.
func TestRefusedOperations(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	m.mkdir("u")
	for i := 0; i < 2; i++ {
		appendTo(t, m.path("t", "0", "current"), pattern(i, 40<<10))
	}
	cur := m.path("t", "0", "current")
	sealed := m.path("t", "0", segments.SegmentName(0))
	part, topic := m.path("t", "0"), m.path("t")
	before := m.readPartition("t", 0)

	wantErrno(t, "truncate current", unix.Truncate(cur, 0), unix.EPERM)
	wantErrno(t, "truncate current to grow", unix.Truncate(cur, 1<<20), unix.EPERM)
	fd, err := unix.Open(cur, unix.O_WRONLY|unix.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "ftruncate current", unix.Ftruncate(fd, 0), unix.EPERM)
	wantErrno(t, "fallocate current", unix.Fallocate(fd, 0, 0, 1<<20), unix.EOPNOTSUPP)
	unix.Close(fd)
	tmp, err := unix.Open(part, unix.O_WRONLY|unix.O_TMPFILE, 0o644)
	if err == nil {
		unix.Close(tmp)
	}
	wantErrno(t, "O_TMPFILE in a partition", err, unix.EOPNOTSUPP)

	for _, c := range []struct{ what, from, to string }{
		{"rename current", cur, part + "/x"},
		{"rename sealed", sealed, part + "/x"},
		{"rename sealed over current", sealed, cur},
		{"rename partition", part, topic + "/9"},
		{"rename topic", topic, m.path("v")},
		{"rename topic over topic", topic, m.path("u")},
	} {
		wantErrno(t, c.what, unix.Rename(c.from, c.to), unix.EPERM)
	}
	wantErrno(t, "link current", unix.Link(cur, part+"/x"), unix.EPERM)
	wantErrno(t, "link sealed into another partition", unix.Link(sealed, m.path("u", "0", "x")), unix.EPERM)
	wantErrno(t, "symlink in partition", unix.Symlink("current", part+"/x"), unix.EPERM)
	wantErrno(t, "symlink in root", unix.Symlink("t", m.path("x")), unix.EPERM)
	wantErrno(t, "mkfifo in partition", unix.Mkfifo(part+"/x", 0o644), unix.EPERM)
	wantErrno(t, "mknod in topic", unix.Mknod(topic+"/x", unix.S_IFREG|0o644, 0), unix.EPERM)
	for _, dir := range []string{part, topic, m.mnt} {
		fd, err := unix.Open(dir+"/newfile", unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND, 0o644)
		if err == nil {
			unix.Close(fd)
		}
		wantErrno(t, "create in "+dir, err, unix.EPERM)
	}
	for _, name := range []string{cur, sealed, part, topic} {
		wantErrno(t, "chmod "+name, unix.Chmod(name, 0o600), unix.EPERM)
		wantErrno(t, "chown "+name, unix.Chown(name, 1, 1), unix.EPERM)
		wantErrno(t, "setxattr user "+name, unix.Setxattr(name, "user.x", []byte("1"), 0), unix.EPERM)
		wantErrno(t, "setxattr trusted "+name, unix.Setxattr(name, "trusted.x", []byte("1"), 0), unix.EPERM)
		wantErrno(t, "removexattr "+name, unix.Removexattr(name, "user.x"), unix.EPERM)
		// The kernel passes ACLs of a mount in the initial user namespace on as plain xattrs.
		wantErrno(t, "setxattr posix acl "+name, unix.Setxattr(name, "system.posix_acl_access", []byte{2, 0, 0, 0}, 0), unix.EPERM)
		_, err := unix.Getxattr(name, "user.x", make([]byte, 16))
		wantErrno(t, "getxattr "+name, err, unix.ENODATA)
		past := []unix.Timespec{unix.NsecToTimespec(1e9), unix.NsecToTimespec(1e9)}
		wantErrno(t, "utimes explicit "+name, unix.UtimesNano(name, past), unix.EPERM)
		now := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, name, now, 0); err != nil { // touch
			t.Errorf("touch %s: %v, want success (times to now are allowed on append-only inodes)", name, err)
		}
	}
	if got := m.readPartition("t", 0); !bytes.Equal(got, before) {
		t.Fatalf("refused operations changed the partition: %d bytes, had %d", len(got), len(before))
	}
	if got := listDir(t, part); len(got) != 2 {
		t.Fatalf("refused operations changed the listing: %v", got)
	}
}

// A segment purged behind the kernel's back (retention) stops resolving at the first failed access,
// although sealed names are cached for long.
func TestPurgeBehindKernelDropsName(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	for i := 0; i < 2; i++ {
		appendTo(t, m.path("t", "0", "current"), pattern(i, 40<<10))
	}
	name := m.path("t", "0", segments.SegmentName(0))
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil { // the kernel now caches the name and attributes
		t.Fatal(err)
	}
	if err := m.partition("t", 0).Purge(0); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(name, unix.O_RDONLY, 0)
	if err == nil {
		unix.Close(fd)
	}
	wantErrno(t, "open purged segment", err, unix.ENOENT)
	eventually(t, "the purged name to disappear", func() bool {
		return errors.Is(unix.Stat(name, &st), unix.ENOENT)
	})
}
