package segments

import (
	"bytes"
	"fmt"
	"testing"

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
