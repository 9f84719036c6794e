package tier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sys/unix"
)

// uploadObject returns obj with ETag and CRC once the store verified the CRC-32C and a HEAD shows
// size and checksum. An object a crash left already stored is not sent again.
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
	// Read once for the checksums, once to send.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	buf := s.bufs.Get().(*[]byte)
	lay, err := idleIO(func() (layout, error) { return computeLayout(f, obj.Size, s.partSize(obj.Size), *buf) })
	s.bufs.Put(buf)
	if err != nil {
		return obj, fmt.Errorf("tier: upload %s: %w", key, err)
	}
	if etag, ok := s.stored(ctx, key, obj.Size, lay.crc); ok {
		obj.ETag, obj.CRC = etag, lay.crc
		return obj, nil
	}
	return s.put(ctx, obj, f, lay)
}

// partSize is the multipart part size, or 0 for one PUT; a multiple of layoutChunk, so one pass
// over the file computes every part's CRC.
func (s *Store) partSize(size int64) int64 {
	ps := s.cfg.PartSize
	if size < 2*ps {
		return 0
	}
	ps = max(ps, (size+maxParts-1)/maxParts)
	return (ps + layoutChunk - 1) / layoutChunk * layoutChunk
}

const maxParts = 10000

// put sends body and verifies the result. Request bodies are sections of body, read as sent:
// buffered parts would cost heap and garbage collections that keep threads from FUSE requests.
func (s *Store) put(ctx context.Context, obj Object, body io.ReaderAt, lay layout) (Object, error) {
	key := s.Key(obj.Topic, obj.Partition, obj.Base)
	mtime := obj.ModTime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	var err error
	if len(lay.parts) == 0 {
		_, err = s.up.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key),
			Body: io.NewSectionReader(body, 0, obj.Size), ContentLength: aws.Int64(obj.Size),
			ContentType: aws.String(contentType), Metadata: lay.metadata(mtime),
			ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c, ChecksumCRC32C: aws.String(crcBase64(lay.crc)),
		})
	} else {
		err = s.putMultipart(ctx, key, obj.Size, body, lay, mtime)
	}
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

const contentType = "application/octet-stream"

// putMultipart sends Config.Concurrency parts at a time, each with its CRC-32C, and completes with
// the FULL_OBJECT CRC-32C, which the store checks. A failed upload is aborted.
func (s *Store) putMultipart(ctx context.Context, key string, size int64, body io.ReaderAt, lay layout, mtime time.Time) error {
	mpu, err := s.up.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), ContentType: aws.String(contentType),
		Metadata: lay.metadata(mtime), ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c,
		ChecksumType: s3types.ChecksumTypeFullObject,
	})
	if err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := make([]s3types.CompletedPart, len(lay.parts))
	errs := make([]error, len(lay.parts))
	sem := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, crc := range lay.parts {
		select {
		case sem <- struct{}{}:
		case <-pctx.Done():
		}
		if pctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			off := int64(i) * lay.partSize
			n := min(lay.partSize, size-off)
			out, err := s.up.UploadPart(pctx, &s3.UploadPartInput{
				Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), UploadId: mpu.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: io.NewSectionReader(body, off, n), ContentLength: aws.Int64(n),
				ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c, ChecksumCRC32C: aws.String(crcBase64(crc)),
			})
			if err != nil {
				errs[i] = fmt.Errorf("part %d: %w", i+1, err)
				cancel()
				return
			}
			parts[i] = s3types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumCRC32C: out.ChecksumCRC32C}
		}()
	}
	wg.Wait()
	err = ctx.Err()
	for _, e := range errs {
		// The failure itself, not the cancellations it caused in the other parts.
		if e != nil && (err == nil || errors.Is(err, context.Canceled) && !errors.Is(e, context.Canceled)) {
			err = e
		}
	}
	if err == nil {
		_, err = s.up.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), UploadId: mpu.UploadId,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts},
			ChecksumCRC32C:  aws.String(crcBase64(lay.crc)), ChecksumType: s3types.ChecksumTypeFullObject,
			MpuObjectSize: aws.Int64(size),
		})
	}
	if err != nil {
		// Its own context: the upload's may be canceled. The next mount's AbortUploads finds the rest.
		actx, acancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		defer acancel()
		_, _ = s.up.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), UploadId: mpu.UploadId,
		})
	}
	return err
}

// stored reports whether key holds size bytes with full-object CRC-32C crc, and its ETag.
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
