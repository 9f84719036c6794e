package bench

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const testMsgSize = 100

// stream returns batches of producer 3's messages, stamped with increasing send times, concatenated.
func stream(t *testing.T, batches, perBatch int) []byte {
	t.Helper()
	e := NewEncoder(3, testMsgSize, perBatch)
	var out []byte
	for i := range batches {
		b := e.Next()
		e.Stamp(int64(1000 + i))
		out = append(out, b...)
	}
	return out
}

// feedAll feeds b in pieces of step bytes and returns the first error and the send times seen.
func feedAll(v *Verifier, b []byte, step int) ([]int64, error) {
	var sends []int64
	for len(b) > 0 {
		n := min(step, len(b))
		if err := v.Feed(b[:n], func(s int64) { sends = append(sends, s) }); err != nil {
			return sends, err
		}
		b = b[n:]
	}
	return sends, nil
}

func TestVerifierAcceptsExactStreamInAnyPieces(t *testing.T) {
	s := stream(t, 3, 4) // 12 messages
	for _, step := range []int{1, 7, testMsgSize - 1, testMsgSize, testMsgSize + 1, 399, len(s)} {
		v := NewVerifier(3, testMsgSize)
		sends, err := feedAll(v, s, step)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if err := v.Finish(12); err != nil {
			t.Fatalf("step %d: Finish: %v", step, err)
		}
		want := []int64{1000, 1000, 1000, 1000, 1001, 1001, 1001, 1001, 1002, 1002, 1002, 1002}
		if !slices.Equal(sends, want) {
			t.Fatalf("step %d: send times %v, want %v", step, sends, want)
		}
		if v.Bytes() != int64(len(s)) || v.Messages() != 12 {
			t.Fatalf("step %d: Bytes %d Messages %d", step, v.Bytes(), v.Messages())
		}
	}
}

// msg returns message i of s.
func msg(s []byte, i int) []byte { return s[i*testMsgSize : (i+1)*testMsgSize] }

func TestVerifierDetects(t *testing.T) {
	s := stream(t, 2, 5) // 10 messages
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		want   string
		offset int64
	}{
		{"dropped message", func(b []byte) []byte { return slices.Concat(b[:3*testMsgSize], b[4*testMsgSize:]) },
			"1 messages lost", 3 * testMsgSize},
		{"dropped bytes", func(b []byte) []byte { return slices.Concat(b[:250], b[260:]) },
			"corrupted", 2 * testMsgSize},
		{"duplicated message", func(b []byte) []byte { return slices.Concat(b[:5*testMsgSize], msg(b, 4), b[5*testMsgSize:]) },
			"got 4 again", 5 * testMsgSize},
		{"reordered messages", func(b []byte) []byte {
			return slices.Concat(b[:6*testMsgSize], msg(b, 7), msg(b, 6), b[8*testMsgSize:])
		}, "expected message 6, got 7", 6 * testMsgSize},
		{"corrupted payload byte", func(b []byte) []byte { c := slices.Clone(b); c[8*testMsgSize+60] ^= 1; return c },
			"message 8 corrupted", 8 * testMsgSize},
		{"corrupted sequence number", func(b []byte) []byte { c := slices.Clone(b); c[2*testMsgSize+8] ^= 1; return c },
			"message 2 corrupted", 2 * testMsgSize},
		{"zero-filled block", func(b []byte) []byte {
			c := slices.Clone(b)
			clear(c[testMsgSize : 3*testMsgSize])
			return c
		}, "no message header", testMsgSize},
		{"send time going back", func(b []byte) []byte {
			c := slices.Clone(b)
			c[5*testMsgSize+16] = 0 // send time isn't checksummed (stamped after); it must still be monotonic
			c[5*testMsgSize+17] = 0
			return c
		}, "reordered", 5 * testMsgSize},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{1, 33, len(s)} {
				_, err := feedAll(NewVerifier(3, testMsgSize), tc.mutate(s), step)
				var ve *VerifyError
				if !errors.As(err, &ve) {
					t.Fatalf("step %d: got %v, want a VerifyError", step, err)
				}
				if !strings.Contains(ve.Error(), tc.want) || ve.Offset != tc.offset {
					t.Fatalf("step %d: got %q at offset %d, want %q at %d", step, ve.Error(), ve.Offset, tc.want, tc.offset)
				}
			}
		})
	}
}

func TestVerifierDetectsAnotherPartitionsBytes(t *testing.T) {
	e := NewEncoder(1, testMsgSize, 2)
	err := NewVerifier(3, testMsgSize).Feed(e.Next(), nil)
	if err == nil || !strings.Contains(err.Error(), "another partition") {
		t.Fatalf("got %v, want another-partition error", err)
	}
}

func TestVerifierFinishDetectsMissingTailAndExtraBytes(t *testing.T) {
	s := stream(t, 2, 5)
	v := NewVerifier(3, testMsgSize)
	if _, err := feedAll(v, s[:9*testMsgSize], 64); err != nil {
		t.Fatal(err)
	}
	if err := v.Finish(10); err == nil || !strings.Contains(err.Error(), "1 lost") {
		t.Fatalf("missing last message: got %v", err)
	}
	if err := v.Finish(8); err == nil || !strings.Contains(err.Error(), "wrote only 8") {
		t.Fatalf("extra message: got %v", err)
	}
	if err := v.Feed(s[9*testMsgSize:9*testMsgSize+10], nil); err != nil {
		t.Fatal(err)
	}
	if err := v.Finish(9); err == nil || !strings.Contains(err.Error(), "partial message") {
		t.Fatalf("torn last message: got %v", err)
	}
}

func TestEncoderBatchesContinueSequence(t *testing.T) {
	e := NewEncoder(0, HeaderSize, 3) // header-only messages are valid too
	v := NewVerifier(0, HeaderSize)
	for range 4 {
		if err := v.Feed(e.Next(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Finish(12); err != nil {
		t.Fatal(err)
	}
}
