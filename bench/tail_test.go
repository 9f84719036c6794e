package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"segfs/segments"
)

// rotatingWriter imitates segfs's `current` on a plain directory the way multilog does: rotation renames
// `current` to "<base>.log" (so the sealed file keeps the inode, as segfs's does) and creates a new one.
type rotatingWriter struct {
	dir  string
	f    *os.File
	base int64
	size int64
}

func newRotatingWriter(t *testing.T, dir string) *rotatingWriter {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "current"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return &rotatingWriter{dir: dir, f: f}
}

func (w *rotatingWriter) write(b []byte) error {
	_, err := w.f.Write(b)
	w.size += int64(len(b))
	return err
}

func (w *rotatingWriter) rotate() error {
	w.f.Close()
	cur := filepath.Join(w.dir, "current")
	if err := os.Rename(cur, filepath.Join(w.dir, segments.SegmentName(w.base))); err != nil {
		return err
	}
	w.base += w.size
	w.size = 0
	f, err := os.OpenFile(cur, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	w.f = f
	return err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// drain reads everything the tailer can see now.
func drain(t *testing.T, tl *tailer) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 7) // small reads so segment ends fall inside reads and between them
	for {
		n, _, err := tl.Next(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

func TestTailerFollowsRotations(t *testing.T) {
	dir := t.TempDir()
	w := newRotatingWriter(t, dir)
	tl := newTailer(dir, openOS)
	defer tl.Close()
	var want, got []byte
	put := func(s string) { must(t, w.write([]byte(s))); want = append(want, s...) }

	put("first segment ")
	got = append(got, drain(t, tl)...) // holds `current` at EOF
	put("more of the first ")
	must(t, w.rotate())
	put("second ")
	got = append(got, drain(t, tl)...) // finishes the old inode, then reopens `current`
	must(t, w.rotate())
	put("third ")
	must(t, w.rotate())
	put("fourth ")
	must(t, w.rotate())
	put("fifth, after three rotations between two polls")
	got = append(got, drain(t, tl)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("tailer read %q\nwant %q", got, want)
	}
	if tl.Offset() != int64(len(want)) {
		t.Fatalf("Offset %d, want %d", tl.Offset(), len(want))
	}
}

func TestTailerStartsFromSealedSegments(t *testing.T) {
	dir := t.TempDir()
	w := newRotatingWriter(t, dir)
	must(t, w.write([]byte("sealed before the consumer started|")))
	must(t, w.rotate())
	must(t, w.write([]byte("active")))
	tl := newTailer(dir, openOS)
	defer tl.Close()
	if got := string(drain(t, tl)); got != "sealed before the consumer started|active" {
		t.Fatalf("read %q", got)
	}
}

func TestTailerConcurrentWriterRotating(t *testing.T) {
	dir := t.TempDir()
	w := newRotatingWriter(t, dir)
	tl := newTailer(dir, openOS)
	defer tl.Close()
	var want bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&want, "record %d;", i)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := want.Bytes()
		for i := 0; len(b) > 0; i++ {
			n := min(len(b), 1+i%97)
			err := w.write(b[:n])
			if err == nil && i%5 == 0 {
				err = w.rotate()
			}
			if err != nil {
				t.Error(err) // not Fatal: this is not the test's goroutine
				return
			}
			b = b[n:]
		}
	}()
	var got []byte
	buf := make([]byte, 64)
	for len(got) < want.Len() && !t.Failed() {
		n, _, err := tl.Next(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			time.Sleep(50 * time.Microsecond)
		}
		got = append(got, buf[:n]...)
	}
	<-done
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("tailer read %d bytes that differ from the %d written", len(got), want.Len())
	}
}

func TestTailerRefusesEmptySealedSegment(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, segments.SegmentName(0)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tl := newTailer(dir, openOS)
	defer tl.Close()
	_, _, err := tl.Next(make([]byte, 8))
	if err == nil || !strings.Contains(err.Error(), "sealed but empty") {
		t.Fatalf("got %v, want an error about the empty sealed segment", err)
	}
}
