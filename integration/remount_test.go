package integration

import (
	"bytes"
	"path/filepath"
	"testing"

	"segfs/integration/internal/recstream"
)

// ioPersistModes are every io×persist combination of issue 4 §4.2.
var ioPersistModes = []struct{ name, opts string }{
	{"buffered-inline", "io=buffered,persist=inline"},
	{"buffered-deferred", "io=buffered,persist=deferred"},
	{"direct-inline", "io=direct,persist=inline"},
	{"direct-deferred", "io=direct,persist=deferred"},
	{"dsync-inline", "io=dsync,persist=inline"},
	{"dsync-deferred", "io=dsync,persist=deferred"},
}

// TestRemount: issue 5 §1.6. After unmount and mount, all content is identical, and appends continue at the
// right offset in the same active segment (same <base>.log in the data dir, growing), in every mode. Tails
// that end mid-block exercise the rebuild of the last partial block.
func TestRemount(t *testing.T) {
	for _, mode := range ioPersistModes {
		t.Run(mode.name, func(t *testing.T) { testRemount(t, "segment_size=1MiB,"+mode.opts) })
	}
}

func testRemount(t *testing.T, opts string) {
	data, mnt := newDirs(t)
	m := mountFS(t, data, mnt, opts)
	mkdir(t, filepath.Join(mnt, "T"))
	part, backing := filepath.Join(mnt, "T", "0"), filepath.Join(data, "T", "0")
	stream := recstream.NewStream(6)
	next := func(n int) []byte { b := make([]byte, n); _, _ = stream.Read(b); return b }

	var want []byte
	for _, n := range []int{300001, 500000, 400000, 777, 1000, 4097} {
		b := next(n)
		appendFile(t, filepath.Join(part, "current"), b)
		want = append(want, b...)
	}
	before, segsBefore := readPartition(t, part)
	if !bytes.Equal(before, want) {
		t.Fatalf("before remount: partition differs from the appended bytes at %d", firstDiff(before, want))
	}
	if len(segsBefore) < 2 {
		t.Fatalf("want a sealed segment and current before remount, got %v", segsBefore)
	}
	active := segsBefore[len(segsBefore)-1]

	for round := 0; round < 3; round++ {
		m.Unmount()
		if t.Failed() {
			t.FailNow()
		}
		checkBacking(t, backing, segsBefore, want)
		m = mountFS(t, data, mnt, opts)

		after, segsAfter := readPartition(t, part)
		if !bytes.Equal(after, want) {
			t.Fatalf("round %d: after remount the partition (%d bytes) differs from before (%d bytes) at %d", round, len(after), len(want), firstDiff(after, want))
		}
		if !sameSegments(segsBefore, segsAfter) {
			t.Fatalf("round %d: segments before remount %v, after %v", round, segsBefore, segsAfter)
		}

		// An append that fits: same active segment, same backing file, grown by exactly its size.
		b := next(1000 + 333*round)
		appendFile(t, filepath.Join(part, "current"), b)
		want = append(want, b...)
		got, segs := readPartition(t, part)
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: after remount and append, partition differs at byte %d (appends did not continue at offset %d?)", round, firstDiff(got, want), len(want)-len(b))
		}
		cur := segs[len(segs)-1]
		if len(segs) != len(segsBefore) || cur.Base != active.Base || cur.Size != active.Size+int64(len(b)) {
			t.Fatalf("round %d: append of %d bytes after remount: segments %v, want the active segment at base %d grown from %d bytes", round, len(b), segs, active.Base, active.Size)
		}
		checkBacking(t, backing, segs, want)
		segsBefore, active = segs, cur
	}

	// Appends keep rotating normally after all that.
	b := next(mib)
	appendFile(t, filepath.Join(part, "current"), b)
	want = append(want, b...)
	got, segs := readPartition(t, part)
	if !bytes.Equal(got, want) {
		t.Fatalf("after a rotating append, partition differs at %d", firstDiff(got, want))
	}
	if len(segs) != len(segsBefore)+1 {
		t.Errorf("1 MiB append onto a non-empty segment: want a rotation, segments %v", segs)
	}
	m.Unmount()
	checkBacking(t, backing, segs, want)
}

func sameSegments(a, b []segment) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Base != b[i].Base || a[i].Size != b[i].Size {
			return false
		}
	}
	return true
}
