package segments

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"segfs/directio"
)

// stressDuration is SEGFS_STRESS_DURATION (make test sets it; default 3s).
func stressDuration(t *testing.T) time.Duration {
	if s := os.Getenv("SEGFS_STRESS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SEGFS_STRESS_DURATION=%q: %v", s, err)
		}
		return d
	}
	return 3 * time.Second
}

// stressModel knows the stream seed of every partition incarnation, so any byte read can be checked.
type stressModel struct {
	next  atomic.Uint64
	seeds sync.Map // *Partition -> uint64
	mu    sync.Mutex
	last  map[string]uint64 // "topic/n" -> seed of its latest incarnation
}

func (m *stressModel) seed(p *Partition) uint64 {
	if s, ok := m.seeds.Load(p); ok {
		return s.(uint64)
	}
	s, loaded := m.seeds.LoadOrStore(p, m.next.Add(1))
	if !loaded {
		m.mu.Lock()
		m.last[p.name()] = s.(uint64)
		m.mu.Unlock()
	}
	return s.(uint64)
}

type stressCounters struct {
	appends, bytes, syncs, reads, segReads, purges, deletes, rotations atomic.Int64
}

// TestStress (issue 2.3) runs random concurrent Append/Sync/ReadAt/ReadSegment/rotation/Purge/
// retention/DeletePartition/DeleteTopic for SEGFS_STRESS_DURATION under -race, and checks: every byte
// read equals the byte appended at that offset of that partition incarnation (so no read returns
// another segment's bytes), no write lands in a deleted or sealed file (writeGuardSyscalls), delete
// returns only after the flusher stopped, no goroutine leaks, and after Close and reopen every
// partition holds exactly its stream.
func TestStress(t *testing.T) {
	d := stressDuration(t)
	for _, m := range []mode{{directio.DirectSync, Deferred}, {directio.Direct, Inline}, {directio.Buffered, Deferred}} {
		t.Run(m.String(), func(t *testing.T) { runStress(t, m, d) })
	}
}

