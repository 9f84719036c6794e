package segments

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// faultSyscalls is a fault-injecting Syscalls for segment files (*.log): while armed, their writes
// fail with errno (ENOSPC unless set); while noAlloc is set, fallocate fails with ENOSPC; while
// noCreate is set, creating a new segment file fails with ENOSPC. It counts fallocate calls on them.
type faultSyscalls struct {
	directio.OS
	mu         sync.Mutex
	fds        map[int]string
	armed      atomic.Bool
	errno      unix.Errno
	noAlloc    atomic.Bool
	noCreate   atomic.Bool
	fallocates atomic.Int64
}

func newFaultSyscalls() *faultSyscalls {
	return &faultSyscalls{fds: map[int]string{}, errno: unix.ENOSPC}
}

func (f *faultSyscalls) Open(path string, flags int, perm uint32) (int, error) {
	if f.noCreate.Load() && flags&unix.O_CREAT != 0 && strings.HasSuffix(path, ".log") {
		var st unix.Stat_t
		if unix.Stat(path, &st) != nil {
			return -1, unix.ENOSPC
		}
	}
	fd, err := f.OS.Open(path, flags, perm)
	if err == nil {
		f.mu.Lock()
		f.fds[fd] = path
		f.mu.Unlock()
	}
	return fd, err
}

func (f *faultSyscalls) segmentFile(fd int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.HasSuffix(f.fds[fd], ".log")
}

func (f *faultSyscalls) Pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	if f.armed.Load() && f.segmentFile(fd) {
		return 0, f.errno
	}
	return f.OS.Pwritev(fd, iovs, off)
}

func (f *faultSyscalls) Fallocate(fd int, mode uint32, off, length int64) error {
	if f.segmentFile(fd) {
		f.fallocates.Add(1)
		if f.noAlloc.Load() {
			return unix.ENOSPC
		}
	}
	return f.OS.Fallocate(fd, mode, off, length)
}

