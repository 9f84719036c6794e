package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTailFRates backs what README says about `tail -F current`: GNU tail polls FUSE files and switches
// to a new `current` only after --max-unchanged-stats polls without change, so with its defaults
// (1 s polls, 5 unchanged) rotations 0.5 s apart make it skip whole segments, while
// `-s 0.1 --max-unchanged-stats=1` switches within about 0.2 s and keeps up with them. The margins are
// wide on purpose: 6 s of reaction against 0.5 s between rotations, and 0.2 s against 0.5 s.
func TestTailFRates(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s of rotations")
	}
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=64KiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	cur := filepath.Join(part, "current")
	def := startFollower(t, "tail", "-c", "+1", "-F", cur)
	waitOpen(t, def.cmd.Process.Pid, cur)
	fast := startFollower(t, "tail", "-c", "+1", "-F", "-s", "0.1", "--max-unchanged-stats=1", cur)
	waitOpen(t, fast.cmd.Process.Pid, cur)

	want := writeRotating(t, cur, 10*time.Second)
	if got := fast.waitFor(t, len(want)); !bytes.Equal(got, want) {
		t.Errorf("%s: %d of %d bytes, first difference at %d", fast.name, len(got), len(want), firstDiff(got, want))
	}
	// The default tail gets its last switch done within a few seconds; wait well past it.
	time.Sleep(8 * time.Second)
	got := []byte(def.out.String())
	t.Logf("%s: %d of %d bytes", def.name, len(got), len(want))
	if len(got) >= len(want) {
		t.Errorf("%s kept up with rotations every 0.5 s: the README's limit for it is wrong", def.name)
	}
}

// writeRotating appends numbered lines through one O_APPEND descriptor, about 6.5 KB every 50 ms, so a
// 64 KiB segment rotates every 0.5 s, for d; it returns what it wrote.
func writeRotating(t *testing.T, cur string, d time.Duration) []byte {
	t.Helper()
	f, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want bytes.Buffer
	line := 0
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		var burst bytes.Buffer
		for burst.Len() < 6550 {
			fmt.Fprintf(&burst, "line %08d\n", line)
			line++
		}
		if _, err := f.Write(burst.Bytes()); err != nil {
			t.Fatal(err)
		}
		want.Write(burst.Bytes())
	}
	return want.Bytes()
}
