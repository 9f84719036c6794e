package fusefs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"segfs/segments"
)

// §1.5: GNU `tail -F current` follows the partition across rotations. tail polls on FUSE and switches
// to the new current when the inode behind the name changes; it only switches after the old file
// stayed unchanged for --max-unchanged-stats polls, so the test lets tail catch up after each write.
func TestTailFollowsCurrent(t *testing.T) {
	if _, err := exec.LookPath("tail"); err != nil {
		t.Skipf("SKIPPED: no tail binary: %v", err)
	}
	m := newTestMount(t, segments.Config{}, Options{})
	m.mkdir("t")
	cur := m.path("t", "0", "current")
	first := pattern(0, 100)
	appendTo(t, cur, first)

	outPath := filepath.Join(t.TempDir(), "tail.out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tail := exec.Command("tail", "-c", "+1", "-F", "-s", "0.05", "--max-unchanged-stats=2", cur)
	tail.Stdout = out
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tail.Process.Kill(); _ = tail.Wait() }()

	want := append([]byte(nil), first...)
	waitTail := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, _ := os.ReadFile(outPath)
			if bytes.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("tail -F output has %d bytes, want %d (rotations so far: %d)",
					len(got), len(want), len(m.partition("t", 0).Segments())-1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitTail()
	for i := 1; i <= 4; i++ { // each write fills most of a segment: every one rotates
		b := pattern(i, 48<<10)
		appendTo(t, cur, b)
		want = append(want, b...)
		waitTail()
	}
	if n := len(m.partition("t", 0).Segments()); n < 4 {
		t.Fatalf("want ≥ 3 rotations, got %d segments", n)
	}
}
