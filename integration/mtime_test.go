package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTimesSurviveRemount: after an unmount and a remount, `ls -l` shows the same times: current's mtime
// is its last append before the unmount (not the mount time, nor the time the unmount synced it), and
// sealed segments, the partition and the topic keep theirs.
func TestTimesSurviveRemount(t *testing.T) {
	data, mnt := newDirs(t)
	opts := "segment_size=64KiB"
	m := mountFS(t, data, mnt, opts)
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	mustSh(t, `head -c 70000 /dev/zero | tr '\0' x >> "$C" && echo last line >> "$C"`, "C="+filepath.Join(part, "current"))
	times := func() map[string]time.Time {
		t.Helper()
		out := map[string]time.Time{}
		for _, p := range []string{filepath.Join(mnt, "T"), part} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			out[p] = st.ModTime()
		}
		for _, s := range listPartition(t, part) {
			st, err := os.Stat(filepath.Join(part, s.Name))
			if err != nil {
				t.Fatal(err)
			}
			out[s.Name] = st.ModTime()
		}
		return out
	}
	// Whole seconds apart, for tools that print seconds; and past the kernel's 1 s attribute cache of
	// the directories, so that what is read before the remount is what the backing files hold.
	time.Sleep(1100 * time.Millisecond)
	before := times()
	if len(before) < 4 {
		t.Fatalf("want a sealed segment and current: %v", before)
	}
	m.Unmount()
	m = mountFS(t, data, mnt, opts)
	after := times()
	for name, was := range before {
		if now := after[name]; !now.Equal(was) {
			t.Errorf("%s: mtime %v after remount, was %v", name, now.Format(time.RFC3339Nano), was.Format(time.RFC3339Nano))
		}
	}
	m.Unmount()
}
