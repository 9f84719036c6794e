package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"segfs/integration/internal/recstream"
)

// TestENOSPC: issue 5 §3.1, in every io×persist mode. With DATA on an 8 MiB ext4 image, dd appends until the
// write that does not fit fails with "No space left on device"; exactly the bytes whose write() succeeded are
// in the log, also after an orderly unmount and remount (issue 4 §4.4: every partition synced before exit);
// after a sealed segment is purged, appends work again.
func TestENOSPC(t *testing.T) {
	requireRoot(t)
	for _, mode := range ioPersistModes {
		t.Run(mode.name, func(t *testing.T) { testENOSPC(t, "segment_size=1MiB,"+mode.opts) })
	}
}

var (
	ddCopied = regexp.MustCompile(`(?m)^(\d+) bytes .*copied`)
	fdPos    = regexp.MustCompile(`(?m)^pos:\s+(\d+)$`)
)

// fillWithDD appends input to cur with dd in 64 KiB blocks until a write fails, requires the failure to read
// "No space left on device", and returns how many bytes dd's write()s had acknowledged. dd prints no count when
// closing the output fails too (as after a deferred write error), so the count comes from how far dd read its
// input: the shell keeps the input open on fd 3 and reads dd's final offset from /proc/$$/fdinfo/3; the block
// whose write failed was read but not acknowledged.
func fillWithDD(t *testing.T, input, cur string) int {
	t.Helper()
	const bs = 65536
	res := sh(t, `exec 3< "$IN"; dd of="$CUR" bs=65536 oflag=append conv=notrunc <&3; rc=$?; cat /proc/$$/fdinfo/3; exit $rc`, "IN="+input, "CUR="+cur)
	t.Logf("dd: %s", strings.TrimSpace(res.stderr))
	if res.code == 0 || !strings.Contains(res.stderr, "No space left on device") {
		t.Fatalf("dd of 16 MiB onto an 8 MiB file system: %v; want a failure saying No space left on device", res)
	}
	m := fdPos.FindStringSubmatch(res.stdout)
	if m == nil {
		t.Fatalf("no input offset in %q", res.stdout)
	}
	copied, _ := strconv.Atoi(m[1])
	if strings.Contains(res.stderr, "error writing") {
		copied -= bs
	}
	if c := ddCopied.FindStringSubmatch(res.stderr); c != nil && c[1] != strconv.Itoa(copied) {
		t.Fatalf("dd reports %s bytes copied, its input offset says %d", c[1], copied)
	}
	if copied < 2*mib {
		t.Fatalf("dd copied only %d bytes before ENOSPC on an 8 MiB file system", copied)
	}
	return copied
}

func testENOSPC(t *testing.T, opts string) {
	data, mnt := smallExt4(t, "8M"), t.TempDir()
	input := writeTemp(t, "input", recstream.StreamBytes(8, 16*mib))
	extra := recstream.StreamBytes(9, 128<<10)
	m := mountFS(t, data, mnt, opts)
	mkdir(t, filepath.Join(mnt, "T"))
	part, backing := filepath.Join(mnt, "T", "0"), filepath.Join(data, "T", "0")
	cur := filepath.Join(part, "current")

	copied := fillWithDD(t, input, cur)
	in, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	want := in[:copied]
	checkPartition(t, part, 0, want, "after ENOSPC")

	m.Unmount()
	m = mountFS(t, data, mnt, opts)
	segs := checkPartition(t, part, 0, want, "after ENOSPC, unmount and remount")
	if len(segs) < 2 {
		t.Fatalf("no sealed segment to purge: %v", segs)
	}

	// Free space by purging the oldest sealed segment, then append again.
	mustSh(t, `rm "$F"`, "F="+filepath.Join(part, segs[0].Name))
	first := segs[1].Base
	extraPath := writeTemp(t, "extra", extra)
	if res := sh(t, `dd if="$IN" of="$CUR" bs=65536 oflag=append conv=notrunc`, "IN="+extraPath, "CUR="+cur); res.code != 0 {
		t.Fatalf("append of %d bytes after purging %s (%d bytes): %v", len(extra), segs[0].Name, segs[0].Size, res)
	}
	want = append(want, extra...)
	checkPartition(t, part, first, want, "after purge and append")
	m.Unmount()
	m = mountFS(t, data, mnt, opts)
	segs = checkPartition(t, part, first, want, "after purge, append and remount")
	m.Unmount()
	checkBacking(t, backing, segs, want[first:])
}

// checkPartition fails unless the partition starts at base first and holds exactly want[first:].
func checkPartition(t *testing.T, part string, first int64, want []byte, when string) []segment {
	t.Helper()
	got, segs := readPartition(t, part)
	if len(segs) == 0 || segs[0].Base != first {
		t.Fatalf("%s: segments %v, want the first at base %d", when, segs, first)
	}
	checkContiguous(t, segs)
	if !bytes.Equal(got, want[first:]) {
		t.Fatalf("%s: partition holds %d bytes from %d, want %d (first difference at +%d)", when, len(got), first, len(want)-int(first), firstDiff(got, want[first:]))
	}
	return segs
}

// smallExt4 loop-mounts a fresh ext4 image of the given size and returns a data dir on it. The loop mount is
// removed at cleanup, after the segfs mounts registered later.
func smallExt4(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	img, lm := filepath.Join(dir, "img"), filepath.Join(dir, "fs")
	mkdir(t, lm)
	mustSh(t, `truncate -s "$SIZE" "$IMG" && mkfs.ext4 -q -F "$IMG" && mount -o loop "$IMG" "$LM"`, "SIZE="+size, "IMG="+img, "LM="+lm)
	t.Cleanup(func() {
		if err := unix.Unmount(lm, 0); err != nil {
			t.Errorf("unmount loop file system %s: %v; detaching lazily", lm, err)
			_ = unix.Unmount(lm, unix.MNT_DETACH)
		}
	})
	data := filepath.Join(lm, "segfs")
	mkdir(t, data)
	return data
}
