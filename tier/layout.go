package tier

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"time"
)

// Metadata keys; see doc.go.
const (
	metaBlock = "segfs-block"
	metaCRC   = "segfs-crc32c"
	metaMTime = "segfs-mtime"
)

const (
	minBlock  = 1 << 20
	maxBlocks = 256
)

// ErrBadObject marks an object that is not what segfs stored (size, checksum, metadata, or gone);
// its bytes are never returned.
var ErrBadObject = errors.New("bad object in the store")

// BlockSize is the block size of an object of size bytes: at least 1 MiB, at most 256 blocks.
func BlockSize(size int64) int64 {
	b := int64(minBlock)
	for size > b*maxBlocks {
		b *= 2
	}
	return b
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// layout holds an upload's checksums.
type layout struct {
	block    int64
	blocks   []uint32 // CRC-32C of each block
	crc      uint32   // CRC-32C of the whole segment
	partSize int64    // multipart part size; 0: one PUT
	parts    []uint32 // CRC-32C of each part
}

// layoutChunk divides every block and part size; its three CRCs read it from the CPU cache.
const layoutChunk = 256 << 10

// computeLayout reads r once for the CRC-32C of every block, every part and the whole.
func computeLayout(r io.ReaderAt, size, partSize int64, buf []byte) (layout, error) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	l := layout{block: BlockSize(size), partSize: partSize}
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := r.ReadAt(buf[:n], off); err != nil {
			return l, fmt.Errorf("read at %d: %w", off, err)
		}
		b := buf[:n]
		if off%l.block == 0 {
			l.blocks = append(l.blocks, 0)
		}
		l.blocks[len(l.blocks)-1] = crc32.Update(l.blocks[len(l.blocks)-1], tab, b)
		if partSize > 0 {
			if off%partSize == 0 {
				l.parts = append(l.parts, 0)
			}
			l.parts[len(l.parts)-1] = crc32.Update(l.parts[len(l.parts)-1], tab, b)
		}
		l.crc = crc32.Update(l.crc, tab, b)
	}
	return l, nil
}

func (l layout) metadata(mtime time.Time) map[string]string {
	raw := make([]byte, 4*len(l.blocks))
	for i, c := range l.blocks {
		binary.BigEndian.PutUint32(raw[4*i:], c)
	}
	return map[string]string{
		metaBlock: strconv.FormatInt(l.block, 10),
		metaCRC:   base64.StdEncoding.EncodeToString(raw),
		metaMTime: strconv.FormatInt(mtime.UnixNano(), 10),
	}
}

func parseLayout(meta map[string]string, size int64) (layout, error) {
	block, err := strconv.ParseInt(meta[metaBlock], 10, 64)
	if err != nil || block != BlockSize(size) {
		return layout{}, fmt.Errorf("%w: block size %q, want %d (not a segment segfs stored?)", ErrBadObject, meta[metaBlock], BlockSize(size))
	}
	raw, err := base64.StdEncoding.DecodeString(meta[metaCRC])
	want := (size + block - 1) / block
	if err != nil || int64(len(raw)) != 4*want {
		return layout{}, fmt.Errorf("%w: checksum table of %d bytes, want %d", ErrBadObject, len(raw), 4*want)
	}
	l := layout{block: block, blocks: make([]uint32, want)}
	for i := range l.blocks {
		l.blocks[i] = binary.BigEndian.Uint32(raw[4*i:])
	}
	return l, nil
}

// crcBase64 is the form of x-amz-checksum-crc32c: base64 of the big-endian value.
func crcBase64(c uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], c)
	return base64.StdEncoding.EncodeToString(b[:])
}
