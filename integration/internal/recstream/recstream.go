// Package recstream generates the deterministic data that the integration suite's writer processes append and
// its verifiers regenerate. A writer and a verifier never share memory (the writer is a separate process, and
// in the crash test it outlives the daemon), so every byte must be reproducible from a seed alone.
//
// Two shapes exist:
//   - a byte stream (Stream): pseudo-random bytes whose concatenation does not depend on how they are chunked;
//   - records: self-describing, checksummed units written with one write() each, so a parser can tell a whole
//     record, a torn one, zero-fill and foreign bytes apart.
//
// Record layout (little endian):
//
//	0  magic  uint32  "SEGR"
//	4  writer uint32
//	8  seq    uint64  0, 1, 2, ... per writer
//	16 len    uint32  payload length
//	20 crc    uint32  CRC-32C of bytes 0..19 and the payload
//	24 payload
package recstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
)

// HeaderSize is the fixed size of a record header.
const HeaderSize = 24

// Magic starts every record ("SEGR" in little endian).
const Magic uint32 = 0x52474553

// smallPayload bounds the common record size; one record in eight is drawn up to the caller's maximum instead,
// so a run mixes sub-block records with ones that span many blocks.
const smallPayload = 512

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrShort means the bytes are a plausible but incomplete record: a torn write at the end of a log.
var ErrShort = errors.New("record truncated")

// Header is the decoded fixed part of a record.
type Header struct {
	Writer uint32
	Seq    uint64
	Len    uint32
}

// NewStream returns the deterministic byte stream for seed as a ChaCha8 generator, whose Read output is the same
// whatever the sizes of the reads.
func NewStream(seed uint64) *rand.ChaCha8 {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "segfs-integration-stream")
	return rand.NewChaCha8(key)
}

// StreamBytes returns the first n bytes of the stream for seed.
func StreamBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = NewStream(seed).Read(b)
	return b
}

// ChunkSizes returns a generator of chunk sizes in [1, max] for seed, independent of the content stream.
func ChunkSizes(seed uint64, max int) func() int {
	r := rand.New(rand.NewPCG(seed, 0xc4a2))
	return func() int { return 1 + r.IntN(max) }
}

// PayloadLen is the payload length of record seq of writer w.
func PayloadLen(seed uint64, w uint32, seq uint64, maxPayload int) int {
	r := rand.New(rand.NewPCG(seed^uint64(w)<<32, seq))
	if maxPayload > smallPayload && r.IntN(8) == 0 {
		return r.IntN(maxPayload + 1)
	}
	return r.IntN(min(smallPayload, maxPayload) + 1)
}

// Record returns the complete bytes of record seq of writer w.
func Record(seed uint64, w uint32, seq uint64, maxPayload int) []byte {
	n := PayloadLen(seed, w, seq, maxPayload)
	b := make([]byte, HeaderSize+n)
	binary.LittleEndian.PutUint32(b[0:], Magic)
	binary.LittleEndian.PutUint32(b[4:], w)
	binary.LittleEndian.PutUint64(b[8:], seq)
	binary.LittleEndian.PutUint32(b[16:], uint32(n))
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], seed)
	binary.LittleEndian.PutUint32(key[8:], w)
	binary.LittleEndian.PutUint64(key[12:], seq)
	_, _ = rand.NewChaCha8(key).Read(b[HeaderSize:])
	binary.LittleEndian.PutUint32(b[20:], checksum(b[:20], b[HeaderSize:]))
	return b
}

// Records returns the concatenation of records 0.. of writer w until it holds at least n bytes.
func Records(seed uint64, w uint32, maxPayload int, n int) []byte {
	var out []byte
	for seq := uint64(0); len(out) < n; seq++ {
		out = append(out, Record(seed, w, seq, maxPayload)...)
	}
	return out
}

func checksum(head, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, head)
	return crc32.Update(c, castagnoli, payload)
}

// Parse decodes the record at the start of b and returns its header and total length. It returns ErrShort
// (wrapped) when b is too short to hold the record its header announces, and a descriptive error when b does not
// start with a valid record (bad magic, zero-fill, checksum mismatch).
func Parse(b []byte) (Header, int, error) {
	if len(b) < HeaderSize {
		if len(b) >= 4 && binary.LittleEndian.Uint32(b) != Magic {
			return Header{}, 0, fmt.Errorf("bad magic %#08x in a %d-byte tail", binary.LittleEndian.Uint32(b), len(b))
		}
		return Header{}, 0, fmt.Errorf("%d-byte header: %w", len(b), ErrShort)
	}
	if m := binary.LittleEndian.Uint32(b); m != Magic {
		if allZero(b[:HeaderSize]) {
			return Header{}, 0, errors.New("zero-filled bytes where a record header should be")
		}
		return Header{}, 0, fmt.Errorf("bad magic %#08x", m)
	}
	h := Header{
		Writer: binary.LittleEndian.Uint32(b[4:]),
		Seq:    binary.LittleEndian.Uint64(b[8:]),
		Len:    binary.LittleEndian.Uint32(b[16:]),
	}
	total := HeaderSize + int(h.Len)
	if len(b) < total {
		return h, 0, fmt.Errorf("writer %d seq %d: %d of %d bytes: %w", h.Writer, h.Seq, len(b), total, ErrShort)
	}
	if got, want := checksum(b[:20], b[HeaderSize:total]), binary.LittleEndian.Uint32(b[20:]); got != want {
		return h, 0, fmt.Errorf("writer %d seq %d: checksum %#08x, header says %#08x", h.Writer, h.Seq, got, want)
	}
	return h, total, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
