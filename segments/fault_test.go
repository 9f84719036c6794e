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

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// faultSyscalls is a fault-injecting Syscalls: while armed, writes to segment files fail with ENOSPC.
type faultSyscalls struct {
	directio.OS
	mu    sync.Mutex
	fds   map[int]string
	armed atomic.Bool
}

func (f *faultSyscalls) Open(path string, flags int, perm uint32) (int, error) {
	fd, err := f.OS.Open(path, flags, perm)
	if err == nil {
		f.mu.Lock()
		f.fds[fd] = path
		f.mu.Unlock()
	}
	return fd, err
}

func (f *faultSyscalls) Pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	f.mu.Lock()
	path := f.fds[fd]
	f.mu.Unlock()
	if f.armed.Load() && strings.HasSuffix(path, ".log") {
		return 0, unix.ENOSPC
	}
	return f.OS.Pwritev(fd, iovs, off)
}

// TestENOSPC: an inline append that hits ENOSPC fails with it (errors.Is), leaves the partition as it
// was and usable; a deferred flush that hits it makes Sync fail with it and the partition refuse
// further writes, and reopening recovers the prefix that reached the disk.
func TestENOSPC(t *testing.T) {
	t.Run("inline", func(t *testing.T) {
		fs := &faultSyscalls{fds: map[int]string{}}
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
	t.Run("deferred", func(t *testing.T) {
		fs := &faultSyscalls{fds: map[int]string{}}
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
		if _, err := p.Append([]byte("x")); !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("Append after a failed flush = %v, want the sticky ENOSPC", err)
		}
		got := make([]byte, 5700) // the acknowledged bytes stay readable
		if n, err := p.ReadAt(got, 0); n != 5700 {
			t.Fatalf("ReadAt after failure = %d, %v", n, err)
		}
		checkPattern(t, "readable after failure", 3, 0, got)
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