// TestENOSPC: an inline append that hits ENOSPC fails with it (errors.Is), leaves the partition as it
// was and usable. A deferred flush that hits it keeps the acknowledged bytes in memory: Sync and the
// next appends fail with it (accepting nothing) while the disk stays full, and once it has room the
// next append writes them first and goes through; nothing acknowledged is lost. Closing while the disk
// is still full reports the error, and reopening recovers the prefix that reached the disk.
func TestENOSPC(t *testing.T) {
	t.Run("inline", func(t *testing.T) {
		fs := newFaultSyscalls()
		cfg := testConfig(mode{directio.Direct, Inline})
		cfg.Syscalls = fs
		l := openLog(t, t.TempDir(), cfg)
		p := mustPartition(t, l, "f", 0)
		appendPattern(t, p, 3, 700)
		fs.armed.Store(true)
		if _, err := p.Append(pattern(3, 700, 5000)); !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("Append on a full disk = %v, want ENOSPC", err)
		}
		if p.Size() != 700 {
			t.Fatalf("size after failed append = %d, want 700", p.Size())
		}
		fs.armed.Store(false)
		appendPattern(t, p, 3, 5000)
		if err := p.Sync(); err != nil {
			t.Fatal(err)
		}
		data, _ := diskContent(t, filepath.Join(l.Dir(), "f", "0"))
		if len(data) != 5700 {
			t.Fatalf("disk holds %d bytes, want 5700", len(data))
		}
		checkPattern(t, "after ENOSPC", 3, 0, data)
	})
	deferredFull := func(t *testing.T) (*faultSyscalls, Config, string, *Log, *Partition) {
		fs := newFaultSyscalls()
		cfg := testConfig(mode{directio.DirectSync, Deferred})
		cfg.Syscalls = fs
		dir := t.TempDir()
		l, err := Open(dir, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := mustPartition(t, l, "f", 0)
		appendPattern(t, p, 3, 700)
		if err := p.Sync(); err != nil {
			t.Fatal(err)
		}
		fs.armed.Store(true)
		appendPattern(t, p, 3, 5000) // accepted into memory
		if err := p.Sync(); !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("Sync on a full disk = %v, want ENOSPC", err)
		}
		for range 2 {
			if _, err := p.Append([]byte("x")); !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("Append while acknowledged bytes cannot be written = %v, want ENOSPC", err)
			}
		}
		if p.Size() != 5700 {
			t.Fatalf("size after refused appends = %d, want 5700", p.Size())
		}
		got := make([]byte, 5700) // the acknowledged bytes stay readable
		if n, err := p.ReadAt(got, 0); n != 5700 {
			t.Fatalf("ReadAt after failure = %d, %v", n, err)
		}
		checkPattern(t, "readable after failure", 3, 0, got)
		return fs, cfg, dir, l, p
	}
	t.Run("deferred-recovers", func(t *testing.T) {
		fs, cfg, dir, l, p := deferredFull(t)
		fs.armed.Store(false) // space was freed
		appendPattern(t, p, 3, 3000)
		if err := p.Sync(); err != nil {
			t.Fatalf("Sync once the disk has room: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		cfg.Syscalls = nil
		l2 := openLog(t, dir, cfg)
		p2 := mustPartition(t, l2, "f", 0)
		data := make([]byte, p2.Size())
		if _, err := p2.ReadAt(data, 0); err != nil || len(data) != 8700 {
			t.Fatalf("reopened: %d bytes, %v; want 8700", len(data), err)
		}
		checkPattern(t, "reopened", 3, 0, data)
	})
	t.Run("deferred-close-while-full", func(t *testing.T) {
		fs, cfg, dir, l, _ := deferredFull(t)
		if err := l.Close(); !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("Close = %v, want the partition's ENOSPC", err)
		}
		fs.armed.Store(false)
		cfg.Syscalls = nil
		l2 := openLog(t, dir, cfg)
		p2 := mustPartition(t, l2, "f", 0)
		data := make([]byte, p2.Size())
		if _, err := p2.ReadAt(data, 0); err != nil || len(data) < 700 {
			t.Fatalf("reopened: %d bytes, %v", len(data), err)
		}
		checkPattern(t, "reopened", 3, 0, data)
	})
	t.Run("deferred-EIO-sticky", func(t *testing.T) {
		fs := newFaultSyscalls()
		fs.errno = unix.EIO
		cfg := testConfig(mode{directio.Direct, Deferred})
		cfg.Syscalls = fs
		l := openLog(t, t.TempDir(), cfg)
		p := mustPartition(t, l, "f", 0)
		appendPattern(t, p, 3, 700)
		// Let the flusher finish the first append before the disk breaks, so the failure is the 9000
		// bytes' own flush (and their reservation, made by this Sync, needs no fallocate).
		if err := p.Sync(); err != nil {
			t.Fatal(err)
		}
		fs.armed.Store(true)
		appendPattern(t, p, 3, 9000)
		if err := p.Sync(); !errors.Is(err, unix.EIO) {
			t.Fatalf("Sync after a failed write = %v, want EIO", err)
		}
		fs.armed.Store(false)
		if _, err := p.Append([]byte("x")); !errors.Is(err, unix.EIO) || !strings.Contains(err.Error(), "reopen to recover") {
			t.Fatalf("Append after EIO with the disk healthy again = %v, want the sticky EIO", err)
		}
	})
}

