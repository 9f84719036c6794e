package fusefs

import (
	"bytes"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"segfs/directio"
	"segfs/segments"
)

// §1.5, §1.6: on rotation the inode of current becomes <base>.log and a new inode is current; a writer
// holding current keeps appending across rotations; a reader holding an old current keeps reading its
// segment after it is sealed; everything appended reads back through the mount.
func TestRotationFollowsMultilog(t *testing.T) {
	forPersistModes(t, testRotationFollowsMultilog)
}

func testRotationFollowsMultilog(t *testing.T, persist segments.Persist) {
	m := newTestMount(t, segments.Config{Persist: persist}, Options{})
	m.mkdir("t")
	cur := m.path("t", "0", "current")
	part := m.partition("t", 0)

	w, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var all bytes.Buffer
	write := func(b []byte) {
		t.Helper()
		if n, err := w.Write(b); err != nil || n != len(b) {
			t.Fatalf("write %d bytes through the held-open writer: n=%d err=%v", len(b), n, err)
		}
		all.Write(b)
	}

	write(pattern(0, 1000))
	firstIno := statIno(t, cur)
	if want := part.Active().Ino; firstIno != want {
		t.Fatalf("current st_ino = %d, backing file inode = %d", firstIno, want)
	}
	r, err := os.Open(cur) // a reader of the first current
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	// Fill the first segment and rotate many times through the same descriptor.
	const chunk = 24 << 10
	for i := 1; all.Len() < 10*testSegmentSize; i++ {
		write(pattern(i, chunk))
	}
	segs := part.Segments()
	if len(segs) < 10 {
		t.Fatalf("want ≥ 10 segments after %d bytes, got %d", all.Len(), len(segs))
	}
	first := segs[0]
	if !first.Sealed {
		t.Fatalf("first segment not sealed: %+v", first)
	}

	// The old current is now <base>.log with the same inode; current is a new inode.
	if got := statIno(t, m.path("t", "0", segments.SegmentName(first.Base))); got != firstIno {
		t.Errorf("%s has st_ino %d, want the first current's %d", segments.SegmentName(first.Base), got, firstIno)
	}
	if got, want := statIno(t, cur), segs[len(segs)-1].Ino; got == firstIno || got != want {
		t.Errorf("current has st_ino %d after rotation, want the active segment's %d (first was %d)", got, want, firstIno)
	}
	eventually(t, "a rotation to invalidate current's dentry", func() bool { return m.notifier.notified.Load() > 0 })

	// The held reader reads exactly the first segment, sealed meanwhile, to its end.
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read old current: %v", err)
	}
	if !bytes.Equal(got, all.Bytes()[:first.Size]) {
		t.Fatalf("old current read %d bytes, want the first segment's %d", len(got), first.Size)
	}
	var st os.FileInfo
	if st, err = r.Stat(); err != nil || st.Size() != first.Size || st.Mode().Perm() != 0o444 {
		t.Fatalf("fstat old current: %v, %v; want size %d mode 0444", st, err, first.Size)
	}
	// Purged, it stays readable through the held descriptor, as an unlinked file does.
	if err := os.Remove(m.path("t", "0", segments.SegmentName(first.Base))); err != nil {
		t.Fatalf("unlink first segment: %v", err)
	}
	got = make([]byte, first.Size+100)
	if n, err := r.ReadAt(got, 0); int64(n) != first.Size || !bytes.Equal(got[:n], all.Bytes()[:first.Size]) {
		t.Fatalf("old current after purge: read %d bytes (%v), want %d", n, err, first.Size)
	}
	if st, err = r.Stat(); err != nil || st.Size() != first.Size {
		t.Fatalf("fstat old current after purge: %v, %v; want size %d", st, err, first.Size)
	}
	all.Next(int(first.Size)) // the partition now starts after the purged segment

	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
	if got := m.readPartition("t", 0); !bytes.Equal(got, all.Bytes()) {
		t.Fatalf("partition reads %d bytes through the mount, %d were appended", len(got), all.Len())
	}
	if got := part.Size(); got != first.Size+int64(all.Len()) {
		t.Fatalf("partition size %d, appended %d", got, first.Size+int64(all.Len()))
	}
	// Every backing file holds exactly its logical bytes once the writer closed.
	for _, s := range part.Segments() {
		fi, err := os.Stat(s.Path)
		if err != nil || fi.Size() != s.Size {
			t.Errorf("backing %s: %v, size %d, want %d", s.Path, err, fi.Size(), s.Size)
		}
	}
}

// §3: sealed segments are served by passthrough where the kernel offers it (no READ reaches this
// process), else from this process; the bytes are the same either way.
func TestSealedReads(t *testing.T) {
	forPersistModes(t, testSealedReads)
}

