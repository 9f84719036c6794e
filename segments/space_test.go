package segments

import (
	"bytes"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// TestFullDiskTakesBackReservations: on a 16 MiB ext4, each of 40 partitions appends one line. Each
// reserves a MiB or more ahead of its appends, so the disk is full after a dozen; an append that finds
// it full releases the other (idle) partitions, takes their reservations and succeeds.
func TestFullDiskTakesBackReservations(t *testing.T) {
	dir := smallExt4(t, "16M")
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.IdleRelease = -1
	l := openLog(t, dir, cfg)
	for i := 0; i < 40; i++ {
		p := mustPartition(t, l, fmt.Sprint("t", i), 0)
		if _, err := p.Append([]byte(fmt.Sprintf("line of topic %d\n", i))); err != nil {
			t.Fatalf("append to topic %d of 40 on 16 MiB: %v", i, err)
		}
		if err := p.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, cfg)
	for i := 0; i < 40; i++ {
		b := make([]byte, 100)
		n, _ := mustPartition(t, l, fmt.Sprint("t", i), 0).ReadAt(b, 0)
		if want := fmt.Sprintf("line of topic %d\n", i); !bytes.Equal(b[:n], []byte(want)) {
			t.Fatalf("topic %d holds %q, want %q", i, b[:n], want)
		}
	}
}

// TestFreeSpaceTrimsBusyPartition: a partition that is appending when another finds the disk full
// keeps only what it accepted reserved, and its appends go on.
func TestFreeSpaceTrimsBusyPartition(t *testing.T) {
	for _, m := range []mode{{directio.DirectSync, Deferred}, {directio.Buffered, Inline}} {
		t.Run(m.String(), func(t *testing.T) {
			cfg := testConfig(m)
			cfg.IdleRelease = -1
			l := openLog(t, t.TempDir(), cfg)
			p := mustPartition(t, l, "t", 0)
			appendPattern(t, p, 4, 5000)
			seg := p.Active()
			if got := allocatedBytes(t, seg.Path); got < 1<<20 {
				t.Fatalf("%d bytes allocated after an append, want the reservation ahead", got)
			}
			p.w.appendMu.Lock() // an append in flight: the partition cannot be released
			freed := l.freeSpace(nil)
			p.w.appendMu.Unlock()
			if got := allocatedBytes(t, seg.Path); !freed || got > 16<<10 {
				t.Fatalf("after freeSpace (freed %v): %d bytes allocated for 5000 accepted", freed, got)
			}
			appendPattern(t, p, 4, 7000)
			if err := p.Sync(); err != nil {
				t.Fatal(err)
			}
			checkStream(t, "after the trim", p, 4, 0, 12000)
		})
	}
}

func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}
