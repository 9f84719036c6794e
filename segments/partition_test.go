package segments

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"segfs/directio"
)

// TestAppendReadSync: appends of odd sizes are readable at once (memory or disk), and Sync leaves the
// segment file byte-exact with no padding, in every mode.
func TestAppendReadSync(t *testing.T) {
	for _, m := range allModes() {
		t.Run(m.String(), func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, testConfig(m))
			p := mustPartition(t, l, "orders", 0)
			const seed = 7
			if p.Unsynced() {
				t.Fatal("fresh partition is unsynced")
			}
			for _, n := range []int{1, 510, 511, 512, 513, 4095, 4097, 70000, 3} {
				appendPattern(t, p, seed, n)
				if p.Unsynced() != (m.persist != Sync) {
					t.Fatalf("Unsynced() = %v right after an append", p.Unsynced())
				}

				got := make([]byte, p.Size())
				if n, err := p.ReadAt(got, 0); n != len(got) || err != nil {
					t.Fatalf("ReadAt = %d, %v", n, err)
				}
				checkPattern(t, "ReadAt", seed, 0, got)
			}
			if err := p.Sync(); err != nil {
				t.Fatal(err)
			}
			if p.Unsynced() {
				t.Fatal("Unsynced() after Sync")
			}
			data, _ := diskContent(t, filepath.Join(dir, "orders", "0"))
			if int64(len(data)) != p.Size() {
				t.Fatalf("on disk %d bytes, want exactly %d", len(data), p.Size())
			}
			checkPattern(t, "disk", seed, 0, data)
			// Past the end: io.EOF with the bytes that exist.
			b := make([]byte, 10)
			if n, err := p.ReadAt(b, p.Size()-4); n != 4 || err != io.EOF {
				t.Fatalf("ReadAt at end-4 = %d, %v; want 4, EOF", n, err)
			}
			if n, err := p.ReadSegment(0, b, p.Size()); n != 0 || err != io.EOF {
				t.Fatalf("ReadSegment past end = %d, %v", n, err)
			}
		})
	}
}

// TestRotation: an append that would overflow a non-empty segment seals it first; an append larger
// than a segment goes alone into a fresh one; sealed files are exact, keep their inode, and OnRotate
// reports each seal.
func TestRotation(t *testing.T) {
	for _, m := range allModes() {
		t.Run(m.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(m)
			cfg.SegmentSize = 4096
			type rot struct{ sealed, active int64 }
			var rots []rot
			cfg.OnRotate = func(topic string, partition int, sealed, active int64) {
				if topic != "t" || partition != 0 {
					t.Errorf("OnRotate(%s, %d)", topic, partition)
				}
				rots = append(rots, rot{sealed, active})
			}
			l := openLog(t, dir, cfg)
			p := mustPartition(t, l, "t", 0)
			const seed = 11
			var ends []int64 // expected segment ends
			ino := p.Active().Ino
			for _, n := range []int{1000, 1000, 1000, 1000, 1000, 9000, 10, 4096, 1} {
				before := p.Active()
				off := appendPattern(t, p, seed, n)
				after := p.Active()
				if before.Size > 0 && before.Size+int64(n) > cfg.SegmentSize {
					if after.Base != off || before.Base == after.Base {
						t.Fatalf("append of %d at %d did not start a new segment: %s", n, off, segInfoString(p.Segments()))
					}
					sealed, err := p.Segment(before.Base)
					if err != nil || !sealed.Sealed || sealed.Ino != ino {
						t.Fatalf("sealed segment %+v, %v; want sealed with inode %d", sealed, err, ino)
					}
					ends = append(ends, off)
					ino = after.Ino
				} else if after.Base != before.Base {
					t.Fatalf("append of %d rotated needlessly", n)
				}
			}
			segs := p.Segments()
			if len(segs) != len(ends)+1 || len(rots) != len(ends) {
				t.Fatalf("segments %s, rotations %v, want %d seals", segInfoString(segs), rots, len(ends))
			}
			for i, s := range segs[:len(segs)-1] {
				if s.Base+s.Size != ends[i] || rots[i] != (rot{s.Base, ends[i]}) {
					t.Fatalf("segment %d: %+v, rotation %v, want end %d", i, s, rots[i], ends[i])
				}
				if err := p.WaitSealed(s.Base); err != nil {
					t.Fatalf("WaitSealed(%d): %v", s.Base, err)
				}
				st, err := os.Stat(s.Path)
				if err != nil || st.Size() != s.Size {
					t.Fatalf("sealed %s: stat size %v, %v; want exactly %d", s.Path, st.Size(), err, s.Size)
				}
				b := make([]byte, s.Size+1)
				if n, err := p.ReadSegment(s.Base, b, 0); int64(n) != s.Size || err != io.EOF {
					t.Fatalf("ReadSegment(%d) = %d, %v", s.Base, n, err)
				}
				checkPattern(t, "sealed segment", seed, s.Base, b[:s.Size])
			}
			if err := p.Sync(); err != nil {
				t.Fatal(err)
			}
			data, _ := diskContent(t, filepath.Join(dir, "t", "0"))
			checkPattern(t, "disk", seed, 0, data)
			if int64(len(data)) != p.Size() {
				t.Fatalf("disk has %d bytes, want %d", len(data), p.Size())
			}
		})
	}
}

