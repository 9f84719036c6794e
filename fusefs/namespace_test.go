package fusefs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"segfs/segments"
)

// §1.1: mkdir MNT/T creates a topic with the default partition count; invalid names get EINVAL,
// existing ones EEXIST.
func TestMkdirTopic(t *testing.T) {
	m := newTestMount(t, segments.Config{Partitions: 3}, Options{})
	m.mkdir("orders")
	if got, want := listDir(t, m.mnt), []string{"orders"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ls MNT = %v, want %v", got, want)
	}
	if got, want := listDir(t, m.path("orders")), []string{"0", "1", "2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ls MNT/orders = %v, want %v", got, want)
	}
	if got, want := listDir(t, m.path("orders", "1")), []string{"current"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ls MNT/orders/1 = %v, want %v", got, want)
	}
	if _, err := m.log.Topic("orders"); err != nil {
		t.Fatalf("mkdir did not create the topic in the log: %v", err)
	}
	for dir, want := range map[string]string{m.mnt: ".\n..\norders\n", m.path("orders"): ".\n..\n0\n1\n2\n", m.path("orders", "0"): ".\n..\ncurrent\n"} {
		if out, err := exec.Command("ls", "-a", dir).Output(); err != nil || string(out) != want {
			t.Errorf("ls -a %s = %q, %v; want %q", dir, out, err, want)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(m.path("orders"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Fatalf("stat MNT/orders: mode %o err %v, want a directory", st.Mode, err)
	}

	for _, ok := range []string{"a", "A.b-c_d", "9", strings.Repeat("x", 255)} {
		if err := unix.Mkdir(m.path(ok), 0o755); err != nil {
			t.Errorf("mkdir %q: %v, want success", ok, err)
		}
	}
	for _, bad := range []string{".hidden", "-x", "_x", "a b", "a+b", "ü"} {
		wantErrno(t, "mkdir "+bad, unix.Mkdir(m.path(bad), 0o755), unix.EINVAL)
	}
	wantErrno(t, "mkdir of a 256-byte name", unix.Mkdir(m.path(strings.Repeat("x", 256)), 0o755), unix.ENAMETOOLONG)
	wantErrno(t, "mkdir existing topic", unix.Mkdir(m.path("orders"), 0o755), unix.EEXIST)
	wantErrno(t, "mkdir in a partition", unix.Mkdir(m.path("orders", "0", "x"), 0o755), unix.EPERM)
}

// §1.2: mkdir MNT/T/N adds partition N (decimal, no leading zeros); other names EINVAL; existing EEXIST.
func TestMkdirPartition(t *testing.T) {
	m := newTestMount(t, segments.Config{Partitions: 1}, Options{})
	m.mkdir("t")
	m.mkdir("t", "7")
	if got, want := listDir(t, m.path("t")), []string{"0", "7"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ls MNT/t = %v, want %v", got, want)
	}
	tp, _ := m.log.Topic("t")
	if got := tp.Partitions(); !reflect.DeepEqual(got, []int{0, 7}) {
		t.Fatalf("log partitions = %v, want [0 7]", got)
	}
	appendTo(t, m.path("t", "7", "current"), []byte("seven\n"))
	if got := m.readPartition("t", 7); string(got) != "seven\n" {
		t.Fatalf("partition 7 reads %q", got)
	}
	for _, bad := range []string{"07", "00", "-1", "+1", "x", "1x", " 1", "1.0", "99999999999999999999999"} {
		wantErrno(t, "mkdir t/"+bad, unix.Mkdir(m.path("t", bad), 0o755), unix.EINVAL)
	}
	wantErrno(t, "mkdir existing partition", unix.Mkdir(m.path("t", "7"), 0o755), unix.EEXIST)
	wantErrno(t, "mkdir partition of a missing topic", unix.Mkdir(m.path("nope", "1"), 0o755), unix.ENOENT)
}

// §1.3: rmdir of a partition or a topic deletes it with its data, although it lists entries.
func TestRmdirDeletesData(t *testing.T) {
	m := newTestMount(t, segments.Config{Partitions: 2}, Options{})
	m.mkdir("t")
	for i := 0; i < 3; i++ { // sealed segments and current in both partitions
		appendTo(t, m.path("t", "0", "current"), pattern(i, 40<<10))
		appendTo(t, m.path("t", "1", "current"), pattern(i, 40<<10))
	}
	seg0 := m.partition("t", 0).Segments()
	if len(seg0) < 2 {
		t.Fatalf("want sealed segments before rmdir, got %d segments", len(seg0))
	}

	if err := unix.Rmdir(m.path("t", "0")); err != nil {
		t.Fatalf("rmdir partition with segments: %v", err)
	}
	if got := listDir(t, m.path("t")); !reflect.DeepEqual(got, []string{"1"}) {
		t.Fatalf("after rmdir t/0: ls MNT/t = %v", got)
	}
	for _, s := range seg0 {
		if _, err := os.Stat(s.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("backing file %s survived rmdir of its partition: %v", s.Path, err)
		}
	}
	wantErrno(t, "stat deleted partition", unix.Access(m.path("t", "0", "current"), unix.F_OK), unix.ENOENT)

	if err := unix.Rmdir(m.path("t")); err != nil {
		t.Fatalf("rmdir topic: %v", err)
	}
	if got := listDir(t, m.mnt); len(got) != 0 {
		t.Fatalf("after rmdir t: ls MNT = %v", got)
	}
	if _, err := m.log.Topic("t"); !errors.Is(err, segments.ErrNotExist) {
		t.Fatalf("topic survives rmdir: %v", err)
	}
	wantErrno(t, "rmdir missing topic", unix.Rmdir(m.path("t")), unix.ENOENT)

	// The name is free again: a new topic starts empty.
	m.mkdir("t")
	if got := m.readPartition("t", 0); len(got) != 0 {
		t.Fatalf("recreated topic has %d bytes", len(got))
	}
	wantErrno(t, "rmdir of a segment", unix.Rmdir(m.path("t", "0", "current")), unix.ENOTDIR)
}

// A writer holding current when its topic is deleted gets ENOENT for further writes, and its close
// reports nothing (the data is gone on purpose, there is nothing left to sync).
func TestWriterOfDeletedTopic(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	w, err := os.OpenFile(m.path("t", "0", "current"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Rmdir(m.path("t")); err != nil {
		t.Fatalf("rmdir topic with an open writer: %v", err)
	}
	_, err = w.Write([]byte("y"))
	wantErrno(t, "write to a deleted partition", err, unix.ENOENT)
	if err := w.Close(); err != nil {
		t.Errorf("close of a writer of a deleted topic: %v", err)
	}
}

// §1.3: `rm -r MNT/T` succeeds: unlink of current is a no-op success, unlink of a sealed segment
// purges it, and rmdir deletes the rest.
func TestRmRecursive(t *testing.T) {
	m := newTestMount(t, segments.Config{Partitions: 2}, Options{})
	m.mkdir("t")
	for i := 0; i < 3; i++ {
		appendTo(t, m.path("t", "1", "current"), pattern(i, 40<<10))
	}
	out, err := exec.Command("rm", "-r", m.path("t")).CombinedOutput()
	if err != nil {
		t.Fatalf("rm -r MNT/t: %v: %s", err, out)
	}
	if got := listDir(t, m.mnt); len(got) != 0 {
		t.Fatalf("after rm -r: ls MNT = %v", got)
	}
	if got := m.log.Topics(); len(got) != 0 {
		t.Fatalf("after rm -r: log topics = %v", got)
	}
}

// §1.3: unlink of current succeeds, deletes nothing, and current is still there.
func TestUnlinkCurrentIsNoop(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	cur := m.path("t", "0", "current")
	appendTo(t, cur, []byte("keep me\n"))
	if err := unix.Unlink(cur); err != nil {
		t.Fatalf("unlink current: %v", err)
	}
	b, err := os.ReadFile(cur)
	if err != nil || string(b) != "keep me\n" {
		t.Fatalf("after unlink, current reads %q, %v", b, err)
	}
	appendTo(t, cur, []byte("more\n"))
	if got := m.readPartition("t", 0); string(got) != "keep me\nmore\n" {
		t.Fatalf("partition after unlink of current: %q", got)
	}
}

// §1.4: sealed segments are <20-digit base>.log, the active one is current, and `cat MNT/T/0/*`
// prints the whole partition in order.
func TestListingOrder(t *testing.T) {
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	var want bytes.Buffer
	for i := 0; i < 5; i++ {
		b := pattern(i, 30<<10)
		want.Write(b)
		appendTo(t, m.path("t", "0", "current"), b)
	}
	names := listDir(t, m.path("t", "0"))
	segs := m.partition("t", 0).Segments()
	if len(names) != len(segs) || len(segs) < 3 {
		t.Fatalf("ls = %v for %d segments, want ≥ 3 segments", names, len(segs))
	}
	for i, s := range segs {
		want := segments.SegmentName(s.Base)
		if !s.Sealed {
			want = "current"
		}
		if names[i] != want {
			t.Errorf("entry %d = %q, want %q", i, names[i], want)
		}
	}
	if got := m.readPartition("t", 0); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("cat MNT/t/0/* gives %d bytes, want the %d appended", len(got), want.Len())
	}
	out, err := exec.Command("sh", "-c", `cat "$0"/*`, m.path("t", "0")).Output()
	if err != nil || !bytes.Equal(out, want.Bytes()) {
		t.Fatalf("sh cat MNT/t/0/*: %d bytes, err %v; want %d bytes", len(out), err, want.Len())
	}
	wantErrno(t, "lookup of the active segment by base", unix.Access(m.path("t", "0", segments.SegmentName(segs[len(segs)-1].Base)), unix.F_OK), unix.ENOENT)
}
