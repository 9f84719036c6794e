package segments

import "time"

// A full disk: before an append (or a mkdir) fails with ENOSPC, the space other partitions reserved
// ahead of their appends comes back (freeSpace) and the operation tries once more. Idle partitions
// are released (idle.go), busy ones keep only what they accepted; and for a while partitions reserve
// only what each append needs (spaceShort).

// trimReservation gives back what a busy partition reserved beyond the bytes it accepted, for an
// append of another partition that found the disk full. It never waits for the writer's lock.
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

// freeSpace gives back the disk space other partitions than except reserved, for an operation that
// found the disk full: idle ones are released, busy ones trimmed to what they accepted. It reports
// whether any space may have been freed.
func (l *Log) freeSpace(except *writer) bool {
	freed := false
	for _, p := range l.partitions() {
		if p.w == except {
			continue
		}
		if p.w.idle.released.Load() {
			continue // holds no reservation
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

// spaceShortFor is how long after a full disk partitions reserve only what each append needs: on a
// nearly full disk, reserving a MiB or more ahead for each would fill it again at once (and the
// scattered ranges freed would fragment each reservation into many extents).
const spaceShortFor = 10 * time.Second

// spaceShort reports whether the disk was found full within spaceShortFor.
func (l *Log) spaceShort() bool {
	until := l.shortUntil.Load()
	return until != 0 && l.monoNow() < until
}
