package segments

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// smallExt4 loop-mounts a fresh ext4 image of size bytes (root only; the test skips without root or
// mkfs.ext4) and returns an empty data dir on it. The mount is removed at cleanup, after the Logs the
// test opens later (cleanups run last-registered first).
func smallExt4(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to loop-mount a small ext4 image")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("needs mkfs.ext4")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"truncate", "-s", size, img}, {"mkfs.ext4", "-q", "-F", img}, {"mount", "-o", "loop", img, mnt}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v; detaching lazily", mnt, err)
			_ = unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	data := filepath.Join(mnt, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	return data
}

// checkStream fails unless partition p holds exactly stream seed over [first, end).
func checkStream(t *testing.T, what string, p *Partition, seed uint64, first, end int64) {
	t.Helper()
	if p.Size() != end {
		t.Fatalf("%s: partition %s ends at %d, want %d", what, p.name(), p.Size(), end)
	}
	if segs := p.Segments(); len(segs) == 0 || segs[0].Base != first {
		t.Fatalf("%s: segments %s, want the first at %d", what, segInfoString(segs), first)
	}
	got := make([]byte, end-first)
	if n, err := p.ReadAt(got, first); n != len(got) {
		t.Fatalf("%s: ReadAt = %d, %v", what, n, err)
	}
	checkPattern(t, what, seed, first, got)
}

