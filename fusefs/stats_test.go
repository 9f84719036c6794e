package fusefs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"segfs/segments"
)

// lookupCounter is a WrapFS that counts LOOKUPs: the proof that every request passes through it.
type lookupCounter struct {
	fuse.RawFileSystem
	n *atomic.Int64
}

func (c lookupCounter) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	c.n.Add(1)
	return c.RawFileSystem.Lookup(cancel, h, name, out)
}

// TestStatsFile: MNT/.stats serves what Options.Stats renders, afresh at each open and consistent
// within one (fstat's size is the snapshot's); it is not listed, read-only, cannot be removed or
// shadowed by a topic, and absent without Options.Stats. Every request passes through WrapFS.
func TestStatsFile(t *testing.T) {
	var renders, lookups atomic.Int64
	stats := func() ([]byte, error) {
		n := renders.Add(1)
		return fmt.Appendf(nil, "# render %d\n%s", n, pattern(int(n), int(n)*100)), nil
	}
	m := newTestMount(t, segments.Config{}, Options{
		Stats:  stats,
		WrapFS: func(raw fuse.RawFileSystem) fuse.RawFileSystem { return lookupCounter{raw, &lookups} },
	})
	m.mkdir("t")
	path := m.path(statsName)
	var sizes []int
	for range 3 {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || int64(len(got)) != st.Size() || st.Mode() != 0o444 {
			t.Fatalf("read %s: %d bytes (%v), fstat size %d, mode %v", path, len(got), err, st.Size(), st.Mode())
		}
		var n int
		if _, err := fmt.Sscanf(string(got), "# render %d\n", &n); err != nil || string(got) != fmt.Sprintf("# render %d\n%s", n, pattern(n, n*100)) {
			t.Fatalf("content is not one rendering: %.40q... (%v)", got, err)
		}
		sizes = append(sizes, len(got))
	}
	if !(sizes[0] < sizes[1] && sizes[1] < sizes[2]) {
		t.Errorf("sizes of three opens %v: each open must render afresh", sizes)
	}
	// An older handle still open (or its asynchronous RELEASE not yet in) must not lend its size to
	// the fstat of a newer open.
	older, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := newer.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(newer); err != nil || int64(len(got)) != st.Size() {
		t.Errorf("with an older handle open: read %d bytes (%v), fstat size %d", len(got), err, st.Size())
	}
	newer.Close()
	older.Close()
	if names := listDir(t, m.mnt); !slices.Equal(names, []string{"t"}) {
		t.Errorf("root lists %q; .stats must stay hidden", names)
	}
	_, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	wantErrno(t, "open .stats for writing", err, unix.EPERM)
	wantErrno(t, "unlink .stats", unix.Unlink(path), unix.EPERM)
	wantErrno(t, "truncate .stats", unix.Truncate(path, 0), unix.EPERM)
	wantErrno(t, "mkdir .stats", unix.Mkdir(path, 0o755), unix.EEXIST)
	if lookups.Load() == 0 {
		t.Error("WrapFS saw no LOOKUP")
	}

	bare := newTestMount(t, segments.Config{}, Options{})
	if _, err := os.Stat(bare.path(statsName)); !errors.Is(err, unix.ENOENT) {
		t.Errorf("stat .stats without Options.Stats: %v; want ENOENT", err)
	}
}
