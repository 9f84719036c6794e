package segments

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"segfs/internal/logfields"
)

// deferredPolicy copies appends into memory for the flusher, and seals in the background.
type deferredPolicy struct{}

func (deferredPolicy) pace(w *writer, n int) { w.pace(n) }

func (deferredPolicy) append(w *writer, seg *segment, b []byte) (int64, error) {
	cfg := &w.log.cfg
	bound := chunkBound(int64(len(b)), w.log.chunk) * w.log.chunk
	if bound > cfg.MaxDirty || bound > cfg.MaxDirtyTotal {
		// It could never fit: waiting would never end.
		return w.writeThrough(seg, b)
	}
	return w.appendDeferred(seg, b, bound)
}

func (deferredPolicy) rotate(w *writer, old *segment) (*rotation, error) { return w.sealLater(old) }

// appendDeferred copies b into seg's chunks once its disk space is reserved and bound bytes of chunk
// memory are acquired.
func (w *writer) appendDeferred(seg *segment, b []byte, bound int64) (int64, error) {
	need := seg.size.Load() + int64(len(b))
	for {
		if w.stall.Load() != nil {
			// Earlier bytes are stuck on a full disk: they go first.
			if err := w.retryFlush(); err != nil {
				return 0, err
			}
		}
		if need > seg.reserved.Load() {
			if err := w.reserveFor(seg, need); err != nil {
				return 0, err
			}
		}
		if err := w.budget.acquire(&w.mem, bound, w.memoryWaitErr); err != nil {
			if errors.Is(err, errFlushStalled) {
				continue
			}
			return 0, err
		}
		off := seg.base + seg.size.Load()
		taken, ok := seg.buf.add(w.budget.pool, b, &seg.reserved)
		if !ok {
			// A Sync lost the reservation after the check.
			w.budget.release(&w.mem, bound)
			continue
		}
		w.budget.release(&w.mem, bound-taken*w.log.chunk)
		w.published(seg, off+int64(len(b)))
		w.dirty.Add(int64(len(b)))
		w.kickSoon()
		return off, nil
	}
}

