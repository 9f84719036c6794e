package segments

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// A released partition has closed its active File (descriptors, reserved space) and commit file:
// after IdleRelease without an append, when the descriptor budget needs room, or when another
// partition finds the disk full. The next append reopens it.

// monoNow is one clock for all partitions, so their last appends compare.
func (l *Log) monoNow() int64 { return int64(time.Since(l.epoch)) }

const DefaultIdleRelease = 5 * time.Second

// idleState: released changes under appendMu and w.mu, the timer under mu.
type idleState struct {
	released   atomic.Bool
	lastActive atomic.Int64
	armed      atomic.Bool

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

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
		w.idle.timer.Reset(d)
		return
	}
	w.idle.armed.Store(false)
	if w.idle.lastActive.Load() != seen && w.idle.armed.CompareAndSwap(false, true) {
		w.idle.timer.Reset(d) // an append found the timer still armed
	}
}

func (w *writer) stopIdle() {
	w.idle.mu.Lock()
	defer w.idle.mu.Unlock()
	w.idle.stopped = true
	if w.idle.timer != nil {
		w.idle.timer.Stop()
	}
}

// tryRelease never waits for a lock, so the budget and the full-disk path can call it from
// inside another partition's operations.
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

// releaseLocked makes pending bytes exact and durable, then closes the files. Caller holds
// appendMu and w.mu.
func (w *writer) releaseLocked() (bool, error) {
	if w.idle.released.Load() {
		return true, nil
	}
	if w.writeErr() != nil || w.stall.Load() != nil {
		return false, nil
	}
	seg, err := w.writePendingLocked()
	if err != nil {
		return false, err
	}
	if w.list.beingSealed() != nil || w.dirty.Load() != 0 || seg.wfile == nil || seg != w.list.active() {
		return false, nil
	}
	if w.unsynced() || w.padded {
		if err := w.syncLocked(seg, false); err != nil {
			return false, err
		}
		w.padded = false
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
	err = f.Close() // exact already: this frees the reserved blocks
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
	seg.mu.Lock()
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
