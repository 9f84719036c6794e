package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// segment is one file of a partition directory, as seen through the mount or in the data dir.
type segment struct {
	Name    string
	Base    int64 // from the name; for current, the end of the sealed segments
	Size    int64
	Ino     uint64
	Mode    os.FileMode
	Current bool
}

// listPartition returns the segments of a partition directory in log order: sealed ones by base, then current.
// It fails the test on any name that is neither a 20-digit base nor current.
func listPartition(t *testing.T, dir string) []segment {
	t.Helper()
	segs, err := readPartitionDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

func readPartitionDir(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var sealed []segment
	var cur *segment
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("stat %s/%s: %w", dir, e.Name(), err)
		}
		s := segment{Name: e.Name(), Size: info.Size(), Mode: info.Mode(), Ino: info.Sys().(*syscall.Stat_t).Ino}
		switch base, ok := parseSegmentName(e.Name()); {
		case e.Name() == "current":
			s.Current = true
			cur = &s
		case ok:
			s.Base = base
			sealed = append(sealed, s)
		default:
			return nil, fmt.Errorf("unexpected entry %q in partition %s", e.Name(), dir)
		}
	}
	sort.Slice(sealed, func(i, j int) bool { return sealed[i].Base < sealed[j].Base })
	if cur != nil {
		cur.Base = endOf(sealed)
		sealed = append(sealed, *cur)
	}
	return sealed, nil
}

func endOf(segs []segment) int64 {
	if len(segs) == 0 {
		return 0
	}
	last := segs[len(segs)-1]
	return last.Base + last.Size
}

// parseSegmentName parses "<20-digit base>.log".
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, ".log")
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil
}

// checkContiguous fails unless every segment starts where the previous one ended (from first's base on).
func checkContiguous(t *testing.T, segs []segment) {
	t.Helper()
	for i := 1; i < len(segs); i++ {
		if prev := segs[i-1]; segs[i].Base != prev.Base+prev.Size {
			t.Fatalf("segment %s starts at %d but %s ends at %d: %+v", segs[i].Name, segs[i].Base, prev.Name, prev.Base+prev.Size, segs)
		}
	}
}

// readPartition returns the bytes of every segment of a partition directory, in log order, read through the
// file system, and the listing it used. Every segment must read back exactly its listed size.
func readPartition(t *testing.T, dir string) ([]byte, []segment) {
	t.Helper()
	segs := listPartition(t, dir)
	var out []byte
	for _, s := range segs {
		b, err := os.ReadFile(filepath.Join(dir, s.Name))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != s.Size {
			t.Fatalf("%s/%s: stat size %d, read %d bytes", dir, s.Name, s.Size, len(b))
		}
		out = append(out, b...)
	}
	return out, segs
}

// backingSegments lists the *.log files of a partition in the data dir, by base. Other files (recovery
// metadata) are ignored: only the segment files must hold exactly the logical bytes.
func backingSegments(t *testing.T, dir string) []segment {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []segment
	for _, e := range ents {
		base, ok := parseSegmentName(e.Name())
		if !ok {
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, segment{Name: e.Name(), Base: base, Size: info.Size(), Mode: info.Mode()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Base < out[j].Base })
	return out
}

// checkBacking fails unless the data dir partition holds one <base>.log per mounted segment (current's named
// after its base), each exactly as long as the mount says, with exactly the bytes want (the partition from the
// first segment's base on). Call it only when no write is unsynced (after close, fsync or unmount).
func checkBacking(t *testing.T, backingDir string, mounted []segment, want []byte) {
	t.Helper()
	backing := backingSegments(t, backingDir)
	if len(backing) != len(mounted) {
		t.Fatalf("data dir %s has %d segment files %v, mount shows %d %v", backingDir, len(backing), backing, len(mounted), mounted)
	}
	var got []byte
	for i, b := range backing {
		m := mounted[i]
		if b.Base != m.Base || b.Size != m.Size {
			t.Errorf("data dir segment %s is %d bytes; mount shows %s at base %d with %d bytes", b.Name, b.Size, m.Name, m.Base, m.Size)
		}
		data, err := os.ReadFile(filepath.Join(backingDir, b.Name))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, data...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("data dir %s holds %d bytes that differ from the %d expected (first difference at %d)", backingDir, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := 0; i < min(len(a), len(b)); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) == len(b) {
		return -1
	}
	return min(len(a), len(b))
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// appendFile appends b to path with one O_APPEND open and as many write()s as os.File needs, then closes.
func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		t.Fatalf("append %d bytes to %s: %v", len(b), path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", path, err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
