package segments

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The commit file (DATA/<topic>/<partition>/.commit) removes the ambiguity of a zero-padded block: a
// direct-I/O flush writes the last partial block padded with zeros and only then truncates the file to
// its logical size, so a crash in between leaves zeros that look like data. Before every padded write,
// the partition writes and fdatasyncs a record naming the logical size and the checksum of the exact
// padded block; recovery truncates the padding away only when the file ends in that very block.
//
// The file has two 512-byte slots (one sector each, so a torn write damages one slot at most), written
// alternately; the valid slot with the higher sequence number is the current record, the other one
// the previous record. Recovery reads both: a file left padded by one record's write while the next
// record's padded write never happened ends in the previous record's block (persist=sync keeps the
// file padded between appends).
const (
	commitName      = ".commit"
	commitSlotSize  = 512
	commitRecordLen = 40
	commitMagic     = 0x31434753 // "SGC1" little endian
)

// commitRecord, little endian in its slot:
//
//	0  magic    u32  "SGC1"
//	4  block    u32  size of the padded block (the file's direct-I/O block)
//	8  seq      u64  increases by one per record; the slot is seq%2
//	16 base     i64  segment the record is about
//	24 length   i64  logical length of that segment when the padded block was written
//	32 blockCRC u32  CRC-32C of the padded block [alignDown(length), alignUp(length))
//	36 crc      u32  CRC-32C of bytes 0..36
type commitRecord struct {
	Block    uint32
	Seq      uint64
	Base     int64
	Length   int64
	BlockCRC uint32
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

func (r commitRecord) encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], commitMagic)
	le.PutUint32(b[4:], r.Block)
	le.PutUint64(b[8:], r.Seq)
	le.PutUint64(b[16:], uint64(r.Base))
	le.PutUint64(b[24:], uint64(r.Length))
	le.PutUint32(b[32:], r.BlockCRC)
	le.PutUint32(b[36:], crc32c(b[:36]))
}

func decodeCommit(b []byte) (commitRecord, bool) {
	le := binary.LittleEndian
	if len(b) < commitRecordLen || le.Uint32(b[0:]) != commitMagic || le.Uint32(b[36:]) != crc32c(b[:36]) {
		return commitRecord{}, false
	}
	r := commitRecord{
		Block: le.Uint32(b[4:]), Seq: le.Uint64(b[8:]), Base: int64(le.Uint64(b[16:])),
		Length: int64(le.Uint64(b[24:])), BlockCRC: le.Uint32(b[32:]),
	}
	if r.Block == 0 || r.Block&(r.Block-1) != 0 || r.Length < 0 || r.Base < 0 {
		return commitRecord{}, false
	}
	return r, true
}

// alignUp rounds n up to a multiple of block (a power of two).
func alignUp(n, block int64) int64 { return (n + block - 1) &^ (block - 1) }

// commitLog is a partition's open commit file. Its methods are called with the partition's file lock
// held, so it needs no lock of its own.
type commitLog struct {
	fs       diskCalls
	path     string
	fd       int
	cur      commitRecord // latest record written or read; valid when have
	have     bool
	prev     commitRecord // the other slot's record, as read or last written; valid when havePrev
	havePrev bool
	slot     []byte
	iov      [][]byte
}

// openCommit opens (creating if missing) the commit file of a partition directory and reads its
// current record. created tells the caller to make the new entry durable with a directory sync.
func openCommit(fs diskCalls, dir string) (c *commitLog, created bool, err error) {
	path := filepath.Join(dir, commitName)
	fd, err := fs.sys.Open(path, unix.O_RDWR, 0)
	if errors.Is(err, unix.ENOENT) {
		fd, err = fs.sys.Open(path, unix.O_RDWR|unix.O_CREAT, 0o644)
		created = true
	}
	if err != nil {
		return nil, false, fmt.Errorf("open %s: %w", path, err)
	}
	// Both slots get their disk blocks now, while there is room: a record precedes every padded write,
	// so on a full disk a record that needed a new block would fail the very Sync (or Close) that
	// makes acknowledged bytes durable. KEEP_SIZE changes neither the size nor the content. Failing
	// (no fallocate, or the disk is full already) only loses that head start: the first record then
	// allocates the block as before.
	_ = fs.sys.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 0, 2*commitSlotSize)
	c = &commitLog{fs: fs, path: path, fd: fd, slot: make([]byte, commitSlotSize), iov: make([][]byte, 1)}
	buf := make([]byte, 2*commitSlotSize)
	n, err := fs.sys.Pread(fd, buf, 0)
	if err != nil {
		_ = fs.sys.Close(fd)
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	buf = buf[:n]
	for i := 0; i+commitRecordLen <= len(buf) && i < 2*commitSlotSize; i += commitSlotSize {
		r, ok := decodeCommit(buf[i:])
		switch {
		case !ok:
		case !c.have || r.Seq > c.cur.Seq:
			c.prev, c.havePrev = c.cur, c.have
			c.cur, c.have = r, true
		default:
			c.prev, c.havePrev = r, true
		}
	}
	return c, created, nil
}

