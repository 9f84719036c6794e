package fusefs

import (
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"segfs/segments"
)

// §2.6: stat shows exact sizes (current's includes bytes not yet persisted), mtime of the last append,
// blocks and inode of the backing file.
func TestStatAttributes(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	cur := m.path("t", "0", "current")
	part := m.partition("t", 0)

	w, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, n := range []int{1, 4095, 4097, 10} { // sizes that are not block multiples: a tail in memory
		if _, err := w.Write(pattern(n, n)); err != nil {
			t.Fatal(err)
		}
		checkStat(t, cur, part.Active(), 0o644)
	}
	time.Sleep(20 * time.Millisecond)
	before := time.Now()
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(cur, &st); err != nil {
		t.Fatal(err)
	}
	if mt := time.Unix(st.Mtim.Unix()); mt.Before(before.Add(-time.Second)) || mt.After(time.Now().Add(time.Second)) {
		t.Errorf("mtime %v is not the last append (~%v)", mt, before)
	}
	if st.Size != 1+4095+4097+10+1 {
		t.Errorf("current size %d while the writer is open, want %d", st.Size, 1+4095+4097+10+1)
	}

	for i := 0; i < 2; i++ {
		if _, err := w.Write(pattern(i, 40<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range part.Segments() {
		name := cur
		mode := uint32(0o644)
		if s.Sealed {
			name, mode = m.path("t", "0", segments.SegmentName(s.Base)), 0o444
		}
		checkStat(t, name, s, mode)
	}

	// Directories.
	for _, d := range []string{m.mnt, m.path("t"), m.path("t", "0")} {
		if err := unix.Stat(d, &st); err != nil || st.Mode != unix.S_IFDIR|0o755 {
			t.Errorf("stat %s: mode %o, %v; want a 0755 directory", d, st.Mode, err)
		}
	}
}

func checkStat(t *testing.T, name string, info segments.SegmentInfo, mode uint32) {
	t.Helper()
	var st, back unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		t.Fatalf("stat %s: %v", name, err)
	}
	if err := unix.Stat(info.Path, &back); err != nil {
		t.Fatalf("stat backing %s: %v", info.Path, err)
	}
	what := fmt.Sprintf("%s (base %d)", name, info.Base)
	if st.Size != info.Size {
		t.Errorf("%s: size %d, logical size %d", what, st.Size, info.Size)
	}
	if st.Ino != back.Ino {
		t.Errorf("%s: st_ino %d, backing inode %d", what, st.Ino, back.Ino)
	}
	// Only a sealed file's blocks hold still: the active one's change as the log persists in the background.
	if info.Sealed && st.Blocks != back.Blocks {
		t.Errorf("%s: st_blocks %d, backing file has %d", what, st.Blocks, back.Blocks)
	}
	if st.Mode != unix.S_IFREG|mode {
		t.Errorf("%s: mode %o, want %o", what, st.Mode, unix.S_IFREG|mode)
	}
	if mt := time.Unix(st.Mtim.Unix()); !mt.Equal(info.ModTime) {
		t.Errorf("%s: mtime %v, segment modtime %v", what, mt, info.ModTime)
	}
}

// §2.6: statfs reports the backing filesystem.
func TestStatfsReportsBackingFilesystem(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	var got, want unix.Statfs_t
	if err := unix.Statfs(m.mnt, &got); err != nil {
		t.Fatal(err)
	}
	if err := unix.Statfs(m.data, &want); err != nil {
		t.Fatal(err)
	}
	if got.Blocks != want.Blocks || got.Bsize != want.Bsize || got.Files != want.Files || got.Namelen != want.Namelen {
		t.Errorf("statfs(mount) = blocks %d bsize %d files %d namelen %d; backing = %d %d %d %d",
			got.Blocks, got.Bsize, got.Files, got.Namelen, want.Blocks, want.Bsize, want.Files, want.Namelen)
	}
	// Free space moves with other activity on the disk; it must be in the same ballpark.
	if diff := int64(got.Bavail) - int64(want.Bavail); diff > int64(want.Blocks)/100 || diff < -int64(want.Blocks)/100 {
		t.Errorf("statfs bavail %d, backing %d", got.Bavail, want.Bavail)
	}
	m.mkdir("t")
	var sub unix.Statfs_t
	if err := unix.Statfs(m.path("t", "0", "current"), &sub); err != nil || sub.Blocks != want.Blocks {
		t.Errorf("statfs of a segment: blocks %d, %v; want %d", sub.Blocks, err, want.Blocks)
	}
}

// Options.ReadOnly: every mutation gets EROFS, reads work.
func TestReadOnlyMount(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{ReadOnly: true}, func(l *segments.Log) {
		tp, err := l.CreateTopic("t", 1)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := tp.Partition(0)
		if _, err := p.Append([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
	})
	cur := m.path("t", "0", "current")
	if b, err := os.ReadFile(cur); err != nil || string(b) != "hello\n" {
		t.Fatalf("read current on a read-only mount: %q, %v", b, err)
	}
	fd, err := unix.Open(cur, unix.O_WRONLY|unix.O_APPEND, 0)
	if err == nil {
		unix.Close(fd)
	}
	wantErrno(t, "open for append", err, unix.EROFS)
	wantErrno(t, "mkdir topic", unix.Mkdir(m.path("u"), 0o755), unix.EROFS)
	wantErrno(t, "mkdir partition", unix.Mkdir(m.path("t", "1"), 0o755), unix.EROFS)
	wantErrno(t, "unlink current", unix.Unlink(cur), unix.EROFS)
	wantErrno(t, "rmdir partition", unix.Rmdir(m.path("t", "0")), unix.EROFS)
	wantErrno(t, "rmdir topic", unix.Rmdir(m.path("t")), unix.EROFS)
	wantErrno(t, "chmod", unix.Chmod(cur, 0o600), unix.EROFS)
	wantErrno(t, "setxattr", unix.Setxattr(cur, "user.x", []byte("1"), 0), unix.EROFS)
	if _, err := m.log.Topic("t"); err != nil {
		t.Fatalf("topic gone after refused rmdir: %v", err)
	}
}
