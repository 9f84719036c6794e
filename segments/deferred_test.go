package segments

import (
	"sync"
	"testing"
	"time"

	"segfs/directio"
)

// stallSyscalls is a fault-injecting Syscalls whose pwritev and fdatasync/fsync block while stalled,
// standing in for a disk that takes forever: it proves who waits for the writer's I/O.
type stallSyscalls struct {
	directio.OS
	mu      sync.Mutex
	gate    chan struct{} // nil: not stalled; closed: release
	stalled chan struct{} // receives once per call that blocks
}

func newStallSyscalls() *stallSyscalls { return &stallSyscalls{stalled: make(chan struct{}, 1024)} }

func (s *stallSyscalls) stall() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *stallSyscalls) release() {
	s.mu.Lock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
	s.mu.Unlock()
}

func (s *stallSyscalls) wait() {
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g != nil {
		s.stalled <- struct{}{}
		<-g
	}
}

func (s *stallSyscalls) Pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	s.wait()
	return s.OS.Pwritev(fd, iovs, off)
}
func (s *stallSyscalls) Fdatasync(fd int) error { s.wait(); return s.OS.Fdatasync(fd) }
func (s *stallSyscalls) Fsync(fd int) error     { s.wait(); return s.OS.Fsync(fd) }

// within fails unless fn returns within d.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s waited for the stalled disk", what)
	}
}

