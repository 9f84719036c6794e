package directio

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"testing"
)

// checkRead asserts that Size and ReadAt report exactly want, and io.EOF past it.
func checkRead(t testing.TB, f File, want []byte) {
	t.Helper()
	if got := f.Size(); got != int64(len(want)) {
		t.Fatalf("Size() = %d, want %d", got, len(want))
	}
	got := make([]byte, len(want)+1)
	n, err := f.ReadAt(got, 0)
	if n != len(want) || (err != io.EOF) {
		t.Fatalf("ReadAt(all) = %d, %v; want %d, EOF", n, err, len(want))
	}
	if !bytes.Equal(got[:n], want) {
		t.Fatalf("ReadAt content differs from model at byte %d", firstDiff(got[:n], want))
	}
	if n, err := f.ReadAt(make([]byte, 1), int64(len(want))); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(at Size) = %d, %v; want 0, EOF", n, err)
	}
}

// checkDisk asserts that the file at path holds exactly want: stat size and every byte.
func checkDisk(t testing.TB, path string, want []byte) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(len(want)) {
		t.Fatalf("stat size of %s = %d, want %d", path, st.Size(), len(want))
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from model at byte %d", path, firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// diskSnapshot is the stat size and content of a file, read around the Syscalls seam so that taking it
// does not count as a call of the code under test.
type diskSnapshot struct {
	size int64
	data []byte
}

func snapshot(t testing.TB, path string) diskSnapshot {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return diskSnapshot{size: st.Size(), data: data}
}

func (s diskSnapshot) equal(o diskSnapshot) bool {
	return s.size == o.size && bytes.Equal(s.data, o.data)
}

// checkPadded asserts the file holds want followed by zeros up to the next multiple of bs, which is
// what a direct File leaves after Flush.
func checkPadded(t testing.TB, path string, want []byte, bs int) {
	t.Helper()
	s := snapshot(t, path)
	wantSize := (int64(len(want)) + int64(bs) - 1) / int64(bs) * int64(bs)
	if s.size != wantSize {
		t.Fatalf("stat size after Flush = %d, want %d (logical %d padded to %d)", s.size, wantSize, len(want), bs)
	}
	if !bytes.Equal(s.data[:len(want)], want) {
		t.Fatalf("file differs from model at byte %d", firstDiff(s.data, want))
	}
	for i, c := range s.data[len(want):] {
		if c != 0 {
			t.Fatalf("padding byte %d is %#x, want 0", len(want)+i, c)
		}
	}
}

// payload returns n random bytes whose first byte sits at addr%align == shift of an aligned arena, so
// tests control whether a buffer is eligible for the zero-copy path.
func payload(r *rand.Rand, n, shift int) []byte {
	buf := AlignedAlloc(n+shift, 4096)[shift:]
	for i := 0; i < len(buf); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(buf[i:], w[:])
	}
	return buf[:n:n]
}

// pattern is the content the concurrency test writes at offset i: never zero, so padding is
// recognisable, and position-dependent, so a byte at the wrong offset is too.
func pattern(i int64) byte { return byte(i%251) + 1 }