func runStress(t *testing.T, m mode, d time.Duration) {
	baseline := runtime.NumGoroutine()
	dir := t.TempDir()
	guard := newWriteGuard()
	cfg := testConfig(m)
	cfg.Syscalls = guard
	cfg.SegmentSize = 16 << 10
	cfg.MaxDirty = 256 << 10
	cfg.MaxDirtyTotal = 512 << 10
	cfg.RetentionBytes = 96 << 10
	cfg.retentionInterval = 5 * time.Millisecond
	var cnt stressCounters
	cfg.OnRotate = func(string, int, int64, int64) { cnt.rotations.Add(1) }
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	model := &stressModel{last: map[string]uint64{}}
	topics := []string{"s0", "s1"}
	const parts = 2

	// lookup returns the partition of a slot, creating topic or partition when deleted.
	lookup := func(topic string, n int, create bool) (*Partition, error) {
		tp, err := l.Topic(topic)
		if errors.Is(err, ErrNotExist) && create {
			if tp, err = l.CreateTopic(topic, parts); errors.Is(err, ErrExist) {
				tp, err = l.Topic(topic)
			}
		}
		if err != nil {
			return nil, err
		}
		p, err := tp.Partition(n)
		if errors.Is(err, ErrNotExist) && create {
			if p, err = tp.CreatePartition(n); errors.Is(err, ErrExist) {
				p, err = tp.Partition(n)
			}
		}
		return p, err
	}
	random := func(rng *rand.Rand, create bool) (*Partition, error) {
		return lookup(topics[rng.IntN(len(topics))], rng.IntN(parts), create)
	}
	gone := func(err error) bool { return errors.Is(err, ErrNotExist) }
	fail := make(chan string, 16)
	failf := func(format string, args ...any) {
		select {
		case fail <- fmt.Sprintf(format, args...):
		default:
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	worker := func(seed uint64, body func(rng *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 99))
			for {
				select {
				case <-stop:
					return
				default:
				}
				body(rng)
			}
		}()
	}
	// One appender per slot, so that the offset of each append is known before it is made.
	for ti, topic := range topics {
		for n := 0; n < parts; n++ {
			worker(uint64(10+ti*parts+n), func(rng *rand.Rand) {
				p, err := lookup(topic, n, true)
				if err != nil {
					if !gone(err) {
						failf("lookup %s/%d: %v", topic, n, err)
					}
					return
				}
				size := []int{1, 17, 511, 513, 4000, 9000, 20000, 70000}[rng.IntN(8)]
				want := p.Size()
				off, err := p.Append(pattern(model.seed(p), want, size))
				if err != nil {
					if !gone(err) {
						failf("append %s: %v", p.name(), err)
					}
					return
				}
				if off != want {
					failf("append %s: offset %d, want %d", p.name(), off, want)
				}
				cnt.appends.Add(1)
				cnt.bytes.Add(int64(size))
			})
		}
	}
	worker(20, func(rng *rand.Rand) {
		if p, err := random(rng, false); err == nil {
			if err := p.Sync(); err != nil && !gone(err) {
				failf("sync %s: %v", p.name(), err)
			}
			cnt.syncs.Add(1)
		}
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
	})
	for r := 0; r < 2; r++ {
		worker(uint64(30+r), func(rng *rand.Rand) {
			p, err := random(rng, false)
			if err != nil {
				return
			}
			seed := model.seed(p)
			b := make([]byte, 1+rng.IntN(40000))
			if rng.IntN(2) == 0 {
				off := rng.Int64N(p.Size() + 1)
				n, err := p.ReadAt(b, off)
				if err != nil && err != io.EOF && !gone(err) {
					failf("ReadAt %s: %v", p.name(), err)
				}
				if i := firstDiff(b[:n], pattern(seed, off, n)); i >= 0 {
					failf("ReadAt %s at %d: byte %d wrong", p.name(), off, off+int64(i))
				}
				cnt.reads.Add(1)
				return
			}
			segs := p.Segments()
			if len(segs) == 0 {
				return
			}
			s := segs[rng.IntN(len(segs))]
			off := rng.Int64N(s.Size + 1)
			n, err := p.ReadSegment(s.Base, b, off)
			if err != nil && err != io.EOF && !gone(err) {
				failf("ReadSegment %s@%d: %v", p.name(), s.Base, err)
			}
			if s.Sealed && int64(n) > s.Size-off {
				failf("ReadSegment %s@%d read %d bytes past its end", p.name(), s.Base, n)
			}
			if i := firstDiff(b[:n], pattern(seed, s.Base+off, n)); i >= 0 {
				failf("ReadSegment %s@%d at %d: byte %d wrong (another segment's bytes?)", p.name(), s.Base, off, off+int64(i))
			}
			cnt.segReads.Add(1)
		})
	}
	worker(40, func(rng *rand.Rand) {
		if p, err := random(rng, false); err == nil {
			if segs := p.Segments(); len(segs) > 1 {
				err := p.Purge(segs[rng.IntN(len(segs)-1)].Base)
				if err != nil && !gone(err) && !errors.Is(err, ErrActiveSegment) {
					failf("purge %s: %v", p.name(), err)
				}
				cnt.purges.Add(1)
			}
		}
		time.Sleep(time.Millisecond)
	})
	worker(50, func(rng *rand.Rand) {
		time.Sleep(time.Duration(20+rng.IntN(60)) * time.Millisecond)
		topic := topics[rng.IntN(len(topics))]
		if rng.IntN(3) == 0 {
			if err := l.DeleteTopic(topic); err != nil && !gone(err) {
				failf("DeleteTopic %s: %v", topic, err)
			}
			cnt.deletes.Add(1)
			return
		}
		tp, err := l.Topic(topic)
		if err != nil {
			return
		}
		n := rng.IntN(parts)
		p, err := tp.Partition(n)
		if err != nil {
			return
		}
		if err := tp.DeletePartition(n); err != nil {
			if !gone(err) {
				failf("DeletePartition %s: %v", p.name(), err)
			}
			return
		}
		cnt.deletes.Add(1)
		if p.w.fl.state.Load() != flusherStopped {
			failf("DeletePartition %s returned with its flusher running", p.name())
		}
		// The appender may have re-created the partition at the same path already; the old one was
		// renamed to a tombstone, which must be gone.
		if tomb := guard.tombstone(p.dir); tomb == "" {
			failf("DeletePartition %s did not rename its directory away", p.name())
		} else if _, err := os.Stat(tomb); !os.IsNotExist(err) {
			failf("DeletePartition %s: %s still there: %v", p.name(), tomb, err)
		}
		if _, err := p.Append([]byte("x")); !gone(err) {
			failf("Append after DeletePartition %s: %v", p.name(), err)
		}
	})

	select {
	case msg := <-fail:
		close(stop)
		wg.Wait()
		_ = l.Close()
		t.Fatal(msg)
	case <-time.After(d):
	}
	close(stop)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-fail:
		t.Fatal(msg)
	default:
	}
	violations, writes := guard.report()
	for _, v := range violations {
		t.Error(v)
	}
	waitGoroutines(t, baseline)
	t.Logf("%d appends (%d MiB), %d syncs, %d reads, %d segment reads, %d purges, %d deletes, %d rotations, %d writes checked",
		cnt.appends.Load(), cnt.bytes.Load()>>20, cnt.syncs.Load(), cnt.reads.Load(), cnt.segReads.Load(),
		cnt.purges.Load(), cnt.deletes.Load(), cnt.rotations.Load(), writes)
	if cnt.rotations.Load() == 0 || cnt.deletes.Load() == 0 || cnt.reads.Load() == 0 || cnt.segReads.Load() == 0 {
		t.Fatal("the stress run did not exercise rotation, delete and reads")
	}

	// Everything Close left behind is exactly each partition's stream.
	cfg.Syscalls, cfg.OnRotate = nil, nil
	l2 := openLog(t, dir, cfg)
	for _, topic := range l2.Topics() {
		tp, _ := l2.Topic(topic)
		for _, n := range tp.Partitions() {
			p, _ := tp.Partition(n)
			model.mu.Lock()
			seed, ok := model.last[p.name()]
			model.mu.Unlock()
			segs := p.Segments()
			first := segs[0].Base
			data := make([]byte, p.Size()-first)
			if n, err := p.ReadAt(data, first); n != len(data) && !gone(err) {
				t.Fatalf("reopened %s: ReadAt = %d, %v", p.name(), n, err)
			} else if gone(err) {
				continue // a purged hole in the middle; the segments around it were checked while running
			}
			if ok {
				checkPattern(t, "reopened "+p.name(), seed, first, data)
			} else if len(data) > 0 {
				t.Fatalf("reopened %s has %d bytes nobody appended", p.name(), len(data))
			}
		}
	}
}