// TestReadersNeverWaitForWriterIO (issue 2.1): with the disk stalled in the middle of a deferred
// flush, an inline append, or a sync, readers still get every appended byte, including those only in
// memory, and Segments/Size/Unsynced answer.
func TestReadersNeverWaitForWriterIO(t *testing.T) {
	for _, m := range []mode{{directio.DirectSync, Deferred}, {directio.Direct, Inline}, {directio.Buffered, Deferred}} {
		t.Run(m.String(), func(t *testing.T) {
			st := newStallSyscalls()
			cfg := testConfig(m)
			cfg.Syscalls = st
			l := openLog(t, t.TempDir(), cfg)
			p := mustPartition(t, l, "r", 0)
			defer st.release()
			appendPattern(t, p, 9, 100000)
			st.stall()
			writerDone := make(chan error, 1)
			go func() {
				// Inline: this append blocks in pwritev holding the file lock. Deferred: it returns,
				// and the flusher blocks instead. Then Sync blocks either way.
				_, err := p.Append(pattern(9, 100000, 50000))
				if err == nil {
					err = p.Sync()
				}
				writerDone <- err
			}()
			<-st.stalled
			readable := p.Size()
			within(t, 2*time.Second, "ReadAt", func() {
				b := make([]byte, readable)
				if n, err := p.ReadAt(b, 0); n != len(b) {
					t.Errorf("ReadAt = %d, %v", n, err)
				}
				checkPattern(t, "ReadAt while stalled", 9, 0, b)
				if n, err := p.ReadSegment(0, b[:1000], readable-1000); n != 1000 || err != nil {
					t.Errorf("ReadSegment = %d, %v", n, err)
				}
				checkPattern(t, "ReadSegment while stalled", 9, readable-1000, b[:1000])
				_ = p.Segments()
				_ = p.Unsynced()
			})
			st.release()
			if err := <-writerDone; err != nil {
				t.Fatal(err)
			}
			if err := p.Sync(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func memOf(p *Partition) int64 {
	p.log.budget.mu.Lock()
	defer p.log.budget.mu.Unlock()
	return p.w.mem.held
}

// TestDeferredMemoryBounded: appends block at MaxDirty (per partition) and MaxDirtyTotal (global) until
// the flusher catches up; an append larger than the cap is written through; idle partitions hold no
// chunk and no flusher goroutine.
func TestDeferredMemoryBounded(t *testing.T) {
	st := newStallSyscalls()
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.Syscalls = st
	cfg.MaxDirty = 256 << 10
	cfg.MaxDirtyTotal = 384 << 10
	l := openLog(t, t.TempDir(), cfg)
	if l.chunk != 64<<10 {
		t.Fatalf("chunk size %d, want 64 KiB for a 256 KiB cap", l.chunk)
	}
	if _, err := l.CreateTopic("m", 2); err != nil {
		t.Fatal(err)
	}
	a := mustPartition(t, l, "m", 0)
	b := mustPartition(t, l, "m", 1)
	defer st.release()

	st.stall()
	// a: appends of one chunk each until one blocks; memory never exceeds the cap.
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		for i := 0; i < 8; i++ {
			if _, err := a.Append(pattern(1, a.Size(), 64<<10)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case <-blocked:
		t.Fatal("8 chunks of appends did not block under a 4-chunk cap with the disk stalled")
	default:
	}
	if mem := memOf(a); mem > cfg.MaxDirty {
		t.Fatalf("partition holds %d bytes, cap %d", mem, cfg.MaxDirty)
	}
	// b: the global cap (384 KiB) is nearly used by a, so b blocks too.
	bDone := make(chan struct{})
	go func() {
		defer close(bDone)
		if _, err := b.Append(pattern(2, 0, 200<<10)); err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-bDone:
		t.Fatal("append did not block at the global cap")
	default:
	}
	l.budget.mu.Lock()
	used := l.budget.used
	l.budget.mu.Unlock()
	if used > cfg.MaxDirtyTotal {
		t.Fatalf("global dirty memory %d over cap %d", used, cfg.MaxDirtyTotal)
	}
	st.release()
	<-blocked
	<-bDone
	// Larger than the cap: written through, never buffered.
	big := pattern(1, a.Size(), 1<<20)
	off, err := a.Append(big)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(big))
	if _, err := a.ReadAt(got, off); err != nil {
		t.Fatal(err)
	}
	checkPattern(t, "write-through", 1, off, got)
	for _, p := range []*Partition{a, b} {
		if err := p.Sync(); err != nil {
			t.Fatal(err)
		}
		if mem := memOf(p); mem != 0 {
			t.Fatalf("%s holds %d bytes of chunks after Sync", p.name(), mem)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for flusherGoroutines() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := flusherGoroutines(); n > 0 {
		t.Fatalf("%d flusher goroutines still running on idle partitions", n)
	}
	all := make([]byte, a.Size())
	if _, err := a.ReadAt(all, 0); err != nil {
		t.Fatal(err)
	}
	checkPattern(t, "all", 1, 0, all)
}

// writeStallSyscalls stalls only data writes (pwritev): fsyncs, of the directory above all, go
// through, so it shows who waits for a flusher write in progress rather than for any disk call.
type writeStallSyscalls struct{ *stallSyscalls }

func (s writeStallSyscalls) Fdatasync(fd int) error { return s.OS.Fdatasync(fd) }
func (s writeStallSyscalls) Fsync(fd int) error     { return s.OS.Fsync(fd) }

// writeStalledPartition opens a dsync-deferred partition whose data writes stall on st.stall().
func writeStalledPartition(t *testing.T, topic string, segmentSize, maxDirty int64) (*stallSyscalls, *Partition) {
	t.Helper()
	st := newStallSyscalls()
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.Syscalls = writeStallSyscalls{st}
	cfg.SegmentSize = segmentSize
	cfg.MaxDirty, cfg.MaxDirtyTotal = maxDirty, maxDirty
	return st, mustPartition(t, openLog(t, t.TempDir(), cfg), topic, 0)
}

// TestRotationDoesNotWaitForFlusherWrite: in deferred mode the append that rotates lists the new
// segment and returns while the flusher is still stuck writing the old one (it used to take w.mu
// and wait for that write, the producers' worst latency); the old segment is sealed afterwards with
// every byte in order.
func TestRotationDoesNotWaitForFlusherWrite(t *testing.T) {
	st, p := writeStalledPartition(t, "rot", 4<<20, 16<<20)
	defer st.release()

	st.stall()
	appendPattern(t, p, 4, 3<<20) // a chunk's worth: the flusher starts at once
	select {
	case <-st.stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("the flusher never wrote")
	}
	// Generous for a loaded CI machine: on the old code the append waits for as long as the disk stalls.
	within(t, 10*time.Second, "rotating append", func() { appendPattern(t, p, 4, 2<<20) })
	segs := p.Segments()
	if len(segs) != 2 || !segs[0].Sealed || segs[1].Base != 3<<20 || segs[1].Size != 2<<20 {
		t.Fatalf("after the rotation: %s, want a sealing 3 MiB segment and a 2 MiB active one", segInfoString(segs))
	}
	st.release()
	if err := p.WaitSealed(0); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	data, first := diskContent(t, p.dir)
	if first != 0 || len(data) != 5<<20 {
		t.Fatalf("on disk: %d bytes from %d, want 5 MiB from 0", len(data), first)
	}
	checkPattern(t, "partition", 4, 0, data)
}

// TestStreamingAppendsRideOutAStalledWrite: a producer the disk keeps up with has little backlog, yet
// when one flusher write stalls its appends go on into memory instead of waiting, behind that write,
// for mu to reserve disk space: the reservation covers what arrives in reserveHorizon at its rate.
// (Seen in a traced bench: a 250 ms disk stall held all four producers for 245 ms in reserveFor.)
func TestStreamingAppendsRideOutAStalledWrite(t *testing.T) {
	st, p := writeStalledPartition(t, "stream", 1<<30, 32<<20)
	defer st.release()

	// About 40 MB/s for a second and a half, each append a chunk or more: the flusher keeps up.
	const piece = 256 << 10
	start := time.Now()
	for i := 0; time.Since(start) < 1500*time.Millisecond; i++ {
		appendPattern(t, p, 5, piece)
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * piece * time.Second / (40 << 20))))
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	streamed := p.Size()
	t.Logf("streamed %d bytes in %v", streamed, time.Since(start))

	st.stall()
	appendPattern(t, p, 5, piece)
	select {
	case <-st.stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("the flusher never wrote")
	}
	// 6 MiB: well inside max_dirty and below pacing's floor, far past what a backlog-sized
	// reservation (a few hundred KiB of recent writes) would cover.
	within(t, 10*time.Second, "append during a stalled flusher write", func() {
		for range 24 {
			appendPattern(t, p, 5, piece)
		}
	})
	st.release()
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	data, first := diskContent(t, p.dir)
	if first != 0 || int64(len(data)) != streamed+25*piece {
		t.Fatalf("on disk: %d bytes from %d, want %d from 0", len(data), first, streamed+25*piece)
	}
	checkPattern(t, "partition", 5, 0, data)
}
