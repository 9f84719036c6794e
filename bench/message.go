package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
)

// Message layout (little endian), HeaderSize bytes of header then a payload that fills the message:
//
//	0  magic    u32  "SGFB": a zero-filled or padded region fails here first
//	4  producer u32  so bytes of another partition are caught
//	8  seq      u64  per producer, from 0: catches loss, duplication and reordering
//	16 sendNs   i64  monotonic ns since the run's clock base, stamped just before write()
//	24 crc      u32  CRC32C of payload, then bytes 0..16 of the header
//
// The CRC leaves sendNs out so a producer can checksum a batch before it takes the timestamp: the checksum
// work then does not count as end-to-end latency. The verifier checks sendNs for monotonicity instead.
const (
	HeaderSize   = 28
	messageMagic = 0x42464753 // "SGFB" little endian
)

// payloadFor is the producer's fixed payload: pseudo-random (never zero-like) and different per producer,
// so the verifier can compare every payload byte, not just trust the checksum.
func payloadFor(producer uint32, messageSize int) []byte {
	p := make([]byte, messageSize-HeaderSize)
	r := rand.New(rand.NewPCG(uint64(producer)+1, 0x5e6f5))
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// Encoder fills one producer's batch buffer. Payloads are written once; each batch only rewrites headers.
type Encoder struct {
	crc        *crc32.Table
	producer   uint32
	size       int
	payloadCRC uint32
	buf        []byte
	next       uint64
}

// NewEncoder returns an encoder of batches of n messages of messageSize bytes for producer.
func NewEncoder(producer uint32, messageSize, n int) *Encoder {
	payload := payloadFor(producer, messageSize)
	crc := crc32.MakeTable(crc32.Castagnoli) // cached by the crc32 package; hardware accelerated
	e := &Encoder{crc: crc, producer: producer, size: messageSize, payloadCRC: crc32.Checksum(payload, crc),
		buf: make([]byte, messageSize*n)}
	for off := 0; off < len(e.buf); off += messageSize {
		copy(e.buf[off+HeaderSize:off+messageSize], payload)
	}
	return e
}

// Next encodes the next batch (sequence numbers continue from the previous batch) without a timestamp.
func (e *Encoder) Next() []byte {
	for off := 0; off < len(e.buf); off += e.size {
		h := e.buf[off : off+HeaderSize]
		binary.LittleEndian.PutUint32(h[0:], messageMagic)
		binary.LittleEndian.PutUint32(h[4:], e.producer)
		binary.LittleEndian.PutUint64(h[8:], e.next)
		binary.LittleEndian.PutUint32(h[24:], crc32.Update(e.payloadCRC, e.crc, h[0:16]))
		e.next++
	}
	return e.buf
}

// Stamp sets the send time of every message of the batch returned by Next.
func (e *Encoder) Stamp(sendNs int64) {
	for off := 0; off < len(e.buf); off += e.size {
		binary.LittleEndian.PutUint64(e.buf[off+16:], uint64(sendNs))
	}
}

// VerifyError says where and how the bytes a consumer read differ from what its producer wrote.
type VerifyError struct {
	Producer uint32
	Offset   int64 // byte offset in the partition of the bad message
	Reason   string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("data mismatch in partition of producer %d at byte offset %d: %s", e.Producer, e.Offset, e.Reason)
}

// Verifier checks one partition's byte stream, fed in arbitrary pieces, against what its producer wrote.
type Verifier struct {
	crc        *crc32.Table
	producer   uint32
	size       int
	payload    []byte
	payloadCRC uint32
	next       uint64 // next expected seq
	lastSend   int64
	carry      []byte // a message split across reads
	offset     int64  // stream offset of carry[0]
}

// NewVerifier returns a verifier for the stream of producer's messages of messageSize bytes.
func NewVerifier(producer uint32, messageSize int) *Verifier {
	p := payloadFor(producer, messageSize)
	crc := crc32.MakeTable(crc32.Castagnoli)
	return &Verifier{crc: crc, producer: producer, size: messageSize, payload: p,
		payloadCRC: crc32.Checksum(p, crc), carry: make([]byte, 0, messageSize)}
}

// Messages is the number of whole messages verified so far.
func (v *Verifier) Messages() uint64 { return v.next }

// Bytes is the number of bytes fed so far.
func (v *Verifier) Bytes() int64 { return v.offset + int64(len(v.carry)) }

// Feed verifies b, the next bytes of the stream. For each complete message it calls seen with the message's
// send time, so the caller can record end-to-end latency. It returns the first mismatch as a *VerifyError.
func (v *Verifier) Feed(b []byte, seen func(sendNs int64)) error {
	if len(v.carry) > 0 {
		n := min(v.size-len(v.carry), len(b))
		v.carry = append(v.carry, b[:n]...)
		b = b[n:]
		if len(v.carry) < v.size {
			return nil
		}
		if err := v.check(v.carry, seen); err != nil {
			return err
		}
		v.carry = v.carry[:0]
	}
	for len(b) >= v.size {
		if err := v.check(b[:v.size], seen); err != nil {
			return err
		}
		b = b[v.size:]
	}
	v.carry = append(v.carry, b...)
	return nil
}

func (v *Verifier) check(m []byte, seen func(int64)) error {
	fail := func(format string, args ...any) error {
		return &VerifyError{Producer: v.producer, Offset: v.offset, Reason: fmt.Sprintf(format, args...)}
	}
	if magic := binary.LittleEndian.Uint32(m[0:]); magic != messageMagic {
		return fail("expected message %d, found no message header (magic %#08x): lost, shifted or zero-filled bytes", v.next, magic)
	}
	if p := binary.LittleEndian.Uint32(m[4:]); p != v.producer {
		return fail("message of producer %d in this partition: bytes of another partition", p)
	}
	if crc := crc32.Update(v.payloadCRC, v.crc, m[0:16]); crc != binary.LittleEndian.Uint32(m[24:]) || !bytes.Equal(m[HeaderSize:], v.payload) {
		return fail("message %d corrupted: checksum or payload differs from what was written", v.next)
	}
	switch seq := binary.LittleEndian.Uint64(m[8:]); {
	case seq > v.next:
		return fail("expected message %d, got %d: %d messages lost", v.next, seq, seq-v.next)
	case seq < v.next:
		return fail("expected message %d, got %d again: duplicated or reordered", v.next, seq)
	}
	send := int64(binary.LittleEndian.Uint64(m[16:]))
	if send < v.lastSend {
		return fail("message %d sent at %dns, before message %d (%dns): reordered", v.next, send, v.next-1, v.lastSend)
	}
	v.lastSend = send
	v.next++
	v.offset += int64(v.size)
	if seen != nil {
		seen(send)
	}
	return nil
}

// Finish checks that the stream ended exactly where the producer stopped: messages whole messages were
// written and nothing (not even part of a message) follows them.
func (v *Verifier) Finish(messages uint64) error {
	switch {
	case len(v.carry) > 0:
		return &VerifyError{Producer: v.producer, Offset: v.offset,
			Reason: fmt.Sprintf("stream ends with %d bytes of a partial message", len(v.carry))}
	case v.next < messages:
		return &VerifyError{Producer: v.producer, Offset: v.offset,
			Reason: fmt.Sprintf("stream ends after %d messages, producer wrote %d: %d lost", v.next, messages, messages-v.next)}
	case v.next > messages:
		return &VerifyError{Producer: v.producer, Offset: v.offset,
			Reason: fmt.Sprintf("stream has %d messages, producer wrote only %d", v.next, messages)}
	}
	return nil
}
