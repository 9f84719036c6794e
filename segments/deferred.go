package segments

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// deferredPolicy copies appends into memory for the flusher, and seals a retired segment in the
// background.
type deferredPolicy struct{}

func (deferredPolicy) pace(w *writer, n int) { w.pace(n) }

func (deferredPolicy) append(w *writer, seg *segment, b []byte) (int64, error) {
	cfg := &w.log.cfg
	bound := chunkBound(int64(len(b)), w.log.chunk) * w.log.chunk
	if bound > cfg.MaxDirty || bound > cfg.MaxDirtyTotal {
		// Larger than the cap itself: waiting would never end, so it goes to the File directly,
		// after everything before it.
		return w.writeThrough(seg, b)
	}
	return w.appendDeferred(seg, b, bound)
}

func (deferredPolicy) rotate(w *writer, old *segment) (*rotation, error) { return w.sealLater(old) }

// appendDeferred copies b into the active segment's dirty buffer once its disk space is reserved and
// memory is available (bound bytes of chunks), and kicks the flusher.
func (w *writer) appendDeferred(seg *segment, b []byte, bound int64) (int64, error) {
	need := seg.size.Load() + int64(len(b))
	for {
		if w.stall.Load() != nil {
			// Bytes acknowledged earlier are stuck on a full disk: retry them first, and refuse this
			// append while they cannot be written.
			if err := w.retryFlush(); err != nil {
				return 0, err
			}
		}
		if need > seg.reserved.Load() {
			if err := w.reserveFor(seg, need); err != nil {
				return 0, err
			}
		}
		if err := w.budget.acquire(w, bound); err != nil {
			if errors.Is(err, errFlushStalled) {
				continue
			}
			return 0, err
		}
		off := seg.base + seg.size.Load()
		taken, ok := seg.buf.add(w.log.chunks, b, &seg.reserved)
		if !ok {
			// A Sync lost the reservation between the check and the copy: reserve again.
			w.budget.release(w, bound)
			continue
		}
		w.budget.release(w, bound-taken*w.log.chunk)
		w.published(seg, off+int64(len(b)))
		w.dirty.Add(int64(len(b)))
		w.kickSoon()
		return off, nil
	}
}

// retryFlush writes the deferred bytes a full disk left in memory.
func (w *writer) retryFlush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.writePendingLocked(); err != nil {
		return fmt.Errorf("append to %s: %w", w.name, err)
	}
	return nil
}

// sealLater makes a new segment at old's end the active one and leaves old to be sealed in the
// background, by the flusher or by whoever needs it sealed first (sealPendingLocked). Caller holds
// appendMu, and not w.mu.
//
// It never waits for w.mu, which the flusher holds across each write. The new segment is created and
// reserved before anyone can see it; one critical section under mu then lists it as active and old
// as sealing (writeTarget reads both). The seal's directory fsync makes the new entry durable.
//
// Nothing is written to the new segment until old is sealed, which keeps recovery's rule simple
// (doc.go, "The padded-block trap and the recovery rule").
func (w *writer) sealLater(old *segment) (*rotation, error) {
	if w.sealing.Load() != nil {
		// At most one segment is being sealed: a rotation this soon after the last one (segments
		// smaller than the backlog) finishes that seal first.
		w.mu.Lock()
		_, err := w.sealPendingLocked()
		w.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	if err := w.writeErr(); err != nil {
		return nil, err
	}
	next, err := w.createSegment(old.base+old.size.Load(), false)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", w.name, err)
	}
	// Reserve ahead in the new file now: otherwise its first appends reserve for themselves, each
	// waiting for w.mu behind the flusher's writes of the old segment and its seal. Nothing else
	// can reach next before it is listed, so w.mu is not needed. A failure is left to the append
	// that needs the space.
	if err := w.reserveLocked(next, 1, w.reserveAhead()); err != nil {
		w.log.cfg.Logger.WithError(err).WithField("partition", w.name).Debug("could not reserve ahead in the new segment")
	}
	w.list.mu.Lock()
	w.sealing.Store(old)
	w.list.segs = append(w.list.segs, next)
	w.list.mu.Unlock()
	w.kick()
	return &rotation{sealed: old.base, active: next.base}, nil
}

