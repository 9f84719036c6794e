package segments

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"segfs/directio"
)

// dirtyBuf holds a deferred segment's bytes not yet in its File, in chunks aligned to file positions
// so they go to pwritev uncopied. [lo, end) is dirty; the File holds everything below lo. The first
// behind chunks, below lo, stay for readers behind the flusher: O_DIRECT leaves no page cache.
// Below valid, the first chunk holds stale bytes.
type dirtyBuf struct {
	mu     sync.Mutex
	c      int64
	chunks [][]byte
	first  int64
	valid  int64
	lo     int64
	end    int64
	behind int64 // not counted as dirty memory
}

func newDirtyBuf(chunk, size int64) *dirtyBuf {
	return &dirtyBuf{c: chunk, lo: size, end: size, valid: size}
}

func chunkBound(n, c int64) int64 { return (n+c-1)/c + 1 }

// add accepts nothing past reserved, which is lowered only under mu too, so every accepted byte
// has its disk space.
func (d *dirtyBuf) add(pool *directio.Pool, b []byte, reserved *atomic.Int64) (taken int64, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.end+int64(len(b)) > reserved.Load() {
		return 0, false
	}
	if len(d.chunks) == 0 {
		d.first = d.end - d.end%d.c
		d.valid = d.end
	}
	need := d.end + int64(len(b))
	for d.first+int64(len(d.chunks))*d.c < need {
		d.chunks = append(d.chunks, pool.Get())
		taken++
	}
	pos := d.end
	for len(b) > 0 {
		rel := pos - d.first
		k := copy(d.chunks[rel/d.c][rel%d.c:], b)
		b, pos = b[k:], pos+int64(k)
	}
	d.end = pos
	return taken, true
}

func (d *dirtyBuf) endOffset() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.end
}

// pending's slices stay valid unlocked: only the writer, under its mu, drops chunks, and
// appenders write past end.
func (d *dirtyBuf) pending(iovs [][]byte, upto, capBytes int64) ([][]byte, int64, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	end := min(d.end, upto)
	// Cut at a chunk boundary, so the next piece starts aligned too.
	if cut := d.first + (d.lo-d.first+capBytes)/d.c*d.c; cut > d.lo {
		end = min(end, cut)
	}
	for pos := d.lo; pos < end; {
		rel := pos - d.first
		i, o := rel/d.c, rel%d.c
		k := min(d.c-o, end-pos)
		iovs = append(iovs, d.chunks[i][o:o+k])
		pos += k
	}
	return iovs, d.lo, max(end, d.lo)
}

func (d *dirtyBuf) written(pool *directio.Pool, upto, keep int64) (released, behindDelta int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lo = upto
	if d.end < upto {
		d.end = upto // a write-through append
	}
	full := int64(len(d.chunks))
	if d.lo < d.end {
		full = (d.lo - d.first) / d.c
	} else {
		keep = 0
	}
	keepN := min(full, keep/d.c)
	drop := full - keepN
	released, behindDelta = full-d.behind, keepN-d.behind
	d.behind = keepN
	for i := int64(0); i < drop; i++ {
		pool.Put(d.chunks[i])
		d.chunks[i] = nil
	}
	n := copy(d.chunks, d.chunks[drop:])
	clear(d.chunks[n:])
	d.chunks = d.chunks[:n]
	d.first += drop * d.c
	d.valid = max(d.valid, d.first)
	if len(d.chunks) == 0 {
		d.valid = d.end
	}
	return released, behindDelta
}

func (d *dirtyBuf) discard(pool *directio.Pool) (dirty, behind int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := int64(len(d.chunks))
	for i, c := range d.chunks {
		pool.Put(c)
		d.chunks[i] = nil
	}
	d.chunks = d.chunks[:0]
	d.lo, d.valid = d.end, d.end
	behind, d.behind = d.behind, 0
	return n - behind, behind
}

func (d *dirtyBuf) readAt(f directio.File, b []byte, off int64) (int, error) {
	d.mu.Lock()
	lo, end := d.lo, d.end
	if off >= end {
		d.mu.Unlock()
		if len(b) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	stop := min(off+int64(len(b)), end)
	if len(d.chunks) > 0 {
		lo = min(lo, max(d.valid, d.first)) // the chunks kept behind
	}
	for pos := max(off, lo); pos < stop; {
		rel := pos - d.first
		k := copy(b[pos-off:stop-off], d.chunks[rel/d.c][rel%d.c:])
		pos += int64(k)
	}
	d.mu.Unlock()
	if off < lo {
		want := int(min(stop, lo) - off)
		if n, err := f.ReadAt(b[:want], off); n < want {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
	n := int(stop - off)
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// budget bounds a Log's dirty chunk memory. Chunks kept behind are bounded apart and never make an
// append wait.
type budget struct {
	mu          sync.Mutex
	cond        sync.Cond
	used        int64
	limit       int64
	behind      int64
	behindLimit int64
	window      int64

	pool      *directio.Pool
	trim      *time.Timer // runs trimIdle; Log.Close stops it
	trimArmed atomic.Bool
}

type account struct {
	held int64
	max  int64
}

func newBudget(pool *directio.Pool, limit, window, behindLimit int64) *budget {
	b := &budget{pool: pool, limit: limit, window: window, behindLimit: behindLimit}
	b.cond.L = &b.mu
	b.trim = time.AfterFunc(time.Hour, b.trimIdle)
	b.trim.Stop()
	return b
}

func (b *budget) written(a *account, d *dirtyBuf, upto int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	own := d.behindChunks() * d.c
	keep := min(b.window, b.behindLimit-b.behind+own)
	released, delta := d.written(b.pool, upto, keep)
	b.behind += delta * d.c
	b.freeLocked(a, released*d.c)
}

func (b *budget) discard(a *account, d *dirtyBuf) {
	dirty, behind := d.discard(b.pool)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.behind -= behind * d.c
	b.freeLocked(a, dirty*d.c)
}

func (d *dirtyBuf) behindChunks() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.behind
}

var errFlushStalled = errors.New("deferred write stalled on a full disk")

func (b *budget) acquire(a *account, n int64, stop func() error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if err := stop(); err != nil {
			return err
		}
		if a.held+n <= a.max && b.used+n <= b.limit {
			a.held += n
			b.used += n
			return nil
		}
		b.cond.Wait()
	}
}

func (b *budget) release(a *account, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.freeLocked(a, n)
	b.mu.Unlock()
}

func (b *budget) freeLocked(a *account, n int64) {
	if b.used+b.behind-n == 0 && b.trimArmed.CompareAndSwap(false, true) {
		b.trim.Reset(chunkIdleTrim)
	}
	if n == 0 {
		return
	}
	a.held -= n
	b.used -= n
	b.cond.Broadcast()
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used + b.behind
}

func (b *budget) wake() {
	b.mu.Lock()
	b.cond.Broadcast()
	b.mu.Unlock()
}

// chunkIdleTrim is how long an idle Log keeps free chunks for reuse.
const chunkIdleTrim = 2 * time.Second

func (b *budget) trimIdle() {
	b.trimArmed.Store(false)
	if b.inUse() == 0 {
		b.pool.Trim(directio.DefaultPoolRetain)
	}
}
