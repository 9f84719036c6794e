package segments

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"segfs/directio"
)

// gatedDiskSyscalls is a fault-injection seam: a disk that completes the first `allow` pwritev calls
// and holds every later one until open is called, and that counts preads, to see which reads reach
// the disk.
type gatedDiskSyscalls struct {
	directio.OS
	allow  int64
	writes atomic.Int64
	preads atomic.Int64
	once   sync.Once
	gate   chan struct{}
}

func newGatedDisk(allow int64) *gatedDiskSyscalls {
	return &gatedDiskSyscalls{allow: allow, gate: make(chan struct{})}
}

func (s *gatedDiskSyscalls) open() { s.once.Do(func() { close(s.gate) }) }

func (s *gatedDiskSyscalls) Pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	if s.writes.Add(1) > s.allow {
		<-s.gate
	}
	return s.OS.Pwritev(fd, iovs, off)
}

func (s *gatedDiskSyscalls) Pread(fd int, p []byte, off int64) (int, error) {
	s.preads.Add(1)
	return s.OS.Pread(fd, p, off)
}

// TestReadBehindServesJustWrittenBytes: while the flusher is still busy with a backlog, a consumer
// reading bytes it has just written gets them from memory, not from disk; the window stays within
// its bound; and an idle partition gives it back.
func TestReadBehindServesJustWrittenBytes(t *testing.T) {
	const piece = 256 << 10
	disk := newGatedDisk(4) // four pieces reach the disk, then it hangs
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.Syscalls = disk
	cfg.flushWriteCap = piece
	l := openLog(t, t.TempDir(), cfg)
	p := mustPartition(t, l, "rb", 0)
	defer disk.open()

	const total = 4 << 20
	appendPattern(t, p, 8, total)
	deadline := time.Now().Add(10 * time.Second)
	for p.w.dirty.Load() > total-4*piece {
		if time.Now().After(deadline) {
			t.Fatalf("flusher wrote %d bytes, want 4 pieces", total-p.w.dirty.Load())
		}
		time.Sleep(time.Millisecond)
	}
	before := disk.preads.Load()
	got := make([]byte, 4*piece)
	if n, err := p.ReadAt(got, 0); n != len(got) {
		t.Fatalf("ReadAt of the written pieces: %d bytes, %v", n, err)
	}
	checkPattern(t, "written, kept behind", 8, 0, got)
	if n := disk.preads.Load() - before; n != 0 {
		t.Fatalf("reading bytes written a moment ago took %d preads, want 0 (served from memory)", n)
	}
	if b := l.budget.behindChunks(p) * l.chunk; b != 4*piece {
		t.Fatalf("kept behind %d bytes, want %d", b, 4*piece)
	}

	disk.open()
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	if mem := memOf(p); mem != 0 {
		t.Fatalf("after Sync, with nothing pending, the partition holds %d bytes of chunks", mem)
	}
	if b := l.budget.inUse(); b != 0 {
		t.Fatalf("after Sync the log holds %d bytes of chunks", b)
	}
	all := make([]byte, total)
	if n, err := p.ReadAt(all, 0); n != total {
		t.Fatalf("ReadAt after Sync: %d bytes, %v", n, err)
	}
	checkPattern(t, "after Sync", 8, 0, all)
}

