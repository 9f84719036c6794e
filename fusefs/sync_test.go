package fusefs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"segfs/segments"
)

// TestSyncMountAnswersFsyncENOSYSOnce: on a persist=sync mount every write() is durable when it
// returns, so the first FSYNC is answered ENOSYS and the kernel answers every later fsync(2) itself
// (0, no request); FLUSH likewise. Every fsync still succeeds for the caller.
func TestSyncMountAnswersFsyncENOSYSOnce(t *testing.T) {
	cfg := segments.DefaultConfig()
	cfg.Persist = segments.Sync
	m := newTestMount(t, cfg, Options{})
	m.mkdir("s")
	cur := m.path("s", "0", "current")
	f, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("durable\n"), 512) // one 4 KiB block
	for i := range 3 {
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync %d: %v", i, err)
		}
	}
	if got := m.ms.refused.Load(); got != 1 {
		t.Errorf("%d FSYNC requests reached the daemon after 3 fsyncs; want 1 (the ENOSYS)", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the first close sends FLUSH once, then the kernel stops asking
		r, err := os.Open(cur)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.ms.refused.Load(); got != 2 {
		t.Errorf("%d FSYNC and FLUSH requests reached the daemon; want 2", got)
	}
	// The bytes are in the backing file already, with nothing left for a sync to do.
	backing, err := os.ReadFile(filepath.Join(m.data, "s", "0", segments.SegmentName(0)))
	if err != nil || !bytes.Equal(backing, bytes.Repeat(data, 3)) {
		t.Errorf("backing file holds %d bytes, %v; want the 3 writes exactly", len(backing), err)
	}
	if m.partition("s", 0).Unsynced() {
		t.Error("a persist=sync partition reports unsynced bytes")
	}
}