// TestFullDiskRealExt4 (issue 5 §3.1 at this level): on a small ext4 filesystem, in every mode, two
// partitions append records of random sizes with occasional Syncs until each has had an Append fail;
// the failure wraps ENOSPC, accepts nothing and leaves the partition usable (Sync works). Close
// succeeds, and after reopening every byte of every successful Append is there, and nothing else.
// After the oldest sealed segment of a partition is purged, its appends work again and survive another
// reopen.
func TestFullDiskRealExt4(t *testing.T) {
	for _, m := range allModes() {
		t.Run(m.String(), func(t *testing.T) {
			dir := smallExt4(t, "6M")
			cfg := testConfig(m)
			cfg.SegmentSize = 512 << 10
			l, err := Open(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.CreateTopic("t", 2); err != nil {
				t.Fatal(err)
			}
			parts := []*Partition{mustPartition(t, l, "t", 0), mustPartition(t, l, "t", 1)}
			seeds := []uint64{21, 22}
			full := []bool{false, false}
			r := rand.New(rand.NewPCG(uint64(m.io), uint64(m.persist)))
			for i := 0; !full[0] || !full[1]; i++ {
				k := i % 2
				if full[k] {
					continue
				}
				p := parts[k]
				size := p.Size()
				n := 1 + r.IntN(70000)
				off, err := p.Append(pattern(seeds[k], size, n))
				switch {
				case err == nil && off != size:
					t.Fatalf("Append offset %d, want %d", off, size)
				case errors.Is(err, unix.ENOSPC):
					full[k] = true
					if p.Size() != size {
						t.Fatalf("failed Append changed the size from %d to %d", size, p.Size())
					}
					if err := p.Sync(); err != nil {
						t.Fatalf("Sync after ENOSPC: %v", err)
					}
				case err != nil:
					t.Fatalf("Append after %d bytes: %v, want success or ENOSPC", size, err)
				}
				if i%17 == 0 {
					if err := p.Sync(); err != nil {
						t.Fatalf("Sync: %v", err)
					}
				}
				if i > 100000 {
					t.Fatal("a 6 MiB filesystem never filled up")
				}
			}
			ends := []int64{parts[0].Size(), parts[1].Size()}
			if ends[0]+ends[1] < 2<<20 {
				t.Fatalf("only %d bytes fit on a 6 MiB filesystem", ends[0]+ends[1])
			}
			for k, p := range parts {
				checkStream(t, "after ENOSPC", p, seeds[k], 0, ends[k])
			}
			if err := l.Close(); err != nil {
				t.Fatalf("Close on a full disk: %v", err)
			}

			l = openLog(t, dir, cfg)
			parts = []*Partition{mustPartition(t, l, "t", 0), mustPartition(t, l, "t", 1)}
			for k, p := range parts {
				checkStream(t, "reopened after ENOSPC", p, seeds[k], 0, ends[k])
				for _, s := range p.Segments() {
					// A seal gives the reservation back: a sealed file holds its data's blocks only
					// (plus at most an extent-tree block or two).
					if s.Sealed && s.Blocks*512 > s.Size+8<<10 {
						t.Fatalf("sealed segment %d holds %d bytes of blocks for %d bytes of data", s.Base, s.Blocks*512, s.Size)
					}
				}
			}
			// Free a sealed segment of partition 0: it can append again. (Partition 1 may or may not
			// find room: partition 0 reserves ahead of its appends, up to its segment's end.)
			segs := parts[0].Segments()
			if len(segs) < 2 || !segs[0].Sealed {
				t.Fatalf("no sealed segment to purge: %s", segInfoString(segs))
			}
			if err := parts[0].Purge(segs[0].Base); err != nil {
				t.Fatal(err)
			}
			firsts := []int64{segs[1].Base, 0}
			for range 3 {
				appendPattern(t, parts[0], seeds[0], 30000)
			}
			ends[0] = parts[0].Size()
			if err := l.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			l = openLog(t, dir, cfg)
			for k := range parts {
				checkStream(t, "after purge, append and reopen", mustPartition(t, l, "t", k), seeds[k], firsts[k], ends[k])
			}
		})
	}
}

// TestReserveFailureAcceptsNothing: in every mode, an Append whose disk space cannot be reserved
// (fallocate fails with ENOSPC through the seam) fails with ENOSPC and accepts nothing: size, reads,
// memory and, after the disk has room again, the file hold exactly the other appends. Appends that fit
// the reservation made earlier still succeed, and in steady state appends do not cost a fallocate each.
func TestReserveFailureAcceptsNothing(t *testing.T) {
	for _, m := range allModes() {
		t.Run(m.String(), func(t *testing.T) {
			fs := newFaultSyscalls()
			cfg := testConfig(m)
			cfg.Syscalls = fs
			cfg.SegmentSize = 64 << 20
			dir := t.TempDir()
			l := openLog(t, dir, cfg)
			p := mustPartition(t, l, "f", 0)
			appends, appendSize := 1000, 1000
			if m.persist == Sync {
				appends = 250 // each one is a record write and fdatasync on the test's disk
			}
			for range appends {
				appendPattern(t, p, 5, appendSize)
			}
			// Amortized means a bound set by bytes, not by appends or flusher writes (whose number
			// depends on scheduling): one reservation up front, one top-up at the flusher's first
			// write, and after that a top-up only once the reservation fell reserveStep/2 short, by
			// appends or by reserveAhead growing (by at most twice the bytes appended).
			maxFallocates := int64(2 + 3*appends*appendSize/(reserveStep/2))
			if n := fs.fallocates.Load(); n > maxFallocates {
				t.Fatalf("%d appends of %d bytes made %d fallocate calls, over %d; reservation must be amortized", appends, appendSize, n, maxFallocates)
			}
			fs.noAlloc.Store(true)
			appendPattern(t, p, 5, 1000) // within the reservation made ahead: needs no new space
			size := p.Size()
			if _, err := p.Append(pattern(5, size, 3<<20)); !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("Append with no space to reserve = %v, want ENOSPC", err)
			}
			if p.Size() != size || p.Active().Size != size {
				t.Fatalf("failed Append changed the size: %d -> %d", size, p.Size())
			}
			if m.persist == Deferred {
				if err := p.Sync(); err != nil {
					t.Fatal(err)
				}
				if mem := memOf(p); mem != 0 {
					t.Fatalf("failed Append left %d bytes of chunks held", mem)
				}
			}
			if n, err := p.ReadAt(make([]byte, 10), size); n != 0 || err == nil {
				t.Fatalf("ReadAt past the end after a failed Append = %d, %v", n, err)
			}
			fs.noAlloc.Store(false)
			appendPattern(t, p, 5, 3<<20)
			end := p.Size()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			cfg.Syscalls = nil
			checkStream(t, "reopened", mustPartition(t, openLog(t, dir, cfg), "f", 0), 5, 0, end)
		})
	}
}