func testSealedReads(t *testing.T, persist segments.Persist) {
	var hooked atomic.Int64
	m := newTestMount(t, segments.Config{Persist: persist}, Options{SealedRead: func() { hooked.Add(1) }})
	m.mkdir("t")
	var all bytes.Buffer
	for i := 0; i < 4; i++ {
		b := pattern(i, 40<<10)
		all.Write(b)
		appendTo(t, m.path("t", "0", "current"), b)
	}
	part := m.partition("t", 0)
	for _, s := range part.Segments() {
		if !s.Sealed {
			continue
		}
		for round := 0; round < 2; round++ { // the second round may come from the page cache
			got, err := os.ReadFile(m.path("t", "0", segments.SegmentName(s.Base)))
			if err != nil || !bytes.Equal(got, all.Bytes()[s.Base:s.Base+s.Size]) {
				t.Fatalf("read %s: %d bytes, %v; want %d bytes at %d", segments.SegmentName(s.Base), len(got), err, s.Size, s.Base)
			}
		}
	}
	reads := m.ms.sealedReads.Load()
	t.Logf("passthrough offered by the kernel: %v; sealed READs served by segfs: %d", m.ms.passthrough.Load(), reads)
	if m.ms.passthrough.Load() && reads != 0 {
		t.Errorf("kernel offers passthrough but %d sealed READs reached segfs", reads)
	}
	if !m.ms.passthrough.Load() && reads == 0 {
		t.Errorf("no passthrough, yet no sealed READ reached segfs")
	}
	if hooked.Load() != reads {
		t.Errorf("Options.SealedRead was called %d times for %d sealed READs", hooked.Load(), reads)
	}
}

// §1.5: rotation looks like multilog's rename to every observer: once a listing shows a segment as
// <base>.log, opening current never gives that inode again, even while a writer rotates as fast as it can
// (segments seals a segment a moment before its successor exists).
func TestRotationIsAtomicForObservers(t *testing.T) {
	forPersistModes(t, testRotationIsAtomicForObservers)
}

func testRotationIsAtomicForObservers(t *testing.T, persist segments.Persist) {
	m := newTestMount(t, segments.Config{Persist: persist}, Options{})
	m.mkdir("t")
	dir, cur := m.path("t", "0"), m.path("t", "0", "current")
	stop := make(chan struct{})
	werr := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			werr <- err
			return
		}
		defer f.Close()
		b := pattern(7, 3000)
		for {
			select {
			case <-stop:
				werr <- nil
				return
			default:
			}
			if _, err := f.Write(b); err != nil {
				werr <- err
				return
			}
		}
	}()
	defer func() {
		close(stop)
		if err := <-werr; err != nil {
			t.Errorf("writer: %v", err)
		}
	}()
	deadline := time.Now().Add(1500 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		sealed := map[uint64]string{}
		hasCurrent := false
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				continue // purged or rotated meanwhile
			}
			if e.Name() == "current" {
				hasCurrent = true
			} else {
				sealed[info.Sys().(*syscall.Stat_t).Ino] = e.Name()
			}
		}
		if !hasCurrent {
			t.Fatalf("check %d: listing without current: %v", i, entries)
		}
		ino := statIno(t, cur)
		if name, ok := sealed[ino]; ok {
			t.Fatalf("check %d: current resolved to inode %d, listed before as sealed %s", i, ino, name)
		}
	}
	if n := len(m.partition("t", 0).Segments()); n < 10 {
		t.Fatalf("only %d segments: too few rotations to say anything", n)
	}
}

// forPersistModes runs test once per persistence mode: a deferred rotation seals the segment and
// seals it in the background, an inline one seals it first.
func forPersistModes(t *testing.T, test func(*testing.T, segments.Persist)) {
	for _, persist := range []segments.Persist{segments.Inline, segments.Deferred} {
		t.Run(persist.String(), func(t *testing.T) { test(t, persist) })
	}
}

// slowDiskSyscalls is a fault-injection seam: a disk whose every pwritev takes 20 ms more, so the
// background seal of a segment is still running when a reader opens it.
type slowDiskSyscalls struct{ directio.OS }

func (slowDiskSyscalls) Pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	time.Sleep(20 * time.Millisecond)
	return directio.OS{}.Pwritev(fd, iovs, off)
}

// TestSealingSegmentOpensComplete: in deferred mode a rotation lists the old segment at once and
// seals it in the background. Opening it right away (the kernel then reads the backing file itself,
// by passthrough) must still give every byte: the open waits for the seal.
func TestSealingSegmentOpensComplete(t *testing.T) {
	m := newTestMount(t, segments.Config{Persist: segments.Deferred, Syscalls: slowDiskSyscalls{}}, Options{})
	m.mkdir("t")
	// Held open: a close (like fsync) would make every byte durable, the sealing segment's too.
	w, err := os.OpenFile(m.path("t", "0", "current"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var all bytes.Buffer
	for i := 0; i < 8; i++ {
		b := pattern(i, 40<<10)
		all.Write(b)
		if _, err := w.Write(b); err != nil { // every other one rotates
			t.Fatal(err)
		}
		segs := m.partition("t", 0).Segments()
		if len(segs) < 2 {
			continue
		}
		sealing := segs[len(segs)-2]
		got, err := os.ReadFile(m.path("t", "0", segments.SegmentName(sealing.Base)))
		if err != nil || !bytes.Equal(got, all.Bytes()[sealing.Base:sealing.Base+sealing.Size]) {
			t.Fatalf("append %d: read %s right after the rotation: %d bytes, %v; want %d bytes", i, segments.SegmentName(sealing.Base), len(got), err, sealing.Size)
		}
	}
	if n := len(m.partition("t", 0).Segments()); n < 4 {
		t.Fatalf("only %d segments: too few rotations to say anything", n)
	}
}
