package tier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// blockRef names one block of one version of an object.
type blockRef struct {
	key  string
	etag string
	size int64
	k    int64
}

// readObject reads obj's bytes [off, off+len(b)) with io.ReaderAt semantics. Every byte comes from a block
// verified against the object's checksum table; a size or checksum mismatch, missing metadata or a
// missing key fail with an error wrapping ErrBadObject. Each fetch is bounded by Config.Timeout.
func (s *Store) readObject(obj Object, b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("tier: read at %d: negative offset", off)
	}
	if off >= obj.Size {
		if len(b) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	key := s.Key(obj.Topic, obj.Partition, obj.Base)
	bs := BlockSize(obj.Size)
	first := off / bs
	if first == 0 || s.seq.sequential(key, first) {
		s.readAhead(key, obj, first)
	}
	n := 0
	for n < len(b) && off+int64(n) < obj.Size {
		pos := off + int64(n)
		ref := blockRef{key: key, etag: obj.ETag, size: obj.Size, k: pos / bs}
		// A reader going on within the block it read last is not reading it again: only a new
		// access counts toward protecting the block in the cache.
		data, err := s.block(ref, !s.seq.same(key, ref.k))
		if err != nil {
			return n, err
		}
		n += copy(b[n:], data[pos-ref.k*bs:])
		s.seq.read(key, ref.k)
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// seqTracker remembers the last block read of each object, to tell sequential reads apart.
type seqTracker struct {
	mu   sync.Mutex
	last map[string]int
}

// maxTracked bounds the objects tracked; beyond it the map starts over, which costs one missed
// readahead per object being read.
const maxTracked = 4096

func (t *seqTracker) sequential(key string, k int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, ok := t.last[key]
	return ok && (int64(last) == k || int64(last)+1 == k)
}

func (t *seqTracker) same(key string, k int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, ok := t.last[key]
	return ok && int64(last) == k
}

func (t *seqTracker) read(key string, k int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.last) >= maxTracked {
		clear(t.last)
	}
	t.last[key] = int(k)
}

// failFast is how long after a fetch the store did not answer others fail at once: long enough for
// the request the kernel sends right behind a failed one, short enough not to outlast an outage.
const failFast = 250 * time.Millisecond

// readAheadBytes is how far ahead of a sequential reader blocks are fetched.
const readAheadBytes = 8 << 20

// readAhead queues the blocks after k that are neither cached nor being fetched. A full queue drops
// them: readahead is a hint, and a foreground read fetches whatever it needs itself.
func (s *Store) readAhead(key string, obj Object, k int64) {
	bs := BlockSize(obj.Size)
	last := (obj.Size - 1) / bs
	for i := k + 1; i <= min(last, k+max(2, readAheadBytes/bs)); i++ {
		ref := blockRef{key: key, etag: obj.ETag, size: obj.Size, k: i}
		if s.cache.has(ref) || s.flight.busy(ref) {
			continue
		}
		select {
		case s.prefetch <- ref:
		default:
			return
		}
	}
}

func (s *Store) prefetchLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case ref := <-s.prefetch:
			if _, err := s.block(ref, false); err != nil {
				s.cfg.Logger.WithError(err).WithField("key", ref.key).Debug("tier: readahead failed")
			}
		}
	}
}

