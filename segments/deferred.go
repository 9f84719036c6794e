package segments

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"segfs/directio"
	"segfs/internal/logfields"
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

// flusher runs a partition's background writer: started once an append leaves dirty bytes, exiting
// as soon as nothing is dirty, so idle partitions cost no goroutine.
type flusher struct {
	mu      sync.Mutex
	running bool
	stopped bool
	wg      sync.WaitGroup

	// A small append arms delayed (once) instead of starting the flusher at once; see kickSoon.
	delayed atomic.Pointer[time.Timer]
	armed   atomic.Bool
}

// defaultLazyKickDelay is how long a small deferred append may wait before the flusher starts. It is far
// below anything a reader of deferred mode can rely on, and long enough for the fsync that usually
// follows a small durable append to write the bytes itself.
const defaultLazyKickDelay = time.Millisecond

// kickSoon starts the flusher at once when a chunk's worth of bytes is dirty, and otherwise after
// Config.lazyKickDelay, so that a small append followed by fsync is written by the fsync itself, not
// by a flusher on another thread that the fsync would wait for. Late is safe: nothing but the timer is needed to get the bytes
// written, and Sync, seal and close write them themselves.
func (p *Partition) kickSoon() {
	if p.w.dirty.Load() >= p.log.chunk {
		p.kick()
		return
	}
	if !p.w.fl.armed.CompareAndSwap(false, true) {
		return // a timer is armed: it fires after this append's bytes were counted dirty
	}
	if t := p.w.fl.delayed.Load(); t != nil {
		t.Reset(p.log.cfg.lazyKickDelay)
		return
	}
	p.w.fl.delayed.Store(time.AfterFunc(p.log.cfg.lazyKickDelay, p.delayedKick))
}

func (p *Partition) delayedKick() {
	// Disarm before kicking: an append after this point arms a new timer, and one before it is seen
	// by the flusher this starts (or the one running), since its bytes are already dirty.
	p.w.fl.armed.Store(false)
	p.kick()
}

// kick makes sure a flusher runs. The flusher decides to exit under fl.mu after re-reading the dirty
// count, so an append is either seen by the running flusher or starts a new one.
func (p *Partition) kick() {
	p.w.fl.mu.Lock()
	if !p.w.fl.running && !p.w.fl.stopped {
		p.w.fl.running = true
		p.w.fl.wg.Add(1)
		go p.flushLoop()
	}
	p.w.fl.mu.Unlock()
}

func (p *Partition) flushLoop() {
	defer p.w.fl.wg.Done()
	for {
		p.w.mu.Lock()
		// One piece per turn, releasing w.mu in between, so a Sync or seal waits for one piece at most.
		// A retired segment comes first: nothing may reach the new one before it is sealed.
		var err error
		if seg, sealing := p.writeTarget(); sealing {
			err = p.sealStepLocked(seg)
		} else {
			_, err = p.writePieceLocked(seg, math.MaxInt64)
		}
		if err == nil {
			p.topUpLocked()
		}
		sticky := p.w.failedErr() != nil
		p.w.mu.Unlock()
		switch {
		case err != nil && sticky:
			logfields.Err(p.logger(), err).Error("deferred write failed; partition stops accepting appends")
		case err != nil:
			// Not retried here: with the disk full a retry loop would only spin. The bytes stay in
			// memory; the next Append or Sync retries and reports the error while it persists.
			logfields.Err(p.logger(), err).Warn("deferred write failed for lack of space; kept in memory, retried by the next append or sync")
		}
		p.w.fl.mu.Lock()
		if err != nil || p.w.fl.stopped || p.w.dirty.Load() == 0 && p.w.sealing.Load() == nil {
			p.w.fl.running = false
			p.w.fl.mu.Unlock()
			p.log.trimChunksSoon()
			return
		}
		p.w.fl.mu.Unlock()
	}
}

