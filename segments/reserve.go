package segments

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The reservation rule (doc.go, "A full disk"): an append ending at segment offset e is accepted only
// if e <= seg.reserved. Otherwise, under w.mu, the File reserves up to min(SegmentSize, e+ahead), or
// exactly e if that finds no space; if even e does not fit, the append fails with ENOSPC and nothing
// of it is accepted. Deferred appends must not wait for w.mu, so the flusher tops the reservation up
// after each write and a rotation reserves ahead in the new segment. Every truncate of the File
// (a direct-mode Sync, a failed write's rollback) frees the blocks past its end: Sync restores them at
// once, a failed write drops the reservation so the next append reserves again.

// reserveStep is the least an append reserves beyond its own end: one fallocate per MiB of appends.
const reserveStep = 1 << 20

// onlyNoSpace reports whether err is ENOSPC or EDQUOT and nothing else (not EIO from a failed
// rollback): such a failure changed nothing and can be retried once space is freed.
func onlyNoSpace(err error) bool {
	return (errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)) && !errors.Is(err, unix.EIO)
}

// reserveAhead is how far past an append's end a deferred reservation reaches: reserveStep plus twice
// what arrives during one flusher write, estimated as the largest of the backlog, the flusher's last
// write and what was appended while that write ran, at most MaxDirty. Once that estimate reaches a
// full flusher piece the producer outruns the disk and may fill its whole MaxDirty budget, plus the
// piece just freed, before the next top-up, so the reservation reaches that far; otherwise a producer
// ramping up would run past it and wait for w.mu behind a flusher write. It reads only atomics, so a
// rotation calls it without w.mu.
func (w *writer) reserveAhead() int64 {
	cfg := &w.log.cfg
	recent := max(w.dirty.Load(), w.lastWrite.Load(), w.lastArrived.Load())
	if recent >= cfg.flushWriteCap {
		return reserveStep + cfg.MaxDirty + cfg.flushWriteCap
	}
	return reserveStep + min(2*recent, cfg.MaxDirty)
}

// reserveLocked makes sure seg's File has disk space for appends up to segment offset need, reserving
// ahead beyond it (see the rule above). Caller holds w.mu; seg is active.
func (w *writer) reserveLocked(seg *segment, need, ahead int64) error {
	if need <= seg.reserved.Load() {
		return nil
	}
	target := max(need, min(w.log.cfg.SegmentSize, need+ahead))
	err := seg.wfile.Reserve(target)
	if err != nil && target > need && onlyNoSpace(err) {
		// No room for the slack; what this append needs may still fit.
		target = need
		err = seg.wfile.Reserve(need)
	}
	if err != nil {
		return fmt.Errorf("reserve disk space in %s up to %d: %w", seg.path, need, err)
	}
	seg.reserved.Store(target)
	return nil
}

// reserveFor is reserveLocked for an append that found the reservation too short.
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

// topUpLocked keeps the active segment's reservation at least reserveAhead past the appended end,
// extending it by half as much again when it falls short. The flusher calls it after each write, so
// deferred appends rarely reserve for themselves; a failure is left to the append that needs the
// space. Caller holds w.mu.
//
// Both bounds are capped at SegmentSize, or no top-up would happen near the end of a segment.
func (w *writer) topUpLocked() {
	seg := w.list.active()
	if seg.buf == nil || seg.wfile == nil {
		return
	}
	ahead, end, limit := w.reserveAhead(), seg.buf.endOffset(), w.log.cfg.SegmentSize
	if seg.reserved.Load() >= min(end+ahead, limit) {
		return
	}
	target := min(end+ahead+ahead/2, limit)
	if err := seg.wfile.Reserve(target); err != nil {
		w.log.cfg.Logger.WithError(err).WithField("partition", w.name).Debug("could not reserve ahead of appends")
		return
	}
	seg.reserved.Store(target)
}

// dropReservation forgets seg's reservation after its File truncated (which frees the blocks past the
// end): appends reserve again before they are accepted. Caller holds w.mu; buf.mu keeps a deferred
// append from being accepted against the old value in between.
func (s *segment) dropReservation() {
	if s.buf != nil {
		s.buf.mu.Lock()
		defer s.buf.mu.Unlock()
	}
	s.reserved.Store(0)
}

// restoreReservationLocked re-reserves, after a FlushAndTruncate, what its truncate freed: deferred
// appends may have been accepted against it meanwhile. If the blocks are gone, it drops the
// reservation and reserves exactly what is accepted; should that fail too, those bytes may meet
// ENOSPC when written, which keeps them in memory and reports it. Caller holds w.mu.
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
		w.log.cfg.Logger.WithError(err).WithField("partition", w.name).Warn("lost the disk space reserved for appended bytes; their write may fail with ENOSPC")
	}
}
