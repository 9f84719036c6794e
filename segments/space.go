package segments

import "time"

// trimReservation gives back what a busy partition reserved beyond what it accepted; it never waits.
func (w *writer) trimReservation() bool {
	if !w.mu.TryLock() {
		return false
	}
	defer w.mu.Unlock()
	seg := w.list.active()
	if w.idle.released.Load() || w.writeErr() != nil || seg.wfile == nil {
		return false
	}
	need := seg.wfile.Size()
	if seg.buf != nil {
		need = seg.buf.endOffset()
	}
	if seg.reserved.Load() <= alignUp(need, int64(w.log.block)) {
		return false
	}
	seg.dropReservation()
	err := seg.wfile.Unreserve()
	if rerr := w.reserveLocked(seg, need, 0); err == nil {
		err = rerr
	}
	if err != nil {
		w.log.cfg.Logger.WithError(err).WithField("partition", w.name).Warn("giving back reserved space: the appended bytes may meet ENOSPC when written")
	}
	return true
}

// freeSpace takes back what partitions other than except reserved ahead, for an operation that
// found the disk full: idle ones are released, busy ones trimmed.
func (l *Log) freeSpace(except *writer) bool {
	freed := false
	for _, p := range l.partitions() {
		if p.w == except {
			continue
		}
		if p.w.idle.released.Load() {
			continue
		}
		if done, _ := p.w.tryRelease(); done || p.w.trimReservation() {
			freed = true
		}
	}
	l.shortUntil.Store(l.monoNow() + int64(spaceShortFor))
	if freed {
		l.cfg.Logger.Info("disk full: gave back the space other partitions reserved ahead of their appends")
	}
	return freed
}

// spaceShortFor is how long after a full disk appends reserve nothing ahead: that would fill it again
// at once, in fragments of the ranges just freed.
const spaceShortFor = 10 * time.Second

func (l *Log) spaceShort() bool {
	until := l.shortUntil.Load()
	return until != 0 && l.monoNow() < until
}