// TestReopen: Close leaves exact files; Open recovers sizes and appends continue where they stopped.
func TestReopen(t *testing.T) {
	for _, m := range allModes() {
		t.Run(m.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(m)
			cfg.SegmentSize = 8192
			l, err := Open(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.CreateTopic("a", 2); err != nil {
				t.Fatal(err)
			}
			tp, _ := l.Topic("a")
			p, _ := tp.Partition(1)
			for i := 0; i < 20; i++ {
				appendPattern(t, p, 3, 777)
			}
			size, segs := p.Size(), len(p.Segments())
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Append([]byte("x")); !errors.Is(err, ErrClosed) {
				t.Fatalf("Append after Close: %v, want ErrClosed", err)
			}
			l2 := openLog(t, dir, cfg)
			if got := l2.Topics(); len(got) != 1 || got[0] != "a" {
				t.Fatalf("Topics() = %v", got)
			}
			tp2, _ := l2.Topic("a")
			if got := tp2.Partitions(); len(got) != 2 {
				t.Fatalf("Partitions() = %v", got)
			}
			p2, _ := tp2.Partition(1)
			if p2.Size() != size || len(p2.Segments()) != segs || p2.Unsynced() {
				t.Fatalf("reopened: size %d, %d segments, unsynced %v; want %d, %d, false", p2.Size(), len(p2.Segments()), p2.Unsynced(), size, segs)
			}
			appendPattern(t, p2, 3, 1234)
			got := make([]byte, p2.Size())
			if _, err := p2.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			checkPattern(t, "after reopen", 3, 0, got)
		})
	}
}

// TestPurge: sealed segments can be purged (file gone, reads ErrNotExist), the active one cannot.
func TestPurge(t *testing.T) {
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.SegmentSize = 1000
	l := openLog(t, t.TempDir(), cfg)
	p := mustPartition(t, l, "t", 0)
	for i := 0; i < 5; i++ {
		appendPattern(t, p, 1, 1000)
	}
	segs := p.Segments()
	if len(segs) != 5 {
		t.Fatalf("segments: %s", segInfoString(segs))
	}
	if err := p.Purge(segs[4].Base); !errors.Is(err, ErrActiveSegment) {
		t.Fatalf("Purge(active) = %v", err)
	}
	if err := p.Purge(12345); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Purge(missing) = %v", err)
	}
	for _, s := range segs[:2] {
		if err := p.Purge(s.Base); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(s.Path); !os.IsNotExist(err) {
			t.Fatalf("purged file %s: %v", s.Path, err)
		}
		if _, err := p.ReadSegment(s.Base, make([]byte, 1), 0); !errors.Is(err, ErrNotExist) {
			t.Fatalf("ReadSegment(purged) = %v", err)
		}
		if _, err := p.Segment(s.Base); !errors.Is(err, ErrNotExist) {
			t.Fatalf("Segment(purged) = %v", err)
		}
	}
	if _, err := p.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrNotExist) {
		t.Fatalf("ReadAt(purged offset) = %v", err)
	}
	b := make([]byte, 3000)
	if n, err := p.ReadAt(b, 2000); n != 3000 || err != nil {
		t.Fatalf("ReadAt(2000) = %d, %v", n, err)
	}
	checkPattern(t, "after purge", 1, 2000, b)
	// A purged middle segment leaves a hole that reads report and recovery accepts.
	if err := p.Purge(segs[3].Base); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ReadAt(b[:1], 3500); !errors.Is(err, ErrNotExist) {
		t.Fatalf("ReadAt(hole) = %v", err)
	}
	dir := l.Dir()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, cfg)
	p2 := mustPartition(t, l2, "t", 0)
	if got := p2.Segments(); len(got) != 2 || got[0].Base != 2000 || p2.Size() != 5000 {
		t.Fatalf("after reopen: %s", segInfoString(got))
	}
}
