package integration

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestReadAfterRmdir: after rmdir of a partition or of its topic, descriptors of `current` and of sealed
// segments opened before stay readable, with every byte, until closed, as unlinked files on ext4 do;
// bytes still unsynced when rmdir came are included. fstat of them keeps working.
func TestReadAfterRmdir(t *testing.T) {
	for _, which := range []string{"partition", "topic"} {
		t.Run(which, func(t *testing.T) {
			data, mnt := newDirs(t)
			mountFS(t, data, mnt, "segment_size=64KiB")
			mkdir(t, filepath.Join(mnt, "T"))
			part := filepath.Join(mnt, "T", "0")
			cur := filepath.Join(part, "current")
			want := numberedLines(5, 100<<10)
			w, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			for b := want; len(b) > 0; b = b[min(len(b), 8<<10):] {
				if _, err := w.Write(b[:min(len(b), 8<<10)]); err != nil {
					t.Fatal(err)
				}
			}
			segs := listPartition(t, part)
			if len(segs) < 2 {
				t.Fatalf("want a sealed segment and current, got %v", segs)
			}
			sealed, err := os.Open(filepath.Join(part, segs[0].Name))
			if err != nil {
				t.Fatal(err)
			}
			defer sealed.Close()
			rc, err := os.Open(cur)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			target := part
			if which == "topic" {
				target = filepath.Join(mnt, "T")
			}
			mustSh(t, `rmdir "$D"`, "D="+target)
			if _, err := os.Stat(cur); !os.IsNotExist(err) {
				t.Fatalf("current still visible after rmdir: %v", err)
			}
			wantCur := want[segs[len(segs)-1].Base:]
			for _, c := range []struct {
				f    *os.File
				want []byte
			}{{sealed, want[:segs[0].Size]}, {rc, wantCur}} {
				got, err := io.ReadAll(c.f)
				if err != nil || !bytes.Equal(got, c.want) {
					t.Errorf("read %s after rmdir of the %s: %d bytes, %v; want %d bytes", c.f.Name(), which, len(got), err, len(c.want))
				}
				if st, err := c.f.Stat(); err != nil || st.Size() != int64(len(c.want)) {
					t.Errorf("fstat %s after rmdir of the %s: %v, %v; want size %d", c.f.Name(), which, st, err, len(c.want))
				}
			}
		})
	}
}
