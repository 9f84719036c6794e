package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDirectoryTimes: a directory's mtime changes when a topic, partition or segment appears or goes
// away, and topics and partitions keep their times across a remount: they are the backing directories'.
func TestDirectoryTimes(t *testing.T) {
	data, mnt := newDirs(t)
	m := mountFS(t, data, mnt, "segment_size=64KiB")
	topic := filepath.Join(mnt, "T")
	part := filepath.Join(topic, "0")
	mtime := func(p string) time.Time {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.ModTime()
	}
	// changes runs step and checks that it moved dir's mtime; the kernel caches directory attributes
	// for a second, so the check waits that long before it concludes.
	changes := func(what, dir string, step func()) {
		t.Helper()
		before := mtime(dir)
		time.Sleep(10 * time.Millisecond)
		step()
		for deadline := time.Now().Add(5 * time.Second); !mtime(dir).After(before); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("%s: mtime of %s stayed %v", what, dir, before)
				return
			}
		}
	}
	changes("mkdir of a topic", mnt, func() { mkdir(t, topic) })
	changes("mkdir of a partition", topic, func() { mkdir(t, filepath.Join(topic, "1")) })
	changes("rmdir of a partition", topic, func() { mustSh(t, `rmdir "$D"`, "D="+filepath.Join(topic, "1")) })
	appendFile(t, filepath.Join(part, "current"), make([]byte, 60<<10))
	changes("rotation", part, func() { appendFile(t, filepath.Join(part, "current"), make([]byte, 60<<10)) })
	segs := listPartition(t, part)
	changes("rm of a sealed segment", part, func() { mustSh(t, `rm "$S"`, "S="+filepath.Join(part, segs[0].Name)) })
	mkdir(t, filepath.Join(mnt, "U"))
	changes("rmdir of a topic", mnt, func() { mustSh(t, `rmdir "$D"`, "D="+filepath.Join(mnt, "U")) })

	topicTime, partTime := mtime(topic), mtime(part)
	m.Unmount()
	time.Sleep(20 * time.Millisecond)
	mountFS(t, data, mnt, "segment_size=64KiB")
	if got := mtime(topic); !got.Equal(topicTime) {
		t.Errorf("topic mtime after remount %v, was %v", got, topicTime)
	}
	if got := mtime(part); !got.Equal(partTime) {
		t.Errorf("partition mtime after remount %v, was %v", got, partTime)
	}
}