// TestConcurrentAppendsAtomic: appends from many goroutines to one partition are each written as one
// unit in one segment, and each goroutine's appends keep their call order.
func TestConcurrentAppendsAtomic(t *testing.T) {
	for _, m := range []mode{{directio.DirectSync, Deferred}, {directio.Direct, Inline}} {
		t.Run(m.String(), func(t *testing.T) {
			cfg := testConfig(m)
			cfg.SegmentSize = 20000
			l := openLog(t, t.TempDir(), cfg)
			p := mustPartition(t, l, "c", 0)
			const writers, each = 4, 150
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for seq := 0; seq < each; seq++ {
						n := 16 + (seq*37+w*101)%3000
						rec := pattern(uint64(w<<20|seq), 0, n)
						binary.LittleEndian.PutUint32(rec[0:], uint32(n))
						binary.LittleEndian.PutUint32(rec[4:], uint32(w))
						binary.LittleEndian.PutUint64(rec[8:], uint64(seq))
						if _, err := p.Append(rec); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			next := make([]int, writers)
			for _, s := range p.Segments() {
				// Appends never span segments, so every segment parses as whole records.
				data := make([]byte, s.Size)
				if _, err := p.ReadSegment(s.Base, data, 0); err != nil {
					t.Fatal(err)
				}
				for len(data) > 0 {
					n := int(binary.LittleEndian.Uint32(data))
					w := int(binary.LittleEndian.Uint32(data[4:]))
					seq := int(binary.LittleEndian.Uint64(data[8:]))
					if n < 16 || n > len(data) || w >= writers || seq != next[w] {
						t.Fatalf("segment %d: bad record (len %d, writer %d, seq %d, want seq %d)", s.Base, n, w, seq, next[w])
					}
					checkPattern(t, fmt.Sprintf("record %d/%d", w, seq), uint64(w<<20|seq), 16, data[16:n])
					next[w]++
					data = data[n:]
				}
			}
			for w, n := range next {
				if n != each {
					t.Fatalf("writer %d: %d records found, want %d", w, n, each)
				}
			}
		})
	}
}

// TestPurgeWhileSealStuckOnFullDisk: a background seal that cannot write for lack of space keeps its
// segment's bytes in memory, but must not stop Purge from freeing space by removing an older sealed
// segment, nor make WaitSealed of that older segment fail: purging is the documented way out of a
// full disk. Once space is back, the stuck seal completes with every byte.
func TestPurgeWhileSealStuckOnFullDisk(t *testing.T) {
	sys := newFaultSyscalls()
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.Syscalls = sys
	cfg.SegmentSize = 200 << 10
	cfg.lazyKickDelay = time.Hour // only rotations and Syncs start writes: the test decides when
	dir := t.TempDir()
	p := mustPartition(t, openLog(t, dir, cfg), "full", 0)
	// Two never fit in a segment, so every append after the first rotates; not a multiple of the block,
	// so every seal has a padded tail to write, which the full disk refuses.
	const n = 150<<10 + 100
	appendPattern(t, p, 3, n)
	appendPattern(t, p, 3, n) // seals segment 0
	if err := p.WaitSealed(0); err != nil {
		t.Fatal(err)
	}
	sys.armed.Store(true)
	_, _ = p.Append(pattern(3, 2*n, n)) // seals segment n; its seal hits ENOSPC (this append may too)
	if err := p.Sync(); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("Sync with the seal stuck on a full disk: %v, want ENOSPC", err)
	}
	// The segment being sealed itself still waits for its seal, and cannot be purged from under it.
	if err := p.WaitSealed(n); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("WaitSealed of the segment whose seal is stuck: %v, want ENOSPC", err)
	}
	if err := p.Purge(n); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("Purge of the segment whose seal is stuck: %v, want ENOSPC", err)
	}
	if segs := p.Segments(); len(segs) != 3 || p.list.beingSealed() == nil {
		t.Fatalf("after the refused purge: %s (seal pending %v), want 3 segments, one being sealed", segInfoString(segs), p.list.beingSealed() != nil)
	}
	if err := p.WaitSealed(0); err != nil {
		t.Fatalf("WaitSealed of a segment sealed long ago, while another seal is stuck: %v", err)
	}
	if err := p.Purge(0); err != nil {
		t.Fatalf("Purge of a sealed segment while another seal is stuck: %v", err)
	}
	sys.armed.Store(false)
	if err := p.Sync(); err != nil {
		t.Fatalf("Sync once space is back: %v", err)
	}
	if err := p.WaitSealed(n); err != nil {
		t.Fatal(err)
	}
	data, first := diskContent(t, p.dir)
	if first != n || int64(len(data)) != p.Size()-n {
		t.Fatalf("on disk: %d bytes from %d, want %d from %d", len(data), first, p.Size()-n, n)
	}
	checkPattern(t, "partition after purge", 3, n, data)
}
