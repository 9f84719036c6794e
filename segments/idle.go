package segments

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// An idle partition gives back what it holds only to take appends: the active segment's File (its
// descriptors, and the disk space reserved ahead of appends) and the commit file. It does so after
// Config.IdleRelease without an append, when the Log's descriptor budget needs room (least recently
// appended first), and when another partition's append finds the disk full. A released partition's
// active segment is exact and durable on disk, so its readers read the backing file through the
// fdCache, as for a sealed segment, and its next append reopens it (directio.Open rebuilds the tail).
// Only a healthy partition that no append or flusher write holds is released; what its flusher has not
// written yet, and a seal in progress, are written first.

// monoNow is the monotonic time since the Log was opened: the idle timers' and the budget's clock,
// shared by all partitions so that their last appends compare.
func (l *Log) monoNow() int64 { return int64(time.Since(l.epoch)) }

// DefaultIdleRelease is how long a partition goes without an append before it gives back its
// descriptors and reserved disk space.
const DefaultIdleRelease = 5 * time.Second

// idleState is a writer's part in the above. released changes under appendMu and w.mu; the timer
// fields under mu, which is taken after appendMu and never held while waiting for a partition lock.
type idleState struct {
	released   atomic.Bool
	lastActive atomic.Int64 // Log.monoNow of the last append
	armed      atomic.Bool  // the timer is scheduled, or about to be

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

// touched records an append (caller holds appendMu) and makes sure the idle timer runs.
func (w *writer) touched() {
	w.idle.lastActive.Store(w.log.monoNow())
	if w.log.cfg.IdleRelease > 0 && !w.idle.armed.Load() && w.idle.armed.CompareAndSwap(false, true) {
		w.armIdle(w.log.cfg.IdleRelease)
	}
}

func (w *writer) armIdle(d time.Duration) {
	w.idle.mu.Lock()
	defer w.idle.mu.Unlock()
	if w.idle.stopped {
		return
	}
	if w.idle.timer == nil {
		w.idle.timer = time.AfterFunc(d, w.idleTick)
		return
	}
	w.idle.timer.Reset(d)
}

// idleTick is the idle timer's function: it releases the partition once it has been idle for
// IdleRelease, and otherwise schedules itself for when it might be.
func (w *writer) idleTick() {
	w.idle.mu.Lock()
	defer w.idle.mu.Unlock()
	if w.idle.stopped {
		return
	}
	d := w.log.cfg.IdleRelease
	seen := w.idle.lastActive.Load()
	if left := d - time.Duration(w.log.monoNow()-seen); left > 0 {
		w.idle.timer.Reset(left)
		return
	}
	if done, err := w.tryRelease(); err != nil {
		w.log.cfg.Logger.WithError(err).WithField("partition", w.name).Warn("could not release an idle partition")
	} else if !done {
		w.idle.timer.Reset(d) // busy after all: look again later
		return
	}
	w.idle.armed.Store(false)
	if w.idle.lastActive.Load() != seen && w.idle.armed.CompareAndSwap(false, true) {
		w.idle.timer.Reset(d) // an append came in meanwhile and found the timer still armed
	}
}

// stopIdle stops the idle timer for good (close, delete); caller holds appendMu.
func (w *writer) stopIdle() {
	w.idle.mu.Lock()
	defer w.idle.mu.Unlock()
	w.idle.stopped = true
	if w.idle.timer != nil {
		w.idle.timer.Stop()
	}
}

// tryRelease releases the partition if it is idle and nobody holds its locks. It never waits for a
// lock: the budget and the full-disk path call it from inside another partition's operations. done
// is true once the partition is released, now or before.
func (w *writer) tryRelease() (done bool, err error) {
	if w.idle.released.Load() {
		return true, nil
	}
	if w.closedErr() != nil {
		return false, nil
	}
	if !w.appendMu.TryLock() {
		return false, nil
	}
	defer w.appendMu.Unlock()
	if !w.mu.TryLock() {
		return false, nil
	}
	defer w.mu.Unlock()
	return w.releaseLocked()
}

// releaseLocked makes the active segment exact and durable and closes its File and the commit file.
// Caller holds appendMu and w.mu.
func (w *writer) releaseLocked() (bool, error) {
	if w.idle.released.Load() {
		return true, nil
	}
	if w.writeErr() != nil || w.stall.Load() != nil {
		return false, nil
	}
	// Nobody appends: what the flusher has not written yet, and a seal in progress, are done here.
	seg, err := w.writePendingLocked()
	if err != nil {
		return false, err
	}
	if w.list.beingSealed() != nil || w.dirty.Load() != 0 || seg.wfile == nil || seg != w.list.active() {
		return false, nil
	}
	if w.unsynced() {
		if err := w.syncLocked(seg, false); err != nil {
			return false, err
		}
		w.raiseDurable(seg.base + seg.wfile.Size())
	}
	seg.mu.Lock()
	f, buf := seg.file, seg.buf
	seg.file, seg.buf = nil, nil
	seg.mu.Unlock()
	if buf != nil {
		w.budget.discard(&w.mem, buf)
	}
	seg.wfile = nil
	seg.reserved.Store(0)
	w.fs.fds.unregister(w)
	err = f.Close() // exact already: it only gives back the reserved blocks and the descriptors
	if merr := seg.keepMtime(); err == nil {
		err = merr
	}
	if cerr := w.commit.close(); err == nil {
		err = cerr
	}
	w.commit = nil
	w.idle.released.Store(true)
	if err != nil {
		return true, fmt.Errorf("release %s: %w", w.name, err)
	}
	w.log.cfg.Logger.WithField("partition", w.name).Debug("released idle partition")
	return true, nil
}

// reopen makes a released partition writable again: the commit file, and the active segment's File
// with its tail. Caller holds appendMu; nothing is written on failure, and the next append retries.
func (w *writer) reopen() error {
	if !w.idle.released.Load() {
		return nil
	}
	if err := w.writeErr(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	commit, _, err := openCommit(w.fs, w.dir)
	if err != nil {
		return fmt.Errorf("append to %s: %w", w.name, err)
	}
	seg := w.list.active()
	seg.mu.Lock() // readers switch back from the backing file to the File
	_, err = w.openFile(seg)
	seg.mu.Unlock()
	if err != nil {
		_ = commit.close()
		return fmt.Errorf("append to %s: reopen: %w", w.name, err)
	}
	w.commit = commit
	w.idle.released.Store(false)
	w.fs.fds.register(w)
	return nil
}
