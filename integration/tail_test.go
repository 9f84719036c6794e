package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"segfs/integration/internal/recstream"
)

// TestTailFollowsRotations: issue 5 §1.2 (and issue 4 §1.5). GNU `tail -F current`, started before the writes,
// outputs every byte across ≥ 10 rotations, because on rotation current's inode becomes <base>.log and a new
// inode appears as current, as if renamed.
//
// tail -F on FUSE polls: it switches to a replaced file only after the old one stayed unchanged for
// --max-unchanged-stats polls, so a writer that rotated twice between two polls would make any tail skip a
// whole segment. The test therefore waits for tail to catch up after each write (a generous deadline, no
// speed assertion); what it checks is that tail can see every byte, not how fast.
func TestTailFollowsRotations(t *testing.T) {
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=1MiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	cur := filepath.Join(part, "current")

	outPath := filepath.Join(t.TempDir(), "tail.out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var tailErr lockedBuffer
	tail := exec.Command("tail", "-c", "+1", "-F", "-s", "0.05", "--max-unchanged-stats=2", cur)
	tail.Stdout, tail.Stderr = out, &tailErr
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tail.Process.Kill(); _ = tail.Wait() })
	waitOpen(t, tail.Process.Pid, cur)

	// The loop watches rotations in the data dir, not by listing the mount: a READDIRPLUS would refresh the
	// kernel's dentry for current and hide a missing invalidation, which is what tail depends on.
	const chunk = 400009 // two fit in a 1 MiB segment, the third rotates
	const rotations = 11
	backing := filepath.Join(data, "T", "0")
	stream := recstream.NewStream(42)
	var want []byte
	for sealed := 0; sealed < rotations; {
		before := statIno(t, cur)
		b := make([]byte, chunk)
		_, _ = stream.Read(b)
		appendFile(t, cur, b)
		want = append(want, b...)

		if segs := backingSegments(t, backing); len(segs)-1 > sealed {
			sealed = len(segs) - 1
			// The segment this write sealed is the one current was: it must keep current's inode number.
			old := segs[len(segs)-2]
			if ino := statIno(t, filepath.Join(part, old.Name)); ino != before {
				t.Errorf("rotation: sealed %s has inode %d, but current had inode %d (issue 4 §1.5: as if renamed)", old.Name, ino, before)
			}
			if now := statIno(t, cur); now == before {
				t.Errorf("rotation to base %d: stat current still gives the old inode %d: the kernel's dentry was not invalidated", segs[len(segs)-1].Base, now)
			}
		}
		if t.Failed() {
			t.FailNow() // tail cannot follow what stat cannot see; do not wait for it
		}
		waitFileSize(t, outPath, int64(len(want)), &tailErr)
	}
	got, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("tail -F output (%d bytes, sha %s) differs from the %d bytes appended (sha %s) at byte %d\ntail stderr: %s",
			len(got), sha(got), len(want), sha(want), firstDiff(got, want), tailErr.String())
	}
	if got, _ := readPartition(t, part); !bytes.Equal(got, want) {
		t.Fatalf("partition differs from the appended bytes at %d", firstDiff(got, want))
	}
}

// waitOpen waits until process pid has path open, so writes start only after tail is following.
func waitOpen(t *testing.T, pid int, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		fds, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "fd", "*"))
		for _, fd := range fds {
			if target, err := os.Readlink(fd); err == nil && target == path {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d did not open %s within 30s", pid, path)
}

// waitFileSize waits until path has grown to size, failing if it grows past it or stalls past the deadline.
func waitFileSize(t *testing.T, path string, size int64, stderr *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case info.Size() == size:
			return
		case info.Size() > size:
			t.Fatalf("tail printed %d bytes, more than the %d appended\ntail stderr: %s", info.Size(), size, stderr.String())
		case time.Now().After(deadline):
			t.Fatalf("tail printed %d of %d appended bytes and did not catch up in 60s\ntail stderr: %s", info.Size(), size, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func statIno(t *testing.T, path string) uint64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Sys().(*syscall.Stat_t).Ino
}