// TestReadBehindWindowIsBounded: with a disk slower than the producer, the chunks a partition keeps
// behind never exceed its window, nor all partitions' the global bound, and dirty memory stays
// within max_dirty.
func TestReadBehindWindowIsBounded(t *testing.T) {
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.Syscalls = &slowWriteSyscalls{}
	cfg.MaxDirty, cfg.MaxDirtyTotal = 8<<20, 12<<20
	cfg.flushWriteCap = 1 << 20
	l := openLog(t, t.TempDir(), cfg)
	window, global := l.budget.window, l.budget.behindLimit
	if window != 4<<20 || global != 6<<20 {
		t.Fatalf("window %d, global bound %d; want half of max_dirty and of max_dirty_total", window, global)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var worst, worstTotal atomic.Int64
	if _, err := l.CreateTopic("w", 3); err != nil {
		t.Fatal(err)
	}
	parts := []*Partition{mustPartition(t, l, "w", 0), mustPartition(t, l, "w", 1), mustPartition(t, l, "w", 2)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, p := range parts {
				worst.Store(max(worst.Load(), l.budget.behindChunks(p)*l.chunk))
			}
			worstTotal.Store(max(worstTotal.Load(), l.budget.behindBytes()))
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var producers sync.WaitGroup
	for i, p := range parts {
		producers.Add(1)
		go func() {
			defer producers.Done()
			for p.Size() < 24<<20 {
				if _, err := p.Append(pattern(uint64(i), p.Size(), 300<<10+7)); err != nil {
					t.Errorf("partition %d: %v", i, err)
					return
				}
			}
		}()
	}
	producers.Wait()
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	if worst.Load() > window || worstTotal.Load() > global {
		t.Fatalf("kept behind up to %d bytes in a partition (bound %d), %d in all (bound %d)", worst.Load(), window, worstTotal.Load(), global)
	}
	if worstTotal.Load() == 0 {
		t.Fatal("nothing was ever kept behind: the test did not exercise the window")
	}
	for i, p := range parts {
		if err := p.Sync(); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, p.Size())
		if n, err := p.ReadAt(got, 0); n != len(got) {
			t.Fatalf("partition %d: read %d of %d: %v", i, n, len(got), err)
		}
		checkPattern(t, "partition", uint64(i), 0, got)
	}
}

// behindChunks is how many chunks p's active segment keeps behind.
func (b *budget) behindChunks(p *Partition) int64 {
	if d := p.list.active().buf; d != nil {
		return d.behindChunks()
	}
	return 0
}

// behindBytes is the memory all partitions keep behind.
func (b *budget) behindBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.behind
}

// TestBackgroundSeal: a deferred rotation makes the next segment active at once and lists the old
// one as sealed, while its bytes are still on their way to disk; readers get them from memory
// meanwhile, and WaitSealed returns only once the backing file is exact.
func TestBackgroundSeal(t *testing.T) {
	disk := newGatedDisk(0) // no write completes until the gate opens
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.Syscalls = disk
	cfg.SegmentSize = 4096
	cfg.lazyKickDelay = time.Hour // small appends wait for the rotation's kick
	l := openLog(t, t.TempDir(), cfg)
	p := mustPartition(t, l, "bg", 0)
	defer disk.open()

	appendPattern(t, p, 6, 3000)
	within(t, 5*time.Second, "a rotating append", func() { appendPattern(t, p, 6, 2000) })
	segs := p.Segments()
	if len(segs) != 2 || !segs[0].Sealed || segs[0].Size != 3000 || segs[1].Base != 3000 {
		t.Fatalf("after the rotation: %s", segInfoString(segs))
	}
	got := make([]byte, 5000)
	if n, err := p.ReadAt(got, 0); n != 5000 {
		t.Fatalf("ReadAt across the segment being sealed: %d, %v", n, err)
	}
	checkPattern(t, "sealing and active", 6, 0, got)

	sealed := make(chan error, 1)
	go func() { sealed <- p.WaitSealed(0) }()
	select {
	case err := <-sealed:
		t.Fatalf("WaitSealed returned %v while the sealing segment's bytes could not reach the disk", err)
	case <-time.After(100 * time.Millisecond):
	}
	if st, err := os.Stat(segs[0].Path); err != nil || st.Size() == 3000 {
		t.Fatalf("backing file of the segment being sealed: %v, %v; the disk is held, so it cannot be complete yet", st, err)
	}
	disk.open()
	if err := <-sealed; err != nil {
		t.Fatalf("WaitSealed: %v", err)
	}
	data, err := os.ReadFile(segs[0].Path)
	if err != nil || len(data) != 3000 {
		t.Fatalf("sealed backing file: %d bytes, %v; want exactly 3000", len(data), err)
	}
	checkPattern(t, "sealed backing file", 6, 0, data)
	if err := p.WaitSealed(3000); !errors.Is(err, ErrActiveSegment) {
		t.Fatalf("WaitSealed(active) = %v, want ErrActiveSegment", err)
	}
}