// TestRotationOnFullDisk: when the segment after a sealed one cannot be created, the Append fails with
// ENOSPC but the partition is not failed: the sealed segment stays the last one, listed as the active
// segment (Sealed only once a successor exists) and readable; appends retry the creation rather than
// write to it; Sync and Close succeed. Once there is room the next Append creates the successor
// (OnRotate reports it) and everything survives a reopen, also when the Log is closed in that state.
func TestRotationOnFullDisk(t *testing.T) {
	for _, m := range allModes() {
		for _, closeWhileFull := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/close-while-full=%v", m, closeWhileFull), func(t *testing.T) {
				testRotationOnFullDisk(t, m, closeWhileFull)
			})
		}
	}
}

func testRotationOnFullDisk(t *testing.T, m mode, closeWhileFull bool) {
	fs := newFaultSyscalls()
	cfg := testConfig(m)
	cfg.Syscalls = fs
	cfg.SegmentSize = 64 << 10
	var rotations []string
	cfg.OnRotate = func(_ string, _ int, sealed, active int64) {
		rotations = append(rotations, fmt.Sprintf("%d->%d", sealed, active))
	}
	dir := t.TempDir()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := mustPartition(t, l, "r", 0)
	appendPattern(t, p, 7, 40000)
	fs.noCreate.Store(true)
	for range 2 {
		if _, err := p.Append(pattern(7, 40000, 40000)); !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("Append needing a new segment on a full disk = %v, want ENOSPC", err)
		}
	}
	segs := p.Segments()
	if len(segs) != 1 || segs[0].Sealed || segs[0].Size != 40000 || p.Active().Base != 0 || p.Size() != 40000 {
		t.Fatalf("segments after the failed rotation: %s, active %d, size %d", segInfoString(segs), p.Active().Base, p.Size())
	}
	// Inline seals before it creates the successor; deferred starts the seal only once the
	// successor exists, so there the failed rotation left it active and its bytes maybe in memory.
	exact := func(when string) {
		if st, err := os.Stat(segs[0].Path); err != nil || st.Size() != 40000 {
			t.Fatalf("%s: backing file %v, %v; want exactly 40000 bytes", when, st, err)
		}
	}
	if m.persist != Deferred {
		exact("sealed by the failed rotation")
	}
	b := make([]byte, 40000)
	if n, err := p.ReadSegment(0, b, 0); n != 40000 || (err != nil && err != io.EOF) {
		t.Fatalf("ReadSegment = %d, %v", n, err)
	}
	checkPattern(t, "sealed last segment", 7, 0, b)
	if err := p.Sync(); err != nil || p.Unsynced() {
		t.Fatalf("Sync = %v, Unsynced %v; want nil, false", err, p.Unsynced())
	}
	exact("after Sync")
	if len(rotations) != 0 {
		t.Fatalf("OnRotate called without a successor: %v", rotations)
	}
	if closeWhileFull {
		if err := l.Close(); err != nil {
			t.Fatalf("Close with the successor missing: %v", err)
		}
		fs.noCreate.Store(false)
		if l, err = Open(dir, cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		p = mustPartition(t, l, "r", 0)
	}
	fs.noCreate.Store(false)
	appendPattern(t, p, 7, 40000)
	segs = p.Segments()
	if len(segs) != 2 || !segs[0].Sealed || segs[0].Size != 40000 || segs[1].Base != 40000 || segs[1].Size != 40000 {
		t.Fatalf("segments after the retried rotation: %s", segInfoString(segs))
	}
	if want := []string{"0->40000"}; fmt.Sprint(rotations) != fmt.Sprint(want) {
		t.Fatalf("OnRotate calls %v, want %v", rotations, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.Syscalls, cfg.OnRotate = nil, nil
	p = mustPartition(t, openLog(t, dir, cfg), "r", 0)
	checkStream(t, "reopened", p, 7, 0, 80000)
	data, _ := diskContent(t, filepath.Join(dir, "r", "0"))
	checkPattern(t, "on disk", 7, 0, data)
	if len(data) != 80000 {
		t.Fatalf("disk holds %d bytes, want 80000", len(data))
	}
}
