package segments

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"segfs/internal/logfields"
)

// An append ending at segment offset e needs e <= seg.reserved; else the File reserves up to
// min(SegmentSize, e+ahead), or exactly e, or the append fails with ENOSPC. The flusher tops up
// after each write and a rotation reserves ahead, so deferred appends rarely wait for mu. A
// truncate frees the blocks past the end: Sync reserves again, a failed write drops them.

const reserveStep = 1 << 20

// onlyNoSpace: ENOSPC or EDQUOT without EIO (a failed rollback) changed nothing and can be retried.
func onlyNoSpace(err error) bool {
	return (errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)) && !errors.Is(err, unix.EIO)
}

// reserveHorizon is how long a disk stall appends ride out in memory without reserving: an append
// past the reservation waits for mu, which the flusher holds across its stalled write.
const reserveHorizon = time.Second

// rateSample is the shortest interval the flusher measures the arrival rate over.
const rateSample = 100 * time.Millisecond

// reserveAhead is reserveStep plus the larger of twice what arrives during one flusher write, which
// a producer outrunning the disk fills before the next top-up, and what arrives in reserveHorizon at
// the recent rate, which a producer the disk keeps up with fills while one write stalls. max_dirty
// bounds both: appends cannot run further ahead of the disk. Atomics only: rotation calls it
// without mu.
func (w *writer) reserveAhead() int64 {
	cfg := &w.log.cfg
	recent := max(w.dirty.Load(), w.lastWrite.Load(), w.lastArrived.Load())
	if recent >= cfg.flushWriteCap {
		return reserveStep + cfg.MaxDirty + cfg.flushWriteCap
	}
	horizon := int64(float64(w.arrivalRate.Load()) * reserveHorizon.Seconds())
	return reserveStep + min(max(2*recent, horizon), cfg.MaxDirty)
}

// sampleArrivalsLocked updates arrivalRate, an average that weighs the last second most; idle
// time between flusher turns counts, so a partition that slows down reserves less, and a sample
// after a long pause replaces the average: a rate from before it would reserve for a burst long gone.
func (w *writer) sampleArrivalsLocked() {
	now, end := w.monoNow(), w.end.Load()
	if w.rateAt == 0 {
		w.rateAt, w.rateEnd = now, end
		return
	}
	dt := now - w.rateAt
	if dt < int64(rateSample) {
		return
	}
	sample := int64(float64(end-w.rateEnd) / time.Duration(dt).Seconds())
	if old := w.arrivalRate.Load(); dt < int64(2*reserveHorizon) {
		sample = old - old/4 + sample/4
	}
	w.arrivalRate.Store(sample)
	w.rateAt, w.rateEnd = now, end
}

func (w *writer) reserveLocked(seg *segment, need, ahead int64) error {
	if need <= seg.reserved.Load() {
		return nil
	}
	if w.log.spaceShort() {
		ahead = 0 // right after a full disk, reserving ahead would only fill it again
	}
	target := max(need, min(w.log.cfg.SegmentSize, need+ahead))
	err := seg.wfile.Reserve(target)
	if err != nil && target > need && onlyNoSpace(err) {
		target = need
		err = seg.wfile.Reserve(need)
	}
	if err != nil {
		return fmt.Errorf("reserve disk space in %s up to %d: %w", seg.path, need, err)
	}
	seg.reserved.Store(target)
	return nil
}

func (w *writer) reserveFor(seg *segment, need int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.failedErr(); err != nil {
		return err
	}
	if err := w.reserveLocked(seg, need, w.reserveAhead()); err != nil {
		return fmt.Errorf("append to %s: %w", w.name, err)
	}
	return nil
}

// topUpLocked keeps the reservation reserveAhead past the end; a failure is left to the append.
func (w *writer) topUpLocked() {
	seg := w.list.active()
	if seg.buf == nil || seg.wfile == nil || w.log.spaceShort() {
		return
	}
	ahead, end, limit := w.reserveAhead(), seg.buf.endOffset(), w.log.cfg.SegmentSize
	if seg.reserved.Load() >= min(end+ahead, limit) {
		return
	}
	target := min(end+ahead+ahead/2, limit)
	if err := seg.wfile.Reserve(target); err != nil {
		logfields.Err(w.logger(), err).Debug("could not reserve ahead of appends")
		return
	}
	seg.reserved.Store(target)
}

// dropReservation forgets the reservation after a truncate, under mu and buf.mu (see dirtyBuf.add).
func (s *segment) dropReservation() {
	if s.buf != nil {
		s.buf.mu.Lock()
		defer s.buf.mu.Unlock()
	}
	s.reserved.Store(0)
}

// restoreReservationLocked re-reserves what a truncate freed, or else exactly what was accepted.
func (w *writer) restoreReservationLocked(seg *segment, prev int64) {
	if prev == 0 || seg.wfile.Reserve(prev) == nil {
		return
	}
	seg.dropReservation()
	need := seg.wfile.Size()
	if seg.buf != nil {
		need = seg.buf.endOffset()
	}
	if err := w.reserveLocked(seg, need, 0); err != nil {
		logfields.Err(w.logger(), err).WithField("segment", seg.base).Warn("lost the disk space reserved for appended bytes; their write may fail with ENOSPC")
	}
}
