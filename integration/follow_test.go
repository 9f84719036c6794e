package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFollowStreamLossless: plain GNU `tail -c +1 -f MNT/T/0/.stream` and `segfs tail --from-start`,
// both started before the writes, print every line exactly once and in order while the partition
// rotates every 0.5 s for 20 s. .stream never rotates, so tail never has to notice a rotation.
func TestFollowStreamLossless(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s of rotations")
	}
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=64KiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	stream := filepath.Join(part, ".stream")

	gnu := startFollower(t, "tail", "-c", "+1", "-f", stream)
	waitOpen(t, gnu.cmd.Process.Pid, stream)
	ours := startFollower(t, binaries.segfs, "tail", "--from-start", part)
	waitOpen(t, ours.cmd.Process.Pid, stream)

	want := writeRotating(t, filepath.Join(part, "current"), 20*time.Second)
	if segs := backingSegments(t, filepath.Join(data, "T", "0")); len(segs) < 30 {
		t.Fatalf("only %d segments after 20 s; the test needs a rotation every 0.5 s", len(segs))
	}
	for _, fl := range []*follower{gnu, ours} {
		got := fl.waitFor(t, len(want))
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, want %d; first difference at byte %d", fl.name, len(got), len(want), firstDiff(got, want))
		}
	}
}

// TestFollowPurged: .stream's offsets are partition offsets (`tail -c +N` starts at offset N-1);
// a read of a removed range fails with ENODATA, and `segfs tail` names the oldest offset kept.
func TestFollowPurged(t *testing.T) {
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=64KiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	stream := filepath.Join(part, ".stream")
	want := numberedLines(3, 200<<10)
	for b := want; len(b) > 0; b = b[min(len(b), 16<<10):] {
		appendFile(t, filepath.Join(part, "current"), b[:min(len(b), 16<<10)])
	}
	segs := listPartition(t, part)
	if len(segs) < 3 {
		t.Fatalf("want at least two sealed segments, got %v", segs)
	}
	env := []string{"S=" + stream, "P=" + part, "SEALED=" + filepath.Join(part, segs[0].Name)}
	if got := mustSh(t, `tail -c +1001 "$S"`, env...).stdout; got != string(want[1000:]) {
		t.Errorf("tail -c +1001 .stream: %d bytes, want the %d from offset 1000", len(got), len(want)-1000)
	}
	for _, script := range []string{`ls -a "$P"`, `echo "$P"/*`} {
		if out := mustSh(t, script, env...).stdout; strings.Contains(out, ".stream") {
			t.Errorf("%s lists .stream: %q", script, out)
		}
	}
	if res := sh(t, `echo x >> "$S"`, env...); res.code == 0 || !strings.Contains(res.stderr, msgEPERM) {
		t.Errorf("append to .stream: %v, want %q", res, msgEPERM)
	}

	mustSh(t, `rm "$SEALED"`, env...)
	oldest := segs[1].Base
	if res := sh(t, `tail -c +1 "$S"`, env...); res.code == 0 || !strings.Contains(res.stderr, "No data available") {
		t.Errorf("tail -c +1 .stream after the first segment was removed: %v, want No data available", res)
	}
	if got := mustSh(t, `tail -c +`+strconv.FormatInt(oldest+1, 10)+` "$S"`, env...).stdout; got != string(want[oldest:]) {
		t.Errorf("tail from the oldest kept offset %d: %d bytes, want %d", oldest, len(got), len(want)-int(oldest))
	}
	res := runCmd(t, 30*time.Second, nil, binaries.segfs, "tail", "--from", "0", part)
	wantMsg := fmt.Sprintf("offset 0 of %s was removed by retention; the oldest byte kept is at offset %d", part, oldest)
	if res.code != 1 || !strings.Contains(res.stderr, wantMsg) || strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("segfs tail --from 0: %v, want exit 1 and one line containing %q", res, wantMsg)
	}
	fl := startFollower(t, binaries.segfs, "tail", "--from-start", part)
	if got := fl.waitFor(t, len(want)-int(oldest)); !bytes.Equal(got, want[oldest:]) {
		t.Errorf("segfs tail --from-start: %d bytes, want the %d from offset %d", len(got), len(want)-int(oldest), oldest)
	}
	if err := fl.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := fl.cmd.Wait(); err != nil {
		t.Errorf("segfs tail after SIGINT: %v (%s)", err, fl.stderr.String())
	}
	res = runCmd(t, 30*time.Second, nil, binaries.segfs, "tail", "--from", "5", "--from-start", part)
	if res.code != 1 || !strings.Contains(res.stderr, "--from and --from-start exclude each other") {
		t.Errorf("segfs tail with both flags: %v", res)
	}
}

type follower struct {
	name   string
	cmd    *exec.Cmd
	out    lockedBuffer
	stderr lockedBuffer
}

func startFollower(t *testing.T, name string, args ...string) *follower {
	t.Helper()
	fl := &follower{name: filepath.Base(name) + " " + strings.Join(args, " ")}
	fl.cmd = exec.Command(name, args...)
	fl.cmd.Env = append(os.Environ(), "LC_ALL=C")
	fl.cmd.Stdout, fl.cmd.Stderr = &fl.out, &fl.stderr
	if err := fl.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if fl.cmd.ProcessState == nil {
			_ = fl.cmd.Process.Kill()
			_ = fl.cmd.Wait()
		}
	})
	return fl
}

// waitFor returns the follower's output once it holds n bytes, or what it has after a deadline far
// beyond any follower's poll interval.
func (fl *follower) waitFor(t *testing.T, n int) []byte {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := []byte(fl.out.String())
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) < n {
				t.Logf("%s: stderr %q", fl.name, fl.stderr.String())
			}
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}
