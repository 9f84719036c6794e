package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"segfs/integration/internal/recstream"
)

// TestDescriptorBudget: a daemon started under `prlimit --nofile=64` serves more partitions and
// segments than it has descriptors. Shell appends (cat >>) of 8 KiB to 48 partitions, 12 rounds,
// 64 KiB segments, with every partition read back (cat of all its files) after every fourth round:
// every write succeeds, every read returns what was written, and after an unmount and a remount
// every partition holds exactly the acknowledged writes, in order.
func TestDescriptorBudget(t *testing.T) {
	const parts, rounds, blk = 48, 12, 8 << 10
	data, mnt := newDirs(t)
	opts := "segment_size=64KiB"
	m := mountFSUnder(t, []string{"prlimit", "--nofile=64", "--"}, data, mnt, opts)

	blocks := t.TempDir()
	stream := recstream.NewStream(13)
	for j := 0; j < rounds; j++ {
		for p := 0; p < parts; p++ {
			b := make([]byte, blk)
			_, _ = stream.Read(b)
			if err := os.WriteFile(filepath.Join(blocks, fmt.Sprintf("%d-%d", p, j)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Real programs all the way: mkdir, cat >> for each write (printing which ones succeeded), and
	// cat of each partition's files.
	res := sh(t, `
		set -u
		p=0; while [ $p -lt $PARTS ]; do mkdir "$M/t$p" || echo "mkdir t$p failed" >&2; p=$((p+1)); done
		j=0; while [ $j -lt $ROUNDS ]; do
			p=0; while [ $p -lt $PARTS ]; do
				cat "$B/$p-$j" >> "$M/t$p/0/current" && echo "$p $j"
				p=$((p+1))
			done
			p=0; while [ $((j % 4)) -eq 3 ] && [ $p -lt $PARTS ]; do
				cat "$M/t$p/0/"* > "$B/read-$p" || echo "read t$p failed in round $j" >&2
				p=$((p+1))
			done
			j=$((j+1))
		done`, "M="+mnt, "B="+blocks, "PARTS="+strconv.Itoa(parts), "ROUNDS="+strconv.Itoa(rounds))
	acked := make([][]byte, parts)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		p, _ := strconv.Atoi(f[0])
		b, err := os.ReadFile(filepath.Join(blocks, f[0]+"-"+f[1]))
		if err != nil {
			t.Fatal(err)
		}
		acked[p] = append(acked[p], b...)
		n++
	}
	if n != parts*rounds || res.stderr != "" {
		t.Errorf("under a limit of 64 descriptors, %d of %d appends succeeded; errors:\n%s", n, parts*rounds, trimForLog(res.stderr))
	}
	for p := 0; p < parts; p++ {
		got, err := os.ReadFile(filepath.Join(blocks, fmt.Sprintf("read-%d", p)))
		if err == nil && !bytes.Equal(got, acked[p]) {
			t.Errorf("t%d read back in the last round: %d bytes, want the %d acknowledged (first difference at %d)", p, len(got), len(acked[p]), firstDiff(got, acked[p]))
		}
	}

	m.Unmount()
	m = mountFSUnder(t, []string{"prlimit", "--nofile=64", "--"}, data, mnt, opts)
	rotated := 0
	for p := 0; p < parts; p++ {
		got, segs := readPartition(t, filepath.Join(mnt, fmt.Sprintf("t%d", p), "0"))
		if !bytes.Equal(got, acked[p]) {
			t.Errorf("t%d after remount: %d bytes, want the %d acknowledged (first difference at %d)", p, len(got), len(acked[p]), firstDiff(got, acked[p]))
		}
		rotated += len(segs) - 1
	}
	if rotated < parts {
		t.Errorf("only %d sealed segments in %d partitions: the test meant more segments than descriptors", rotated, parts)
	}
	m.Unmount()
}

// TestPurgedSegmentFreedAtLastClose: `rm` of a sealed segment that two processes hold open frees its
// disk space when the last of them closes it, not before (as for an unlinked file on ext4) and not
// never: with passthrough the kernel holds the backing file under an id that segfs registered for the
// node, and it must be released with the node's last handle, like the daemon's own descriptor without
// passthrough.
func TestPurgedSegmentFreedAtLastClose(t *testing.T) {
	requireRoot(t)
	data, mnt := smallExt4(t, "32M"), t.TempDir()
	m := mountFS(t, data, mnt, "segment_size=8MiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	mustSh(t, `head -c 8388608 /dev/urandom >> "$C" && echo x >> "$C"`, "C="+filepath.Join(part, "current"))
	seg := filepath.Join(part, listPartition(t, part)[0].Name)
	free := func() int64 {
		var st unix.Statfs_t
		if err := unix.Statfs(data, &st); err != nil {
			t.Fatal(err)
		}
		return int64(st.Bavail) * st.Bsize
	}
	var readers []*exec.Cmd
	for i := 0; i < 2; i++ {
		r := exec.Command("sh", "-c", `exec 3< "$F" && head -c 4096 <&3 > /dev/null && exec sleep 600`)
		r.Env = append(os.Environ(), "F="+seg)
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
		t.Cleanup(func() { _ = r.Process.Kill(); _ = r.Wait() })
	}
	time.Sleep(200 * time.Millisecond) // both have opened and read it
	mustSh(t, `rm "$F"`, "F="+seg)
	before := free()
	stop := func(r *exec.Cmd) {
		_ = r.Process.Kill()
		_ = r.Wait()
	}
	stop(readers[0])
	time.Sleep(300 * time.Millisecond)
	if got := free(); got > before+1<<20 {
		t.Errorf("free space grew by %d bytes while a reader still holds the removed segment", got-before)
	}
	stop(readers[1])
	for deadline := time.Now().Add(5 * time.Second); free() < before+7<<20; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("free space grew by %d bytes after the last reader of a removed 8 MiB segment closed it", free()-before)
		}
	}
	m.Unmount()
}
