package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"segfs/integration/internal/recstream"
)

// TestDescriptorBudget: a daemon started under `prlimit --nofile=64` serves more partitions and
// segments than it has descriptors. Shell appends (cat >>) of 8 KiB to 48 partitions, 12 rounds,
// 64 KiB segments, with every partition read back (cat of all its files) between rounds: every write
// succeeds, every read returns what was written, and after an unmount and a remount every
// partition holds exactly the acknowledged writes, in order.
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
	// cat of each partition's files after every round.
	res := sh(t, `
		set -u
		p=0; while [ $p -lt $PARTS ]; do mkdir "$M/t$p" || echo "mkdir t$p failed" >&2; p=$((p+1)); done
		j=0; while [ $j -lt $ROUNDS ]; do
			p=0; while [ $p -lt $PARTS ]; do
				cat "$B/$p-$j" >> "$M/t$p/0/current" && echo "$p $j"
				p=$((p+1))
			done
			p=0; while [ $p -lt $PARTS ]; do
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
