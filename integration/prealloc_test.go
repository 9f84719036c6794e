package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPreallocationGivenBack: on a 64 MiB ext4, 200 topics of one line each fit, and the segment files
// then use about what they hold. Each written partition reserves disk space ahead of its appends
// (1 MiB and more); without giving it back, the disk is full after a few dozen topics.
//   - idle_release=1h: only the full disk takes reservations back. Every append succeeds, because one
//     that meets ENOSPC first releases the other partitions' reservations and retries; the unmount
//     gives back the rest.
//   - after a remount with idle_release=1s, one more line to 20 of the topics: within a few seconds,
//     with the mount still up, their reservations are given back.
//
// "About what they hold": du of each segment is at most its size rounded up to the filesystem's block,
// plus one block (ext4 may keep an extent index block for a file whose reservation was fragmented).
func TestPreallocationGivenBack(t *testing.T) {
	requireRoot(t)
	const topics = 200
	data, mnt := smallExt4(t, "64M"), t.TempDir()
	m := mountFS(t, data, mnt, "idle_release=1h")
	appendLines := func(round, n int) {
		t.Helper()
		res := sh(t, `
			i=0; while [ $i -lt $N ]; do
				[ -d "$M/t$i" ] || mkdir "$M/t$i" || exit 1
				echo "round $R line of topic $i" >> "$M/t$i/0/current" || exit 1
				i=$((i+1))
			done`, "M="+mnt, "N="+strconv.Itoa(n), "R="+strconv.Itoa(round))
		if res.code != 0 {
			t.Fatalf("round %d: %v\n%s", round, res, sh(t, `df -k "$D"`, "D="+data).stdout)
		}
	}
	appendLines(0, topics)
	m.Unmount()
	checkDiskUse(t, data, topics, "after 200 one-line topics and an unmount")

	const again = 20
	m = mountFS(t, data, mnt, "idle_release=1s")
	appendLines(1, again)
	deadline := time.Now().Add(10 * time.Second)
	for !diskUseWithin(t, data, topics) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	checkDiskUse(t, data, topics, "with the mount up, 20 partitions idle for idle_release")
	for i := 0; i < topics; i++ {
		got, err := os.ReadFile(filepath.Join(mnt, fmt.Sprintf("t%d", i), "0", "current"))
		want := fmt.Sprintf("round 0 line of topic %d\n", i)
		if i < again {
			want += fmt.Sprintf("round 1 line of topic %d\n", i)
		}
		if err != nil || string(got) != want {
			t.Fatalf("t%d holds %q (%v), want %q", i, got, err, want)
		}
	}
	m.Unmount()
}

// segmentUse runs du on every segment file under data and returns what du counts, what the files
// would take in whole blocks, the number of files and the filesystem's block size.
func segmentUse(t *testing.T, data string) (used, blocks int64, files int, block int64) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(data, "*", "*", "*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment files under %s: %v", data, err)
	}
	res := runCmd(t, time.Minute, nil, "du", append([]string{"-c", "-B1"}, segs...)...)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if res.code != 0 || !strings.HasSuffix(lines[len(lines)-1], "total") {
		t.Fatalf("du: %v", res)
	}
	used, _ = strconv.ParseInt(strings.Fields(lines[len(lines)-1])[0], 10, 64)
	st := mustSh(t, `stat -f -c %S "$D"`, "D="+data).stdout
	block, _ = strconv.ParseInt(strings.TrimSpace(st), 10, 64)
	for _, s := range segs {
		fi, err := os.Stat(s)
		if err != nil {
			t.Fatal(err)
		}
		blocks += (fi.Size() + block - 1) / block * block
	}
	return used, blocks, len(segs), block
}

func diskUseWithin(t *testing.T, data string, topics int) bool {
	used, blocks, files, block := segmentUse(t, data)
	return files >= topics && used <= blocks+int64(files)*block
}

func checkDiskUse(t *testing.T, data string, topics int, when string) {
	t.Helper()
	used, blocks, files, block := segmentUse(t, data)
	if files < topics || used > blocks+int64(files)*block {
		t.Errorf("%s: du counts %d bytes for %d segment files that fit in %d bytes of whole blocks; want at most one %d-byte block per segment more\n%s",
			when, used, files, blocks, block, sh(t, `df -k "$D"`, "D="+data).stdout)
	}
}