// writeTarget is what a writer must deal with first: the segment being sealed (sealing true) or else
// the active one, read in one snapshot because a rotation changes both at once without w.mu.
func (w *writer) writeTarget() (seg *segment, sealing bool) {
	w.list.mu.Lock()
	defer w.list.mu.Unlock()
	if s := w.sealing.Load(); s != nil {
		return s, true
	}
	return w.list.segs[len(w.list.segs)-1], false
}

// sealPendingLocked writes the rest of the segment being sealed, if any, and seals it; it returns the
// active segment as of the moment no seal was pending. Caller holds w.mu.
func (w *writer) sealPendingLocked() (*segment, error) {
	for {
		seg, sealing := w.writeTarget()
		if !sealing {
			return seg, nil
		}
		if err := w.sealStepLocked(seg); err != nil {
			return seg, err
		}
	}
}

// sealPending finishes the seal of a retired segment, if one is in progress. Whoever found a segment
// superseded (under mu) and then sees sealing nil knows that segment's seal is over.
func (w *writer) sealPending() error {
	if w.sealing.Load() == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.sealPendingLocked()
	return err
}

// sealStepLocked does one piece of the background seal of old: a write of its pending bytes, or, once
// none are left, the seal itself. A full disk leaves old being sealed, its bytes in memory, to be
// retried like any deferred write (see writePendingLocked). Caller holds w.mu.
func (w *writer) sealStepLocked(old *segment) error {
	done, err := w.writePieceLocked(old, math.MaxInt64)
	if err != nil || !done {
		return err
	}
	prev := old.reserved.Load()
	if err := old.wfile.FlushAndTruncate(); err != nil {
		err = fmt.Errorf("seal %s: %w", old.path, err)
		if onlyNoSpace(err) {
			w.restoreReservationLocked(old, prev)
			return w.deferredWriteFailedLocked(err)
		}
		return w.failLocked(err)
	}
	// The directory fsync makes the successor's entry durable (sealLater left it to the seal), after
	// old is durable and exact, as recovery expects.
	if err := w.sealLocked(old, true); err != nil {
		return w.failLocked(err)
	}
	w.raiseDurable(old.base + old.size.Load())
	w.sealing.Store(nil)
	w.log.cfg.Logger.WithFields(map[string]any{
		"partition": w.name, "segment": old.base, "size": old.size.Load(),
	}).Info("sealed segment")
	return nil
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
func (w *writer) kickSoon() {
	if w.dirty.Load() >= w.log.chunk {
		w.kick()
		return
	}
	if !w.fl.armed.CompareAndSwap(false, true) {
		return // a timer is armed: it fires after this append's bytes were counted dirty
	}
	if t := w.fl.delayed.Load(); t != nil {
		t.Reset(w.log.cfg.lazyKickDelay)
		return
	}
	w.fl.delayed.Store(time.AfterFunc(w.log.cfg.lazyKickDelay, w.delayedKick))
}

func (w *writer) delayedKick() {
	// Disarm before kicking: an append after this point arms a new timer, and one before it is seen
	// by the flusher this starts (or the one running), since its bytes are already dirty.
	w.fl.armed.Store(false)
	w.kick()
}

// kick makes sure a flusher runs. The flusher decides to exit under fl.mu after re-reading the dirty
// count, so an append is either seen by the running flusher or starts a new one.
func (w *writer) kick() {
	w.fl.mu.Lock()
	if !w.fl.running && !w.fl.stopped {
		w.fl.running = true
		w.fl.wg.Add(1)
		go w.flushLoop()
	}
	w.fl.mu.Unlock()
}

func (w *writer) flushLoop() {
	defer w.fl.wg.Done()
	for {
		w.mu.Lock()
		// One piece per turn, releasing w.mu in between, so a Sync or seal waits for one piece at most.
		// A retired segment comes first: nothing may reach the new one before it is sealed.
		var err error
		if seg, sealing := w.writeTarget(); sealing {
			err = w.sealStepLocked(seg)
		} else {
			_, err = w.writePieceLocked(seg, math.MaxInt64)
		}
		if err == nil {
			w.topUpLocked()
		}
		sticky := w.failedErr() != nil
		w.mu.Unlock()
		switch {
		case err != nil && sticky:
			w.log.cfg.Logger.WithError(err).WithField("partition", w.name).Error("deferred write failed; partition stops accepting appends")
		case err != nil:
			// Not retried here: with the disk full a retry loop would only spin. The bytes stay in
			// memory; the next Append or Sync retries and reports the error while it persists.
			w.log.cfg.Logger.WithError(err).WithField("partition", w.name).Warn("deferred write failed for lack of space; kept in memory, retried by the next append or sync")
		}
		w.fl.mu.Lock()
		if err != nil || w.fl.stopped || w.dirty.Load() == 0 && w.sealing.Load() == nil {
			w.fl.running = false
			w.fl.mu.Unlock()
			w.log.trimChunksSoon()
			return
		}
		w.fl.mu.Unlock()
	}
}

// stopFlusher returns once no flusher runs and none will start again.
func (w *writer) stopFlusher() {
	w.fl.mu.Lock()
	w.fl.stopped = true
	w.fl.mu.Unlock()
	if t := w.fl.delayed.Load(); t != nil {
		t.Stop() // firing later would only find the flusher stopped
	}
	w.fl.wg.Wait()
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
func (w *writer) writePendingLocked() (*segment, error) {
	seg, err := w.sealPendingLocked()
	if err != nil {
		return seg, err
	}
	if seg.buf == nil {
		return seg, w.failedErr()
	}
	target := seg.buf.endOffset()
	for {
		done, err := w.writePieceLocked(seg, target)
		if err != nil || done {
			return seg, err
		}
	}
}

// writePieceLocked writes seg's dirty bytes from lo up to at most upto and maxFlushWrite, and gives
// their memory back at once. done reports that nothing below upto is left. seg is the active segment,
// or the one being sealed.
func (w *writer) writePieceLocked(seg *segment, upto int64) (done bool, err error) {
	if err := w.failedErr(); err != nil {
		return true, err
	}
	d := seg.buf
	if d == nil {
		return true, nil
	}
	var lo, end int64
	w.iovs, lo, end = d.pending(w.iovs[:0], upto, w.log.cfg.flushWriteCap)
	if lo == end {
		w.flushSucceeded()
		return true, nil
	}
	// Accepted bytes lie within the reservation they were accepted against, unless a failure gave it
	// up since; then they need it back before they can be written.
	err = w.reserveLocked(seg, end, 0)
	if err == nil {
		began, arrivedFrom := time.Now(), w.end.Load()
		_, err = seg.wfile.WriteV(w.iovs)
		if err != nil {
			// The File's rollback truncated, which frees the reservation.
			seg.dropReservation()
		} else {
			// Only a write that succeeded measures the disk: a fast ENOSPC would pass for a fast disk.
			w.recordFlushRate(end-lo, time.Since(began))
			w.lastArrived.Store(w.end.Load() - arrivedFrom)
		}
	}
	clear(w.iovs)
	if err != nil {
		return true, w.deferredWriteFailedLocked(err)
	}
	w.flushSucceeded()
	w.lastWrite.Store(end - lo)
	w.budget.written(w, d, end)
	w.dirty.Add(-(end - lo))
	return end >= upto, nil
}

// deferredWriteFailedLocked records a failed write of deferred bytes: sticky unless the disk was only
// full (doc.go, "A full disk"). Caller holds w.mu.
func (w *writer) deferredWriteFailedLocked(err error) error {
	if !onlyNoSpace(err) {
		return w.failLocked(err)
	}
	err = fmt.Errorf("write appended bytes of %s (kept in memory, retried by the next append or sync): %w", w.name, err)
	if w.stall.Swap(&errBox{err}) == nil {
		w.budget.wake() // appends waiting for this flusher to free memory retry the write instead
	}
	return err
}

// flushSucceeded clears a full-disk failure of deferred writes. Caller holds w.mu.
func (w *writer) flushSucceeded() {
	if w.stall.Load() != nil {
		w.stall.Store(nil)
		w.log.cfg.Logger.WithField("partition", w.name).Info("deferred write succeeded after running out of space")
	}
}
