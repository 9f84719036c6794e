package segments

import (
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// countingObserver records what the Observer is told.
type countingObserver struct {
	mu                    sync.Mutex
	appends, syncs, seals int
	flushes, flushedBytes int64
	negative              bool
}

func (o *countingObserver) Append(d time.Duration) { o.add(d, &o.appends) }
func (o *countingObserver) Sync(d time.Duration)   { o.add(d, &o.syncs) }
func (o *countingObserver) Seal(d time.Duration)   { o.add(d, &o.seals) }
func (o *countingObserver) Flush(n int64, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushes++
	o.flushedBytes += n
	o.negative = o.negative || d < 0
}

func (o *countingObserver) add(d time.Duration, n *int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	*n++
	o.negative = o.negative || d < 0
}

// TestStatsFollowAppendsSyncsAndRetention: Stats reports what the partition is (offsets, segments,
// sizes, bytes not yet durable, counters) in every mode, and the Observer hears of every append, sync
// and seal: rotations, a Sync, then a purge that moves the start offset.
func TestStatsFollowAppendsSyncsAndRetention(t *testing.T) {
	for _, m := range allModes() {
		t.Run(m.String(), func(t *testing.T) {
			obs := &countingObserver{}
			cfg := testConfig(m)
			cfg.SegmentSize = 64 << 10
			cfg.Observer = obs
			l := openLog(t, t.TempDir(), cfg)
			p := mustPartition(t, l, "t", 1)
			before := time.Now().Add(-time.Second)
			const n, size = 10, 20 << 10 // 3 appends per segment: 3 rotations
			for i := 0; i < n; i++ {
				appendPattern(t, p, 1, size)
			}
			st := p.Stats()
			if st.Topic != "t" || st.Partition != 1 || st.EndOffset != n*size || st.StartOffset != 0 ||
				st.Segments != 4 || st.SizeBytes != n*size || st.Appends != n || st.AppendedBytes != n*size {
				t.Fatalf("after %d appends of %d: %+v", n, size, st)
			}
			// Inline, the rotations' seals made the first three segments durable; deferred, they may
			// still run in the background.
			// Sync mode: every append was durable when it returned.
			if (st.UnsyncedBytes <= 0) != (m.persist == Sync) || m.persist == Inline && st.UnsyncedBytes > size {
				t.Errorf("unsynced %d before Sync; want the last segment's %d bytes at most (inline)", st.UnsyncedBytes, size)
			}
			if st.LastAppend.Before(before) || st.Health != HealthOK || st.Err != nil {
				t.Errorf("last append %v (test began %v), health %s %v", st.LastAppend, before, st.Health, st.Err)
			}
			if err := p.Sync(); err != nil {
				t.Fatal(err)
			}
			if st := p.Stats(); st.UnsyncedBytes != 0 || st.DirtyBytes != 0 {
				t.Errorf("after Sync: unsynced %d, dirty %d", st.UnsyncedBytes, st.DirtyBytes)
			}
			if err := p.Purge(0); err != nil {
				t.Fatal(err)
			}
			st = p.Stats()
			if st.StartOffset != 3*size || st.EndOffset != n*size || st.SizeBytes != (n-3)*size || st.Segments != 3 {
				t.Errorf("after purging the first segment: %+v", st)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			syncs := 1
			if m.persist == Sync {
				syncs = 0 // nothing was left for the Sync to do
			}
			if obs.appends != n || obs.seals != 3 || obs.syncs != syncs || obs.negative {
				t.Errorf("observer: %d appends, %d seals, %d syncs (negative durations: %v); want %d, 3, %d",
					obs.appends, obs.seals, obs.syncs, obs.negative, n, syncs)
			}
			if m.persist == Deferred && obs.flushedBytes != n*size {
				t.Errorf("observer: %d flushes of %d bytes; want %d bytes in all", obs.flushes, obs.flushedBytes, n*size)
			}
			if all := l.Stats(); len(all) != 2 || all[0].Partition != 0 || all[1].Partition != 1 || all[1].EndOffset != n*size {
				t.Errorf("Log.Stats: %+v", all)
			}
		})
	}
}

// TestStatsReportHealth: a deferred write on a full disk shows as stalled, with its error, until the
// disk has room; a failed write as failed; a deleted partition as closed.
func TestStatsReportHealth(t *testing.T) {
	for _, errno := range []unix.Errno{unix.ENOSPC, unix.EIO} {
		t.Run(unix.ErrnoName(errno), func(t *testing.T) {
			sys := newFaultSyscalls()
			sys.errno = errno
			cfg := testConfig(mode{directio.DirectSync, Deferred})
			cfg.Syscalls = sys
			l := openLog(t, t.TempDir(), cfg)
			p := mustPartition(t, l, "t", 0)
			appendPattern(t, p, 1, 700)
			if st := p.Stats(); st.PreallocatedBytes <= 0 || st.UnsyncedBytes != 700 {
				t.Errorf("after a deferred append: %+v; want space reserved ahead and 700 bytes not yet durable", st)
			}
			if err := p.Sync(); err != nil {
				t.Fatal(err)
			}
			sys.armed.Store(true)
			appendPattern(t, p, 1, 5000) // accepted into memory
			if err := p.Sync(); !errors.Is(err, errno) {
				t.Fatalf("Sync with the disk failing: %v", err)
			}
			want := HealthFailed
			if errno == unix.ENOSPC {
				want = HealthStalled
			}
			if st := p.Stats(); st.Health != want || !errors.Is(st.Err, errno) || st.UnsyncedBytes != 5000 {
				t.Errorf("with the disk failing: health %s, %v; unsynced %d", st.Health, st.Err, st.UnsyncedBytes)
			}
			sys.armed.Store(false)
			if errno == unix.ENOSPC {
				if err := p.Sync(); err != nil {
					t.Fatal(err)
				}
				if st := p.Stats(); st.Health != HealthOK || st.UnsyncedBytes != 0 {
					t.Errorf("once the disk has room: %+v", st)
				}
			}
			tp, _ := l.Topic("t")
			if err := tp.DeletePartition(0); err != nil {
				t.Fatal(err)
			}
			if st := p.Stats(); st.Health != HealthClosed || st.Segments != 0 {
				t.Errorf("after delete: %+v", st)
			}
			if used, limit := l.DirtyMemory(); used != 0 || limit != cfg.MaxDirtyTotal {
				t.Errorf("DirtyMemory = %d, %d; want 0, %d", used, limit, cfg.MaxDirtyTotal)
			}
		})
	}
}
