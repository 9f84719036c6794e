package tier

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sys/unix"
)

// uploadObject stores the sealed segment file at path as obj (obj.Size bytes, obj.ModTime its seal time)
// and returns obj with its ETag and CRC once the store has verified the CRC-32C and a HEAD shows the
// object with that size and checksum: only then does the segment count as uploaded. An object that
// is already there with the same size and checksum (an upload a crash interrupted after it finished)
// is not sent again.
func (s *Store) uploadObject(ctx context.Context, obj Object, path string) (Object, error) {
	key := s.Key(obj.Topic, obj.Partition, obj.Base)
	f, err := os.Open(path)
	if err != nil {
		return obj, fmt.Errorf("tier: upload %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return obj, fmt.Errorf("tier: upload %s: %w", key, err)
	}
	if fi.Size() != obj.Size {
		return obj, fmt.Errorf("tier: upload %s: %s holds %d bytes, the segment %d", key, path, fi.Size(), obj.Size)
	}
	// Read once for the checksums, once to send: tell the kernel to read ahead, as for any scan.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	lay, err := idleIO(func() (layout, error) { return computeLayout(f, obj.Size) })
	if err != nil {
		return obj, fmt.Errorf("tier: upload %s: %w", key, err)
	}
	if etag, ok := s.stored(ctx, key, obj.Size, lay.crc); ok {
		obj.ETag, obj.CRC = etag, lay.crc
		return obj, nil
	}
	return s.put(ctx, obj, io.NewSectionReader(f, 0, obj.Size), lay)
}

// put sends body, whose checksums lay holds, and verifies the result.
func (s *Store) put(ctx context.Context, obj Object, body io.ReadSeeker, lay layout) (Object, error) {
	key := s.Key(obj.Topic, obj.Partition, obj.Base)
	mtime := obj.ModTime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	_, err := s.tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket:            aws.String(s.cfg.Bucket),
		Key:               aws.String(key),
		Body:              body,
		ContentLength:     aws.Int64(obj.Size),
		ContentType:       aws.String("application/octet-stream"),
		Metadata:          lay.metadata(mtime),
		ChecksumAlgorithm: tmtypes.ChecksumAlgorithmCrc32c,
		// FULL_OBJECT: the store checks this value against all the bytes, also of a multipart
		// upload, where it combines the parts' CRCs.
		ChecksumType:   tmtypes.ChecksumTypeFullObject,
		ChecksumCRC32C: aws.String(crcBase64(lay.crc)),
		MpuObjectSize:  aws.Int64(obj.Size),
	})
	if err != nil {
		return obj, fmt.Errorf("tier: upload %s: %w", key, err)
	}
	etag, ok := s.stored(ctx, key, obj.Size, lay.crc)
	if !ok {
		return obj, fmt.Errorf("tier: upload %s: %w: the store does not show it with %d bytes and CRC-32C %s", key, ErrBadObject, obj.Size, crcBase64(lay.crc))
	}
	obj.ETag, obj.CRC = etag, lay.crc
	return obj, nil
}

// stored reports whether key holds an object of size bytes whose full-object CRC-32C the store
// reports as crc, and its ETag.
func (s *Store) stored(ctx context.Context, key string, size int64, crc uint32) (string, bool) {
	rctx, cancel := s.timeout(ctx)
	defer cancel()
	h, err := s.s3.HeadObject(rctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), ChecksumMode: s3types.ChecksumModeEnabled,
	})
	if err != nil {
		return "", false
	}
	if aws.ToInt64(h.ContentLength) != size || aws.ToString(h.ChecksumCRC32C) != crcBase64(crc) ||
		h.ChecksumType == s3types.ChecksumTypeComposite {
		return "", false
	}
	if _, err := parseLayout(h.Metadata, size); err != nil {
		return "", false
	}
	return aws.ToString(h.ETag), true
}
