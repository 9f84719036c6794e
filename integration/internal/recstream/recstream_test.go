package recstream

import (
	"bytes"
	"errors"
	"testing"
)

// The verifiers trust Parse to tell whole, torn, zero-filled and corrupted records apart; check that it does.
func TestParse(t *testing.T) {
	log := Records(5, 3, 4096, 1<<20)
	off, seq := 0, uint64(0)
	for off < len(log) {
		h, n, err := Parse(log[off:])
		if err != nil || h.Writer != 3 || h.Seq != seq || !bytes.Equal(log[off:off+n], Record(5, 3, seq, 4096)) {
			t.Fatalf("offset %d: %+v %d %v", off, h, n, err)
		}
		if _, _, err := Parse(log[off : off+n-1]); !errors.Is(err, ErrShort) {
			t.Fatalf("torn record seq %d: %v, want ErrShort", seq, err)
		}
		off, seq = off+n, seq+1
	}
	rec := Record(5, 3, 0, 4096)
	bad := append([]byte(nil), rec...)
	bad[len(bad)-1] ^= 1
	if _, _, err := Parse(bad); err == nil || errors.Is(err, ErrShort) {
		t.Errorf("flipped payload bit: %v, want a checksum error", err)
	}
	if _, _, err := Parse(make([]byte, 64)); err == nil || errors.Is(err, ErrShort) {
		t.Errorf("zero fill: %v, want an error", err)
	}
}

func TestStreamIndependentOfChunking(t *testing.T) {
	want := StreamBytes(9, 100000)
	s, next := NewStream(9), ChunkSizes(9, 5000)
	var got []byte
	for len(got) < len(want) {
		b := make([]byte, min(next(), len(want)-len(got)))
		_, _ = s.Read(b)
		got = append(got, b...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("chunked stream differs")
	}
}
