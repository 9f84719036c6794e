package segments

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// waitReleased waits until p's writer has released its files.
func waitReleased(t *testing.T, p *Partition) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !p.w.idle.released.Load(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("partition %s not released after 5s idle", p.name())
		}
	}
}

// TestIdleRelease: a partition without appends for IdleRelease closes its files and gives back its
// reserved space, leaving the active segment exact on disk; reads go on from the backing file, the next
// append reopens it where it ended, and everything is there after the Log is reopened.
func TestIdleRelease(t *testing.T) {
	for _, m := range allModes() {
		t.Run(m.String(), func(t *testing.T) {
			cfg := testConfig(m)
			cfg.IdleRelease = 20 * time.Millisecond
			dir := t.TempDir()
			l := openLog(t, dir, cfg)
			p := mustPartition(t, l, "t", 0)
			appendPattern(t, p, 9, 5000) // reserves a MiB or more ahead
			waitReleased(t, p)
			if held := l.fs.fds.held(); held != 0 {
				t.Errorf("released partition: %d descriptors still open", held)
			}
			active := p.Active()
			var st unix.Stat_t
			if err := unix.Stat(active.Path, &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != 5000 || st.Blocks*512 > 8192 {
				t.Errorf("released active segment: size %d, %d bytes allocated; want 5000 exactly, no reservation", st.Size, st.Blocks*512)
			}
			b := make([]byte, 5000)
			if n, err := p.ReadAt(b, 0); n != 5000 {
				t.Fatalf("read of a released partition: %d, %v", n, err)
			}
			checkPattern(t, "released", 9, 0, b)
			appendPattern(t, p, 9, 3000)
			if p.w.idle.released.Load() {
				t.Fatal("an append did not reopen the partition")
			}
			b = make([]byte, 8000)
			if n, err := p.ReadAt(b, 0); n != 8000 {
				t.Fatalf("read after reopening: %d, %v", n, err)
			}
			checkPattern(t, "reopened", 9, 0, b)
			waitReleased(t, p)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			p = mustPartition(t, openLog(t, dir, cfg), "t", 0)
			checkStream(t, "after reopening the Log", p, 9, 0, 8000)
		})
	}
}

// TestBudgetReleasesIdlePartitions: with more partitions written (append, then Sync as a writer's
// close does) than MaxOpenFiles covers, the least recently appended ones are released to make room,
// so the descriptors held stay within the limit, and every byte is there.
func TestBudgetReleasesIdlePartitions(t *testing.T) {
	const parts, rounds, maxOpen = 30, 6, MinMaxOpenFiles
	for _, m := range []mode{{directio.DirectSync, Deferred}, {directio.Direct, Inline}, {directio.Buffered, Deferred}} {
		t.Run(m.String(), func(t *testing.T) {
			cfg := testConfig(m)
			cfg.SegmentSize, cfg.MaxOpenFiles, cfg.IdleRelease = 8192, maxOpen, -1
			dir := t.TempDir()
			l := openLog(t, dir, cfg)
			if _, err := l.CreateTopic("t", parts); err != nil {
				t.Fatal(err)
			}
			peak := 0
			for r := 0; r < rounds; r++ {
				for i := 0; i < parts; i++ {
					p := mustPartition(t, l, "t", i)
					appendPattern(t, p, uint64(i), 3000)
					if err := p.Sync(); err != nil { // as a writer's close does
						t.Fatal(err)
					}
					peak = max(peak, l.fs.fds.held())
				}
			}
			if peak > maxOpen {
				t.Errorf("%d descriptors held at once, limit %d", peak, maxOpen)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, dir, cfg)
			for i := 0; i < parts; i++ {
				checkStream(t, fmt.Sprint("partition ", i), mustPartition(t, l, "t", i), uint64(i), 0, rounds*3000)
			}
		})
	}
}
