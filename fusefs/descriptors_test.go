package fusefs

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"segfs/segments"
)

// backingDescriptors counts this process's descriptors of segment files under data: the daemon's,
// since the test itself opens only files of the mount.
func backingDescriptors(t *testing.T, data string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, data+"/") && strings.HasSuffix(target, ".log") {
			n++
		}
	}
	return n
}

// TestOpenSealedSegmentsCostNoDescriptor: with passthrough, holding many sealed segments open costs
// the daemon no descriptor per open (the kernel holds the backing files); every byte reads right, and
// after the last close, reading them again through the mount still works. Without passthrough each
// handle keeps one, and closing gives it back.
func TestOpenSealedSegmentsCostNoDescriptor(t *testing.T) {
	const segs = 40
	m := newTestMount(t, segments.Config{SegmentSize: 4096, MaxOpenFiles: segments.MinMaxOpenFiles}, Options{})
	m.mkdir("t")
	var all bytes.Buffer
	for i := 0; i <= segs; i++ {
		b := pattern(i, 4096)
		all.Write(b)
		appendTo(t, m.path("t", "0", "current"), b)
	}
	part := m.partition("t", 0)
	infos := part.Segments()
	before := backingDescriptors(t, m.data)
	var open []*os.File
	defer func() {
		for _, f := range open {
			f.Close()
		}
	}()
	for _, s := range infos[:len(infos)-1] {
		for i := 0; i < 2; i++ { // a second open of the same node reuses its backing id
			f, err := os.Open(m.path("t", "0", segments.SegmentName(s.Base)))
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, f)
			got, err := io.ReadAll(f)
			if err != nil || !bytes.Equal(got, all.Bytes()[s.Base:s.Base+s.Size]) {
				t.Fatalf("read %s: %d bytes, %v", segments.SegmentName(s.Base), len(got), err)
			}
		}
	}
	held := backingDescriptors(t, m.data) - before
	t.Logf("passthrough: %v; daemon descriptors of segment files with %d sealed segments open: %d more than before", m.ms.passthrough.Load(), len(open), held)
	if m.ms.passthrough.Load() && held > 0 {
		t.Errorf("with passthrough, %d open sealed segments hold %d daemon descriptors, want none", len(open), held)
	}
	if !m.ms.passthrough.Load() && held != len(open) {
		t.Errorf("without passthrough, %d open sealed segments hold %d daemon descriptors, want one each", len(open), held)
	}
	for _, f := range open {
		f.Close()
	}
	open = nil
	eventually(t, "the daemon to release the handles' descriptors", func() bool { return backingDescriptors(t, m.data) <= before })
	got, err := os.ReadFile(m.path("t", "0", segments.SegmentName(infos[0].Base)))
	if err != nil || !bytes.Equal(got, all.Bytes()[:infos[0].Size]) {
		t.Fatalf("read segment 0 again after every handle closed: %d bytes, %v", len(got), err)
	}
}