// latest is the current record for segment base, if any.
func (c *commitLog) latest(base int64) (commitRecord, bool) {
	return c.cur, c.have && c.cur.Base == base
}

// records are the records about segment base, the current one first: what recovery consults.
func (c *commitLog) records(base int64) []commitRecord {
	var out []commitRecord
	if c.have && c.cur.Base == base {
		out = append(out, c.cur)
	}
	if c.havePrev && c.prev.Base == base {
		out = append(out, c.prev)
	}
	return out
}

// write makes a record durable in the slot the previous record does not occupy. If it fails, the
// other slot still holds the previous record and the caller must not write the padded block.
func (c *commitLog) write(base, length int64, block int, blockCRC uint32) error {
	r := commitRecord{Block: uint32(block), Seq: c.cur.Seq + 1, Base: base, Length: length, BlockCRC: blockCRC}
	clear(c.slot)
	r.encode(c.slot)
	c.iov[0] = c.slot
	off := int64(r.Seq%2) * commitSlotSize
	n, err := c.fs.sys.Pwritev(c.fd, c.iov, off)
	c.iov[0] = nil
	if err == nil && n != commitSlotSize {
		err = fmt.Errorf("short write of %d bytes", n)
	}
	if err == nil {
		err = c.fs.sys.Fdatasync(c.fd)
	}
	if err != nil {
		// The slot may be torn now; the next record goes to the same slot again, keeping the other
		// one, which still holds the previous record, intact. The slot held the record before that.
		c.havePrev = false
		return fmt.Errorf("write commit record %s: %w", c.path, err)
	}
	c.prev, c.havePrev = c.cur, c.have
	c.cur, c.have = r, true
	return nil
}

// stale reports whether a record could still make recovery cut a segment of base that was just made
// durable at length: recovery cuts at most up to the end of a record's block, so only a segment that
// now ends exactly there (with zero bytes after the recorded length) is at risk. A current record of
// exactly length protects the segment, as recovery stops at it.
func (c *commitLog) stale(base, length int64) bool {
	recs := c.records(base)
	if len(recs) > 0 && recs[0].Length == length {
		return false
	}
	for _, r := range recs {
		if r.Length != length && length == alignUp(r.Length, int64(r.Block)) {
			return true
		}
	}
	return false
}

func (c *commitLog) close() error {
	if err := c.fs.sys.Close(c.fd); err != nil {
		return fmt.Errorf("close %s: %w", c.path, err)
	}
	return nil
}

// recoveredSize is the recovery rule for the active segment. size is the file size, recs the commit
// records about the segment, the current one first (records), and lastBlockCRC returns the CRC-32C of
// the file's bytes [off, off+n). It returns the logical size of the segment: the length of the first
// record whose padded block the file ends in exactly (a padded write that was never truncated, or
// whose successor's padded write never happened), the file size if none matches or a record says the
// file is exact.
func recoveredSize(size int64, recs []commitRecord, lastBlockCRC func(off, n int64) (uint32, error)) (int64, error) {
	for _, rec := range recs {
		block := int64(rec.Block)
		if size == rec.Length {
			return size, nil
		}
		if size != alignUp(rec.Length, block) {
			continue
		}
		crc, err := lastBlockCRC(size-block, block)
		if err != nil {
			return 0, err
		}
		if crc == rec.BlockCRC {
			return rec.Length, nil
		}
	}
	return size, nil
}
