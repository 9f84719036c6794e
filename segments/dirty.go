package segments

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"segfs/directio"
)

// dirtyBuf holds the deferred bytes of the active segment not yet handed to its File, in pool chunks
// aligned to file positions: chunks[i] holds [first+i*c, first+(i+1)*c), first a multiple of the
// chunk size c, so every chunk but the first goes to pwritev without a copy.
//
// Bytes below lo are in the File (File.Size() >= lo at all times); [lo, end) are in the chunks. A
// chunk is dropped only once the File covers it, so a reader never finds a gap between the two.
//
// The first `behind` chunks lie wholly below lo: written already, kept as a read-behind window, because
// O_DIRECT leaves nothing in the page cache and a consumer just behind the flusher would otherwise
// read from disk what was in memory a moment ago. Bytes in [valid, end) of the chunks are appended data; below valid the first chunk
// holds whatever its previous user left.
type dirtyBuf struct {
	mu     sync.Mutex // held for slice bookkeeping and memory copies only, never across I/O
	c      int64
	chunks [][]byte
	first  int64
	valid  int64
	lo     int64
	end    int64
	behind int64 // leading chunks wholly below lo; not counted as dirty memory
}

func newDirtyBuf(chunk, size int64) *dirtyBuf {
	return &dirtyBuf{c: chunk, lo: size, end: size, valid: size}
}

// chunkBound is the most chunks n appended bytes can need, wherever the current end is: they span at
// most ceil(n/c)+1 chunk windows.
func chunkBound(n, c int64) int64 { return (n+c-1)/c + 1 }

// add appends b at end, taking chunks from pool as needed, and returns how many it took. It accepts
// nothing (ok false) if b would end past reserved, checked under the same lock that the writer holds
// to lower the reservation, so that every accepted byte has its disk space.
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

// endOffset is the segment offset after the last appended byte.
func (d *dirtyBuf) endOffset() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.end
}

// pending appends to iovs the chunk slices holding [lo, end) and returns them with end. The slices
// stay valid after the lock is released: only the writer (holding the partition's file lock) drops
// chunks, and appenders only write beyond end.
func (d *dirtyBuf) pending(iovs [][]byte, upto, capBytes int64) ([][]byte, int64, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	end := min(d.end, upto)
	// Cut at a chunk boundary (file-aligned), so the next piece starts aligned and goes to pwritev
	// without a copy; a piece smaller than one chunk is only ever the last one.
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

// written records that the File now holds everything below upto. Chunks wholly below it stop being
// dirty (released counts those that just did); of them it keeps the newest, up to keep bytes, as the
// read-behind window and gives the rest back to pool. Once nothing is pending it gives back every
// chunk, so an idle partition holds no buffer memory. behindDelta is the change in chunks kept behind.
func (d *dirtyBuf) written(pool *directio.Pool, upto, keep int64) (released, behindDelta int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lo = upto
	if d.end < upto {
		d.end = upto // a write-through append went straight to the File
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
		d.valid = d.end // a write-through may have gone past every chunk
	}
	return released, behindDelta
}

// discard drops every chunk without writing it (delete, seal, close) and returns how many were dirty
// and how many were kept behind.
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

// readAt reads [off, off+len(b)) of the segment: the part the chunks hold (pending or kept behind)
// from memory, copied under the lock; the part below it from the File, whose ReadAt never waits for a
// disk write.
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
		lo = min(lo, max(d.valid, d.first)) // the chunks kept behind serve part of what the File holds
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

// budget bounds the deferred memory, in whole chunks, of all partitions of a Log (MaxDirtyTotal) and
// of each (MaxDirty, counted in writer.mem under budget.mu). Chunks kept behind for readers never make
// an append wait; they are bounded apart: window bytes per partition, behindLimit in all.
type budget struct {
	mu          sync.Mutex
	cond        sync.Cond
	used        int64
	limit       int64
	behind      int64
	behindLimit int64
	window      int64
}

func newBudget(limit, window, behindLimit int64) *budget {
	b := &budget{limit: limit, window: window, behindLimit: behindLimit}
	b.cond.L = &b.mu
	return b
}

// written is dirtyBuf.written for d of writer w, with the memory accounted: chunks that stopped
// being dirty are released, and as many of them are kept behind as both window bounds allow.
func (b *budget) written(w *writer, d *dirtyBuf, upto int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	own := d.behindChunks() * d.c
	keep := min(b.window, b.behindLimit-b.behind+own)
	released, delta := d.written(w.chunks, upto, keep)
	b.behind += delta * d.c
	b.freeLocked(w, released*d.c)
}

// discard is dirtyBuf.discard for d of writer w, with the memory accounted.
func (b *budget) discard(w *writer, d *dirtyBuf) {
	dirty, behind := d.discard(w.chunks)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.behind -= behind * d.c
	b.freeLocked(w, dirty*d.c)
}

func (d *dirtyBuf) behindChunks() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.behind
}

// errFlushStalled tells a blocked append that its partition's flusher stopped on a full disk, so
// waiting for it to release memory is pointless: the append retries the write itself.
var errFlushStalled = errors.New("deferred write stalled on a full disk")

// acquire blocks until n more bytes fit under both caps, or the partition halts, or its flusher
// stopped on a full disk (errFlushStalled).
func (b *budget) acquire(w *writer, n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if err := w.writeErr(); err != nil {
			return err
		}
		if w.stall.Load() != nil {
			return errFlushStalled
		}
		if w.mem+n <= w.maxDirty && b.used+n <= b.limit {
			w.mem += n
			b.used += n
			return nil
		}
		b.cond.Wait()
	}
}

func (b *budget) release(w *writer, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.freeLocked(w, n)
	b.mu.Unlock()
}

func (b *budget) freeLocked(w *writer, n int64) {
	if n == 0 {
		return
	}
	w.mem -= n
	b.used -= n
	b.cond.Broadcast()
}

// inUse is the chunk memory held by all partitions, dirty or kept behind.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used + b.behind
}

// wake makes every blocked acquire re-check its partition (one of them halted or its flusher failed).
func (b *budget) wake() {
	b.mu.Lock()
	b.cond.Broadcast()
	b.mu.Unlock()
}

// chunkIdleTrim is how long after a flusher went idle the Log gives back the free chunks it kept for
// reuse, if no partition holds deferred memory by then: an idle daemon should not hold max_dirty.
const chunkIdleTrim = 2 * time.Second

func (l *Log) trimChunksSoon() {
	if l.trimArmed.CompareAndSwap(false, true) {
		l.trim.Reset(chunkIdleTrim)
	}
}

// trimIdle is the trim timer's function. If a partition is busy, its flusher arms the timer again
// when it goes idle.
func (l *Log) trimIdle() {
	l.trimArmed.Store(false)
	if l.budget.inUse() == 0 {
		l.chunks.Trim(directio.DefaultPoolRetain)
	}
}
