package segments

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"segfs/directio"
)

// TestFirstReadsOfASealedSegmentOpenOneDescriptor: readers racing to open a recovered segment's read
// descriptor leave exactly one open, and Close closes it.
func TestFirstReadsOfASealedSegmentOpenOneDescriptor(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(mode{directio.DirectSync, Inline})
	cfg.SegmentSize = 64 << 10
	l := openLog(t, dir, cfg)
	p := mustPartition(t, l, "fd", 0)
	appendPattern(t, p, 7, 48<<10)
	appendPattern(t, p, 7, 48<<10) // rotates: segment 0 is sealed
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seg0 := filepath.Join(dir, "fd", "0", SegmentName(0))
	for range 10 {
		l := openLog(t, dir, cfg)
		p := mustPartition(t, l, "fd", 0)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := make([]byte, 4096)
				if _, err := p.ReadSegment(0, b, 0); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if n := openDescriptors(t, seg0); n != 1 {
			t.Fatalf("%d descriptors open on %s after concurrent first reads, want 1", n, seg0)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if n := openDescriptors(t, seg0); n != 0 {
			t.Fatalf("%d descriptors still open on %s after Close", n, seg0)
		}
	}
}

// openDescriptors counts this process's descriptors open on path.
func openDescriptors(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}
