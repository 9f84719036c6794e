package segments

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"segfs/internal/logfields"
)

// deferredPolicy copies appends into memory and seals in the background.
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

func (w *writer) memoryWaitErr() error {
	if err := w.writeErr(); err != nil {
		return err
	}
	if w.stall.Load() != nil {
		return errFlushStalled
	}
	return nil
}

func (w *writer) retryFlush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.writePendingLocked(); err != nil {
		return fmt.Errorf("append to %s: %w", w.name, err)
	}
	return nil
}

// sealLater leaves old to the background seal without waiting for mu, which the flusher holds
// across writes; the seal's directory fsync makes next's entry durable.
func (w *writer) sealLater(old *segment) (*rotation, error) {
	if w.list.beingSealed() != nil {
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
	// Reserve now, or next's first appends would wait for mu behind the flusher.
	if err := w.reserveLocked(next, 1, w.reserveAhead()); err != nil {
		logfields.Err(w.logger(), err).WithField("segment", next.base).Debug("could not reserve ahead in the new segment")
	}
	w.list.rotate(next, old)
	w.kick()
	return &rotation{sealed: old.base, active: next.base}, nil
}

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

func (w *writer) sealPending() error {
	if w.list.beingSealed() == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.sealPendingLocked()
	return err
}

// sealStepLocked writes a piece of old's dirty bytes or, once none are left, seals it.
func (w *writer) sealStepLocked(old *segment) error {
	done, err := w.writePieceLocked(old, math.MaxInt64)
	if err != nil || !done {
		return err
	}
	prev := old.reserved.Load()
	began := w.observeStart()
	if err := old.wfile.FlushAndTruncate(); err != nil {
		err = fmt.Errorf("seal %s: %w", old.path, err)
		if onlyNoSpace(err) {
			w.restoreReservationLocked(old, prev)
			return w.deferredWriteFailedLocked(err)
		}
		return w.failLocked(err)
	}
	if err := w.sealLocked(old, true); err != nil {
		if isFDLimit(err) {
			return w.deferredWriteFailedLocked(err)
		}
		return w.failLocked(err)
	}
	w.observeSeal(began)
	w.raiseDurable(old.base + old.size.Load())
	w.list.sealDone()
	w.logger().WithFields(map[string]any{"segment": old.base, "size": old.size.Load()}).Info("sealed segment")
	return nil
}

// flusher is a partition's background writer; it runs only while there is work.
type flusher struct {
	state   atomic.Int32
	exited  chan struct{}
	delayed atomic.Pointer[time.Timer]
	armed   atomic.Bool
}

// Only kick starts a flusher, only the flusher goes idle, and stopFlusher ends both.
const (
	flusherIdle int32 = iota
	flusherRunning
	flusherStopping
	flusherStopped
)

// defaultLazyKickDelay lets the fsync that usually follows a small append write it itself.
const defaultLazyKickDelay = time.Millisecond

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

// kick: callers count their bytes dirty first.
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
			w.sampleArrivalsLocked()
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
			w.fl.state.Store(flusherStopped)
			close(w.fl.exited)
			return
		}
		// Idle first, then look: bytes counted before the CAS are seen now; later appends kick.
		if err != nil || !w.flushWork() || !w.fl.state.CompareAndSwap(flusherIdle, flusherRunning) {
			return
		}
	}
}

func (w *writer) flushWork() bool { return w.dirty.Load() > 0 || w.list.beingSealed() != nil }

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

// writePendingLocked writes only what is dirty now, not later appends, so a Sync under load ends.
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
			took := time.Since(began)
			w.recordFlushRate(end-lo, took)
			w.observeFlush(end-lo, took)
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