// stopFlusher returns once no flusher runs and none will start again.
func (p *Partition) stopFlusher() {
	p.w.fl.mu.Lock()
	p.w.fl.stopped = true
	p.w.fl.mu.Unlock()
	if t := p.w.fl.delayed.Load(); t != nil {
		t.Stop() // firing later would only find the flusher stopped
	}
	p.w.fl.wg.Wait()
}

// maxFlushWrite caps one flusher write: producers blocked on max_dirty get memory back only when a
// write completes, and 8 MiB still amortizes the syscall.
const maxFlushWrite = 8 << 20

// writePendingLocked finishes a background seal, then writes every byte of the active segment that
// was dirty when it got there, in pieces of at most maxFlushWrite, and returns that segment; Sync and
// seal need all of them in the File. It does not chase bytes appended meanwhile, so a Sync under a
// steady stream of appends still ends. If a rotation retires the segment while it is written, the
// segment is still the one returned: its bytes are written, and the seal comes later. A failure
// follows doc.go's "A full disk": ENOSPC keeps the bytes in memory, anything else is sticky.
func (p *Partition) writePendingLocked() (*segment, error) {
	seg, err := p.sealPendingLocked()
	if err != nil {
		return seg, err
	}
	if seg.buf == nil {
		return seg, p.w.failedErr()
	}
	target := seg.buf.endOffset()
	for {
		done, err := p.writePieceLocked(seg, target)
		if err != nil || done {
			return seg, err
		}
	}
}

// writePieceLocked writes seg's dirty bytes from lo up to at most upto and maxFlushWrite, and gives
// their memory back at once. done reports that nothing below upto is left. seg is the active segment,
// or the one being sealed.
func (p *Partition) writePieceLocked(seg *segment, upto int64) (done bool, err error) {
	if err := p.w.failedErr(); err != nil {
		return true, err
	}
	d := seg.buf
	if d == nil {
		return true, nil
	}
	var lo, end int64
	p.w.iovs, lo, end = d.pending(p.w.iovs[:0], upto, p.log.cfg.flushWriteCap)
	if lo == end {
		p.flushSucceeded()
		return true, nil
	}
	// Accepted bytes lie within the reservation they were accepted against, unless a failure gave it
	// up since; then they need it back before they can be written.
	err = p.reserveLocked(seg, end, 0)
	if err == nil {
		began, arrivedFrom := time.Now(), p.end.Load()
		_, err = seg.wfile.WriteV(p.w.iovs)
		if err != nil {
			// The File's rollback truncated, which frees the reservation.
			seg.dropReservation()
		} else {
			// Only a write that succeeded measures the disk: a fast ENOSPC would pass for a fast disk.
			took := time.Since(began)
			p.recordFlushRate(end-lo, took)
			p.observeFlush(end-lo, took) // stats.go: metrics hook
			p.w.lastArrived.Store(p.end.Load() - arrivedFrom)
		}
	}
	clear(p.w.iovs)
	if err != nil {
		return true, p.deferredWriteFailedLocked(err)
	}
	p.flushSucceeded()
	p.w.lastWrite.Store(end - lo)
	p.w.budget.written(&p.w, d, end)
	p.w.dirty.Add(-(end - lo))
	return end >= upto, nil
}

// deferredWriteFailedLocked records a failed write of deferred bytes: sticky unless the disk was only
// full (doc.go, "A full disk"). Caller holds w.mu.
func (p *Partition) deferredWriteFailedLocked(err error) error {
	if !onlyNoSpace(err) {
		return p.failLocked(err)
	}
	err = fmt.Errorf("write appended bytes of %s (kept in memory, retried by the next append or sync): %w", p.name(), err)
	if p.w.stall.Swap(&errBox{err}) == nil {
		p.w.budget.wake() // appends waiting for this flusher to free memory retry the write instead
	}
	return err
}

// flushSucceeded clears a full-disk failure of deferred writes. Caller holds w.mu.
func (p *Partition) flushSucceeded() {
	if p.w.stall.Load() != nil {
		p.w.stall.Store(nil)
		p.logger().Info("deferred write succeeded after running out of space")
	}
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
