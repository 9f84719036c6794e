package segments

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The commit file tells padding from data (doc.go). Its slots are one sector each, so a torn write
// damages one slot at most.
const (
	commitName      = ".commit"
	commitSlotSize  = 512
	commitRecordLen = 40
	commitMagic     = 0x31434753 // "SGC1" little endian
)

// commitRecord is laid out as doc.go says, at offsets 0, 4, 8, 16, 24, 32, 36.
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

func alignUp(n, block int64) int64 { return (n + block - 1) &^ (block - 1) }

// commitLog is a partition's open commit file, used under writer.mu.
type commitLog struct {
	fs       diskCalls
	path     string
	fd       int
	cur      commitRecord
	have     bool
	prev     commitRecord
	havePrev bool
	slot     []byte
	iov      [][]byte
}

// openCommit opens or creates dir's commit file; created asks the caller to sync the directory.
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
	// Allocate both slots now: on a full disk a record must not fail the Sync that needs it. Best effort.
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

func (c *commitLog) latest(base int64) (commitRecord, bool) {
	return c.cur, c.have && c.cur.Base == base
}

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

// write makes a record durable in the slot the current one does not occupy. On failure the caller
// must not write the padded block.
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
		// The slot may be torn; the next record reuses it, keeping the current one intact.
		c.havePrev = false
		return fmt.Errorf("write commit record %s: %w", c.path, err)
	}
	c.prev, c.havePrev = c.cur, c.have
	c.cur, c.have = r, true
	return nil
}

// stale reports whether recovery could cut segment base, durable at length: its end is a record's
// block end and the current record is not exact.
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
	if c == nil {
		return nil // a released partition's (idle.go)
	}
	if err := c.fs.sys.Close(c.fd); err != nil {
		return fmt.Errorf("close %s: %w", c.path, err)
	}
	return nil
}

// recoveredSize is doc.go's recovery rule; crc gives the CRC-32C of the file's bytes [off, off+n).
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
