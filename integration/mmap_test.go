package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMmapCurrent backs the errno table: a shared mapping of `current` gets ENODEV, a private one reads
// the segment, and sealed segments map either way.
func TestMmapCurrent(t *testing.T) {
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=64KiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	cur := filepath.Join(part, "current")
	want := numberedLines(9, 100<<10)
	for b := want; len(b) > 0; b = b[min(len(b), 8<<10):] {
		appendFile(t, cur, b[:min(len(b), 8<<10)])
	}
	segs := listPartition(t, part)
	env := []string{"CUR=" + cur, "SEALED=" + filepath.Join(part, segs[0].Name)}
	py := func(path, flags string) string {
		return `python3 -c 'import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, 0, flags=` + flags + `, prot=mmap.PROT_READ)
sys.stdout.buffer.write(m[:])' "` + path + `"`
	}
	if res := sh(t, py("$CUR", "mmap.MAP_SHARED"), env...); res.code == 0 || !strings.Contains(res.stderr, "No such device") {
		t.Errorf("MAP_SHARED of current: %v, want ENODEV (No such device)", res)
	}
	if got := mustSh(t, py("$CUR", "mmap.MAP_PRIVATE"), env...).stdout; got != string(want[segs[len(segs)-1].Base:]) {
		t.Errorf("MAP_PRIVATE of current: %d bytes, want the segment's %d", len(got), len(want)-int(segs[len(segs)-1].Base))
	}
	for _, flags := range []string{"mmap.MAP_SHARED", "mmap.MAP_PRIVATE"} {
		if got := mustSh(t, py("$SEALED", flags), env...).stdout; got != string(want[:segs[0].Size]) {
			t.Errorf("%s of a sealed segment: %d bytes, want %d", flags, len(got), segs[0].Size)
		}
	}
}
