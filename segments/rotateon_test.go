package segments

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// lines returns n newline-terminated lines of varying length.
func lines(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("x", i*37%300))
	}
	return b.Bytes()
}

// TestRotateOnNewline: appends cut anywhere (4 KiB pieces of text) leave every sealed segment whole
// lines, at most twice SegmentSize, and the partition exactly what was appended, in every mode.
func TestRotateOnNewline(t *testing.T) {
	const segSize = 16 << 10
	text := lines(2000)
	for _, m := range allModes() {
		t.Run(m.String(), func(t *testing.T) {
			cfg := testConfig(m)
			cfg.SegmentSize, cfg.RotateOn = segSize, RotateNewline
			p := mustPartition(t, openLog(t, t.TempDir(), cfg), "t", 0)
			for off := 0; off < len(text); off += 4096 {
				if _, err := p.Append(text[off:min(off+4096, len(text))]); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]byte, len(text)+1)
			if n, _ := p.ReadAt(got, 0); n != len(text) || !bytes.Equal(got[:n], text) {
				t.Fatalf("partition holds %d bytes, want the %d appended", n, len(text))
			}
			segs := p.Segments()
			if len(segs) < 4 {
				t.Fatalf("%d segments, want several", len(segs))
			}
			for _, s := range segs[:len(segs)-1] {
				b := text[s.Base : s.Base+s.Size]
				if b[len(b)-1] != '\n' || s.Size > 2*segSize {
					t.Errorf("segment %d: %d bytes ending in %q, want whole lines within %d bytes", s.Base, s.Size, b[len(b)-1], 2*segSize)
				}
			}
		})
	}
}

// TestRotateOnNewlineCap: without a newline, a full segment takes at most SegmentSize more bytes;
// then it rotates inside the line.
func TestRotateOnNewlineCap(t *testing.T) {
	const segSize = 16 << 10
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.SegmentSize, cfg.RotateOn = segSize, RotateNewline
	p := mustPartition(t, openLog(t, t.TempDir(), cfg), "t", 0)
	for i := 0; i < 40; i++ {
		if _, err := p.Append(bytes.Repeat([]byte("x"), 4096)); err != nil {
			t.Fatal(err)
		}
	}
	segs := p.Segments()
	for _, s := range segs {
		if s.Size > 2*segSize {
			t.Errorf("segment %d holds %d bytes, past twice SegmentSize", s.Base, s.Size)
		}
	}
	if len(segs) < 4 {
		t.Errorf("%d segments for %d bytes without a newline", len(segs), 40*4096)
	}
}

// TestRotateOnNewlineShortAppend: when the rotation after an append's first line fails, that line is
// in the log, the rest is not, and Append says how much it took.
func TestRotateOnNewlineShortAppend(t *testing.T) {
	for _, m := range allModes() {
		t.Run(m.String(), func(t *testing.T) {
			fs := newFaultSyscalls()
			cfg := testConfig(m)
			cfg.SegmentSize, cfg.RotateOn, cfg.Syscalls = 4096, RotateNewline, fs
			p := mustPartition(t, openLog(t, t.TempDir(), cfg), "t", 0)
			if _, err := p.Append(append(bytes.Repeat([]byte("a"), 4070), "\nhalf a li"...)); err != nil {
				t.Fatal(err)
			}
			fs.noCreate.Store(true)
			_, err := p.Append([]byte("ne\nnext line, too long for what is left\n"))
			var short *ShortAppendError
			if !errors.As(err, &short) || short.Written != 3 || !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("append whose rotation fails: %v, want a short append of 3 bytes wrapping ENOSPC", err)
			}
			fs.noCreate.Store(false)
			if _, err := p.Append([]byte("next line, too long for what is left\n")); err != nil {
				t.Fatal(err)
			}
			want := string(bytes.Repeat([]byte("a"), 4070)) + "\nhalf a line\nnext line, too long for what is left\n"
			got := make([]byte, len(want)+10)
			if n, _ := p.ReadAt(got, 0); string(got[:n]) != want {
				t.Fatalf("partition holds %q, want %q", got[:n], want)
			}
			if segs := p.Segments(); len(segs) != 2 || segs[0].Size != 4070+13 {
				t.Fatalf("segments %s, want the first to end after \"half a line\\n\"", segInfoString(segs))
			}
		})
	}
}
