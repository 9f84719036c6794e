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

// readObject has io.ReaderAt semantics; a bad object fails with ErrBadObject.
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
	// A scan: the object's start, near the last block read, or right after a cached or coming block.
	prev := blockRef{key: key, etag: obj.ETag, size: obj.Size, k: first - 1}
	sequential := first == 0 || s.seq.sequential(key, first) || s.flight.busy(prev) || s.cache.has(prev)
	n, waited := 0, false
	defer func() {
		if waited {
			s.misses.Add(1)
		} else {
			s.hits.Add(1)
		}
	}()
	for n < len(b) && off+int64(n) < obj.Size {
		pos := off + int64(n)
		ref := blockRef{key: key, etag: obj.ETag, size: obj.Size, k: pos / bs}
		// Only a block's first read in a while counts toward protecting it, not the kernel's split reads.
		access := s.seq.read(key, ref.k)
		data, fetched, err := s.block(ref, access, sequential)
		waited = waited || fetched
		if err != nil {
			return n, err
		}
		c := copy(b[n:], data.b[pos-ref.k*bs:])
		n += c
		data.release()
		if sequential {
			s.cache.consumed(ref, c)
			s.readAhead(ref)
		}
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// seqTracker tells sequential reads and new accesses apart, per object.
type seqTracker struct {
	mu   sync.Mutex
	last map[string]*seqState
}

type seqState struct {
	last, hi int64
	seen     uint64 // bit i: block hi-i was read
}

// maxTracked bounds the map; starting over costs one missed readahead per object.
const maxTracked = 4096

func (t *seqTracker) sequential(key string, k int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.last[key]
	// The kernel's readahead reads arrive in any order: within seqSlack is still a scan.
	return ok && k >= st.last-seqSlack && k <= st.last+seqSlack
}

const seqSlack = 4

// read records a read of block k and reports whether it is its first among the last 64 blocks.
func (t *seqTracker) read(key string, k int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.last[key]
	if st == nil {
		if len(t.last) >= maxTracked {
			clear(t.last)
		}
		st = &seqState{last: k, hi: k, seen: 1}
		t.last[key] = st
		return true
	}
	st.last = k
	switch d := st.hi - k; {
	case d < 0:
		st.seen, st.hi = st.seen<<uint64(-d)|1, k // a shift past 63 leaves 0
		return true
	case d < 64:
		first := st.seen&(1<<d) == 0
		st.seen |= 1 << d
		return first
	}
	return true // far behind: a new reader, or one that went back
}

const (
	// failFast: after an unanswered fetch, reads fail at once this long: the kernel's next requests.
	failFast       = 250 * time.Millisecond
	readAheadBytes = 32 << 20
	// runBytes bounds one GET: large against the per-request cost, small enough to run in parallel.
	runBytes = 16 << 20
	maxRuns  = 4 // readahead GETs in flight per Store
)

// readAhead starts a GET of the next missing blocks if a run is free; it never waits.
func (s *Store) readAhead(ref blockRef) {
	bs := BlockSize(ref.size)
	last := min((ref.size-1)/bs, ref.k+max(2, readAheadBytes/bs))
	for k := ref.k + 1; k <= last; k++ {
		next := ref
		next.k = k
		if s.cache.has(next) || s.flight.busy(next) {
			continue
		}
		if !s.flight.claim(ref.key) {
			return
		}
		select {
		case s.runs <- struct{}{}:
		default:
			s.flight.release(ref.key)
			return
		}
		done := func() { <-s.runs; s.flight.release(ref.key) }
		// A whole run, even past the window: a window creeping one block at a time costs a GET each.
		if !s.startRun(next, max(1, runBytes/bs), done) {
			done()
		}
		return
	}
}

// block returns one verified block, with a reference the caller releases, from the cache or a GET
// (of a whole run if sequential). access counts toward the cache; waited says it came from the store.
func (s *Store) block(ref blockRef, access, sequential bool) (data *blockBuf, waited bool, err error) {
	if data, ok := s.cache.get(ref, access); ok {
		return data, false, nil
	}
	// The kernel's readahead and the read behind it must not each wait out a timeout.
	if at := s.downAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < min(failFast, s.cfg.Timeout) {
		return nil, true, fmt.Errorf("tier: read %s: the store did not answer %v ago", ref.key, time.Since(time.Unix(0, at)).Round(time.Millisecond))
	}
	fl := s.flight.wait(ref)
	if fl == nil {
		n := int64(1)
		if sequential {
			n = max(1, runBytes/BlockSize(ref.size))
		}
		s.startRun(ref, n, nil)
		if fl = s.flight.wait(ref); fl == nil {
			// Finished between the two looks.
			if data, ok := s.cache.get(ref, false); ok {
				return data, true, nil
			}
			return nil, true, fmt.Errorf("tier: read %s: block %d: %w", ref.key, ref.k, ErrBadObject)
		}
	}
	defer s.flight.unref(fl)
	timer := time.NewTimer(s.cfg.Timeout)
	defer timer.Stop()
	select {
	case <-fl.done:
		if fl.err != nil {
			return nil, true, fl.err
		}
		if access {
			if d, ok := s.cache.get(ref, true); ok {
				d.release()
			}
		}
		fl.data.acquire()
		return fl.data, true, nil
	case <-timer.C:
		return nil, true, fmt.Errorf("tier: read %s: no answer within %v: %w", ref.key, s.cfg.Timeout, context.DeadlineExceeded)
	}
}

// startRun fetches up to n blocks from ref.k, stopping at one cached or in flight, with one GET in a
// goroutine the Store owns. done, if set, runs when the GET ends.
func (s *Store) startRun(ref blockRef, n int64, done func()) bool {
	bs := BlockSize(ref.size)
	last := (ref.size - 1) / bs
	var fls []*flight
	for k := ref.k; k < ref.k+n && k <= last; k++ {
		b := ref
		b.k = k
		fl := s.flight.add(b, s.cache.has)
		if fl == nil {
			break
		}
		fls = append(fls, fl)
	}
	if len(fls) == 0 {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if done != nil {
			defer done()
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
		defer cancel()
		_ = s.fetchRun(ctx, ref, fls, done == nil)
	}()
	return true
}

// fetchRun verifies each block against the same response's table and finishes every flight.
func (s *Store) fetchRun(ctx context.Context, ref blockRef, fls []*flight, foreground bool) (err error) {
	i := 0
	defer func() {
		// Before the waiters wake: a read right behind a failed one must see the store as down.
		switch {
		case err == nil:
			s.downAt.Store(0)
		case !errors.Is(err, ErrBadObject) && !errors.Is(err, context.Canceled):
			s.downAt.Store(time.Now().UnixNano())
		}
		for ; i < len(fls); i++ {
			s.flight.finish(fls[i], nil, err)
		}
	}()
	bs := BlockSize(ref.size)
	start := ref.k * bs
	end := min((ref.k+int64(len(fls)))*bs, ref.size)
	began := time.Now()
	var answered, verifying time.Duration
	defer func() {
		s.cfg.Logger.WithFields(map[string]any{"key": ref.key, "block": ref.k, "blocks": len(fls), "took": time.Since(began).String(),
			"answered": answered.String(), "verifying": verifying.String(), "error": err}).Debug("tier: GET")
	}()
	in := &s3.GetObjectInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(ref.key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", start, end-1)),
	}
	if ref.etag != "" {
		in.IfMatch = aws.String(ref.etag)
	}
	out, err := s.s3.GetObject(ctx, in)
	answered = time.Since(began)
	if err != nil {
		if isNotFound(err) || isPrecondition(err) {
			return fmt.Errorf("tier: read %s: %w: %v", ref.key, ErrBadObject, rootCause(err))
		}
		return fmt.Errorf("tier: read %s: %w", ref.key, err)
	}
	defer out.Body.Close()
	if total := contentTotal(aws.ToString(out.ContentRange)); total != ref.size {
		return fmt.Errorf("tier: read %s: %w: object holds %d bytes, the segment %d", ref.key, ErrBadObject, total, ref.size)
	}
	lay, err := parseLayout(out.Metadata, ref.size)
	if err != nil {
		return fmt.Errorf("tier: read %s: %w", ref.key, err)
	}
	for ; i < len(fls); i++ {
		k := ref.k + int64(i)
		data := s.cache.pool.get(bs, min(bs, ref.size-k*bs))
		if _, err := io.ReadFull(out.Body, data.b); err != nil {
			data.release()
			return fmt.Errorf("tier: read %s at %d: %w", ref.key, k*bs, err)
		}
		t0 := time.Now()
		if got, want := crc32c(data.b), lay.blocks[k]; got != want {
			data.release()
			return fmt.Errorf("tier: read %s: %w: block %d has CRC-32C %08x, want %08x", ref.key, ErrBadObject, k, got, want)
		}
		s.cache.put(fls[i].ref, data, i == 0 && foreground)
		s.flight.finish(fls[i], data, nil)
		verifying += time.Since(t0)
	}
	return nil
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

// flights are the blocks being fetched, so a block is fetched once however many wait for it.
type flights struct {
	mu    sync.Mutex
	m     map[blockRef]*flight
	ahead map[string]bool // objects with a readahead GET in flight
}

// claim takes the object's one readahead GET: the store serves an object read in order best.
func (f *flights) claim(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ahead[key] {
		return false
	}
	f.ahead[key] = true
	return true
}

func (f *flights) release(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ahead, key)
}

type flight struct {
	ref  blockRef
	done chan struct{}
	data *blockBuf // set before done is closed
	err  error
	refs int // the fetcher's and each waiter's, under flights.mu
}

func (f *flights) busy(ref blockRef) bool { return f.get(ref) != nil }

// wait returns ref's flight, or nil, with a reference for unref.
func (f *flights) wait(ref blockRef) *flight {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.m[ref]
	if fl != nil {
		fl.refs++
	}
	return fl
}

// unref gives back a reference; the last one releases the block's buffer.
func (f *flights) unref(fl *flight) {
	f.mu.Lock()
	fl.refs--
	last := fl.refs == 0
	f.mu.Unlock()
	if last && fl.data != nil {
		fl.data.release()
	}
}

func (f *flights) get(ref blockRef) *flight {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[ref]
}

func (f *flights) add(ref blockRef, cached func(blockRef) bool) *flight {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[ref]; ok || cached(ref) {
		return nil
	}
	fl := &flight{ref: ref, done: make(chan struct{}), refs: 1}
	f.m[ref] = fl
	return fl
}

// finish ends a flight with its block, whose reference it takes, or its error.
func (f *flights) finish(fl *flight, data *blockBuf, err error) {
	f.mu.Lock()
	delete(f.m, fl.ref)
	f.mu.Unlock()
	fl.data, fl.err = data, err
	close(fl.done)
	f.unref(fl)
}

// IsBadObject reports whether err says the store holds something other than what segfs stored.
func IsBadObject(err error) bool { return errors.Is(err, ErrBadObject) }