// block returns the verified bytes of one block: from the cache, from a fetch in flight, or fetched
// now. access counts it as a reader's access for the cache (readahead does not).
func (s *Store) block(ref blockRef, access bool) ([]byte, error) {
	if data, ok := s.cache.get(ref, access); ok {
		return data, nil
	}
	// A store that just failed to answer fails the reads that follow at once, for a short while:
	// the kernel's readahead and the read behind it must not each wait for a whole timeout.
	if at := s.downAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < min(failFast, s.cfg.Timeout) {
		return nil, fmt.Errorf("tier: read %s: the store did not answer %v ago", ref.key, time.Since(time.Unix(0, at)).Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	return s.flight.do(ctx, ref, func() ([]byte, error) {
		data, err := s.fetch(ctx, ref)
		switch {
		case err == nil:
			s.downAt.Store(0)
			s.cache.put(ref, data, access)
		case !errors.Is(err, ErrBadObject):
			s.downAt.Store(time.Now().UnixNano())
		}
		return data, err
	})
}

// fetch GETs one block and verifies it against the checksum table of the same response.
func (s *Store) fetch(ctx context.Context, ref blockRef) ([]byte, error) {
	bs := BlockSize(ref.size)
	start := ref.k * bs
	end := min(start+bs, ref.size)
	in := &s3.GetObjectInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(ref.key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", start, end-1)),
	}
	if ref.etag != "" {
		in.IfMatch = aws.String(ref.etag)
	}
	out, err := s.s3.GetObject(ctx, in)
	if err != nil {
		if isNotFound(err) || isPrecondition(err) {
			return nil, fmt.Errorf("tier: read %s: %w: %v", ref.key, ErrBadObject, rootCause(err))
		}
		return nil, fmt.Errorf("tier: read %s: %w", ref.key, err)
	}
	defer out.Body.Close()
	if total := contentTotal(aws.ToString(out.ContentRange)); total != ref.size {
		return nil, fmt.Errorf("tier: read %s: %w: object holds %d bytes, the segment %d", ref.key, ErrBadObject, total, ref.size)
	}
	lay, err := parseLayout(out.Metadata, ref.size)
	if err != nil {
		return nil, fmt.Errorf("tier: read %s: %w", ref.key, err)
	}
	data := make([]byte, end-start)
	if _, err := io.ReadFull(out.Body, data); err != nil {
		return nil, fmt.Errorf("tier: read %s at %d: %w", ref.key, start, err)
	}
	if got, want := crc32c(data), lay.blocks[ref.k]; got != want {
		return nil, fmt.Errorf("tier: read %s: %w: block %d has CRC-32C %08x, want %08x", ref.key, ErrBadObject, ref.k, got, want)
	}
	return data, nil
}

// contentTotal is the complete length of a Content-Range "bytes a-b/TOTAL", or -1.
func contentTotal(cr string) int64 {
	i := strings.LastIndexByte(cr, '/')
	if i < 0 {
		return -1
	}
	n, err := strconv.ParseInt(cr[i+1:], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func isPrecondition(err error) bool { return httpStatus(err) == http.StatusPreconditionFailed }

// flights shares one fetch of a block among everyone who needs it at the same time.
type flights struct {
	mu sync.Mutex
	m  map[blockRef]*flight
}

type flight struct {
	done chan struct{}
	data []byte
	err  error
}

func (f *flights) busy(ref blockRef) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.m[ref]
	return ok
}

// do runs fetch unless a fetch of ref is in flight, whose result it then waits for (at most until ctx
// ends). The fetch runs in the caller's goroutine, with the caller's deadline.
func (f *flights) do(ctx context.Context, ref blockRef, fetch func() ([]byte, error)) ([]byte, error) {
	f.mu.Lock()
	if fl, ok := f.m[ref]; ok {
		f.mu.Unlock()
		select {
		case <-fl.done:
			return fl.data, fl.err
		case <-ctx.Done():
			return nil, fmt.Errorf("tier: read %s: %w", ref.key, ctx.Err())
		}
	}
	fl := &flight{done: make(chan struct{})}
	f.m[ref] = fl
	f.mu.Unlock()
	fl.data, fl.err = fetch()
	f.mu.Lock()
	delete(f.m, ref)
	f.mu.Unlock()
	close(fl.done)
	return fl.data, fl.err
}

// IsBadObject reports whether err says the store holds something other than what segfs stored.
func IsBadObject(err error) bool { return errors.Is(err, ErrBadObject) }