// memoryWaitErr ends an append's wait for memory once waiting is pointless: the partition halted, or
// its flusher stalled on a full disk (then the append retries the write itself).
func (w *writer) memoryWaitErr() error {
	if err := w.writeErr(); err != nil {
		return err
	}
	if w.stall.Load() != nil {
		return errFlushStalled
	}
	return nil
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

// sealLater makes a new segment at old's end active and leaves old to the background seal. It never
// waits for mu, which the flusher holds across writes: next needs no lock until it is listed.
// The seal's directory fsync makes next's entry durable, and nothing reaches next before that.
func (w *writer) sealLater(old *segment) (*rotation, error) {
	if w.list.beingSealed() != nil {
		// One seal at a time.
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
	// Now, or next's first appends would wait for mu behind the flusher to reserve. A failure is
	// left to the append that needs the space.
	if err := w.reserveLocked(next, 1, w.reserveAhead()); err != nil {
		logfields.Err(w.logger(), err).WithField("segment", next.base).Debug("could not reserve ahead in the new segment")
	}
	w.list.rotate(next, old)
	w.kick()
	return &rotation{sealed: old.base, active: next.base}, nil
}

// sealPendingLocked finishes the seal in progress, if any, and returns the active segment.
func (w *writer) sealPendingLocked() (*segment, error) {
	for {
		seg, sealing := w.list.target()
		if !sealing {
			return seg, nil
		}
		if err := w.sealStepLocked(seg); err != nil {
			return seg, err
		}
	}
}

// sealPending finishes the seal in progress, if any.
func (w *writer) sealPending() error {
	if w.list.beingSealed() == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.sealPendingLocked()
	return err
}

// sealStepLocked does one piece of old's seal: a write of its dirty bytes or, once none are left, the
// seal. ENOSPC leaves old sealing, retried like any deferred write.
func (w *writer) sealStepLocked(old *segment) error {
	done, err := w.writePieceLocked(old, math.MaxInt64)
	if err != nil || !done {
		return err
	}
	prev := old.reserved.Load()
	began := w.observeStart() // stats.go: metrics hook
	if err := old.wfile.FlushAndTruncate(); err != nil {
		err = fmt.Errorf("seal %s: %w", old.path, err)
		if onlyNoSpace(err) {
			w.restoreReservationLocked(old, prev)
			return w.deferredWriteFailedLocked(err)
		}
		return w.failLocked(err)
	}
	if err := w.sealLocked(old, true); err != nil {
		if isFDLimit(err) { // nothing changed yet: retried like a write that found no space
			return w.deferredWriteFailedLocked(err)
		}
		return w.failLocked(err)
	}
	w.observeSeal(began) // stats.go: metrics hook
	w.raiseDurable(old.base + old.size.Load())
	w.list.sealDone()
	w.logger().WithFields(map[string]any{"segment": old.base, "size": old.size.Load()}).Info("sealed segment")
	return nil
}

// flusher is a partition's background writer, running only while there is work, so an idle
// partition costs no goroutine.
type flusher struct {
	state   atomic.Int32               // flusherIdle and the rest below
	exited  chan struct{}              // closed by the flusher that stopFlusher waits for
	delayed atomic.Pointer[time.Timer] // kickSoon's timer
	armed   atomic.Bool
}

// Only kick starts a flusher, only the flusher goes idle, and stopFlusher ends both.
const (
	flusherIdle int32 = iota
	flusherRunning
	flusherStopping // stopFlusher waits for the flusher to exit
	flusherStopped
)

// defaultLazyKickDelay is how long a small append waits for the flusher: long enough for the fsync
// that usually follows to write the bytes itself.
const defaultLazyKickDelay = time.Millisecond

// kickSoon starts the flusher once a chunk is dirty, else after lazyKickDelay, so that an fsync
// right after a small append writes it itself instead of waiting for the flusher.
func (w *writer) kickSoon() {
	if w.dirty.Load() >= w.log.chunk {
		w.kick()
		return
	}
	if !w.fl.armed.CompareAndSwap(false, true) {
		return // the armed timer will see these bytes
	}
	if t := w.fl.delayed.Load(); t != nil {
		t.Reset(w.log.cfg.lazyKickDelay)
		return
	}
	w.fl.delayed.Store(time.AfterFunc(w.log.cfg.lazyKickDelay, w.delayedKick))
}

func (w *writer) delayedKick() {
	// Before the kick: a later append arms a new timer, an earlier one is seen by the flusher.
	w.fl.armed.Store(false)
	w.kick()
}

// kick makes sure a flusher runs. Callers count their bytes dirty first.
func (w *writer) kick() {
	if w.fl.state.CompareAndSwap(flusherIdle, flusherRunning) {
		go w.flushLoop()
	}
}

func (w *writer) flushLoop() {
	for {
		w.mu.Lock()
		// One piece per turn, so a Sync waits for one piece at most. A seal comes first.
		var err error
		if seg, sealing := w.list.target(); sealing {
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
			logfields.Err(w.logger(), err).Error("deferred write failed; partition stops accepting appends")
		case err != nil:
			// A retry loop would only spin; the next Append or Sync retries.
			logfields.Err(w.logger(), err).Warn("deferred write failed for lack of space; kept in memory, retried by the next append or sync")
		}
		if !w.fl.state.CompareAndSwap(flusherRunning, flusherIdle) {
			w.fl.state.Store(flusherStopped) // stopFlusher is waiting
			close(w.fl.exited)
			return
		}
		// Idle first, then look for work: bytes counted before the CAS are seen now, and an
		// append after it starts a flusher itself.
		if err != nil || !w.flushWork() || !w.fl.state.CompareAndSwap(flusherIdle, flusherRunning) {
			return
		}
	}
}

func (w *writer) flushWork() bool { return w.dirty.Load() > 0 || w.list.beingSealed() != nil }

// stopFlusher returns once no flusher runs or will. Shutdown calls it once.
func (w *writer) stopFlusher() {
	for !w.fl.state.CompareAndSwap(flusherIdle, flusherStopped) {
		if w.fl.state.CompareAndSwap(flusherRunning, flusherStopping) {
			<-w.fl.exited
			break
		}
	}
	if t := w.fl.delayed.Load(); t != nil {
		t.Stop()
	}
}

// maxFlushWrite caps one flusher write: blocked producers get memory back only when it completes.
const maxFlushWrite = 8 << 20

// writePendingLocked finishes the seal in progress, then writes what was dirty in the active segment
// when it got there, and returns that segment. Not chasing later appends, a Sync under load ends.
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

// writePieceLocked writes seg's dirty bytes up to upto, at most flushWriteCap of them, and frees
// their memory. done reports that nothing below upto is left.
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
	// A no-op unless a failure gave up the reservation the bytes were accepted against.
	err = w.reserveLocked(seg, end, 0)
	if err == nil {
		began, arrivedFrom := time.Now(), w.end.Load()
		_, err = seg.wfile.WriteV(w.iovs)
		if err != nil {
			// The rollback truncated it away.
			seg.dropReservation()
		} else {
			// A failed write measures nothing.
			took := time.Since(began)
			w.recordFlushRate(end-lo, took)
			w.observeFlush(end-lo, took) // stats.go: metrics hook
			w.lastArrived.Store(w.end.Load() - arrivedFrom)
		}
	}
	clear(w.iovs)
	if err != nil {
		return true, w.deferredWriteFailedLocked(err)
	}
	w.flushSucceeded()
	w.lastWrite.Store(end - lo)
	w.budget.written(&w.mem, d, end)
	w.dirty.Add(-(end - lo))
	return end >= upto, nil
}

// deferredWriteFailedLocked records a failed write of deferred bytes: sticky unless only ENOSPC.
func (w *writer) deferredWriteFailedLocked(err error) error {
	if !onlyNoSpace(err) && !isFDLimit(err) { // a seal out of descriptors is retried too
		return w.failLocked(err)
	}
	err = fmt.Errorf("write appended bytes of %s (kept in memory, retried by the next append or sync): %w", w.name, err)
	if w.stall.Swap(&errBox{err}) == nil {
		w.budget.wake() // appends waiting for memory retry the write instead
	}
	return err
}

func (w *writer) flushSucceeded() {
	if w.stall.Load() != nil {
		w.stall.Store(nil)
		w.logger().Info("deferred write succeeded after running out of space")
	}
}
