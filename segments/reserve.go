package segments

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Disk space is reserved before an append is accepted, so that a full disk fails the append that does
// not fit (as ext4's delayed allocation fails the write(2) that does not fit) instead of a write of
// bytes already acknowledged: deferred bytes written by the flusher after Append returned, and the
// sub-block tail that inline appends leave in the File's memory and write later.
//
// The rule: an append ending at segment offset e is accepted only if e <= seg.reserved. Otherwise,
// under w.mu, the File reserves up to min(SegmentSize, e+ahead), at least e; if that fails for lack
// of space it reserves exactly e; if that fails too the append fails with the error (wrapping ENOSPC)
// and nothing of it is accepted. The partition stays usable: the next append tries again, and succeeds
// once space was freed (a purge). ahead amortizes the fallocate over many appends: inline it is four
// times the append, at least reserveStep; deferred it is reserveStep plus twice what arrives during a
// flusher write (see reserveAhead). Deferred appends must not wait for w.mu, which the flusher holds
// across its disk writes, so the flusher tops the reservation up after each write, while it holds
// w.mu anyway, and a rotation reserves ahead in the new segment: appends normally find it in place
// (an append that does not waits for at most the flusher write in progress).
//
// Every truncate of the File frees the blocks past its end (ext4 does so even for a truncate to the
// same size): the FlushAndTruncate of a Sync in the direct modes (buffered files need no truncate, so
// their reservation survives a Sync), and the rollback of a failed write. Sync restores the
// reservation right after its FlushAndTruncate, which costs nothing when it survived, because deferred
// appends may have been accepted against it meanwhile; a failed write drops it (under buf.mu), so the
// next append or retry reserves again. A sealed segment keeps no reserved blocks: closing its File at
// the seal gives them back.

// reserveStep is the least an append reserves beyond its own end: a MiB keeps fallocate calls to one
// per MiB of appends while holding little spare space per active segment.
const reserveStep = 1 << 20

// onlyNoSpace reports whether err is the filesystem running out of space (ENOSPC, or EDQUOT for the
// user's quota) and nothing else: such a failure changes nothing and can be retried once space is
// freed. An error that also carries EIO (a write failed for lack of space and its rollback failed) is
// not.
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
func (p *Partition) reserveAhead() int64 {
	cfg := &p.log.cfg
	recent := max(p.w.dirty.Load(), p.w.lastWrite.Load(), p.w.lastArrived.Load())
	if recent >= cfg.flushWriteCap {
		return reserveStep + cfg.MaxDirty + cfg.flushWriteCap
	}
	return reserveStep + min(2*recent, cfg.MaxDirty)
}

// reserveLocked makes sure seg's File has disk space for appends up to segment offset need, reserving
// ahead beyond it (see the rule above). Caller holds w.mu; seg is active.
func (p *Partition) reserveLocked(seg *segment, need, ahead int64) error {
	if need <= seg.reserved.Load() {
		return nil
	}
	target := max(need, min(p.log.cfg.SegmentSize, need+ahead))
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
func (p *Partition) reserveFor(seg *segment, need int64) error {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	if err := p.w.failedErr(); err != nil {
		return err
	}
	if err := p.reserveLocked(seg, need, p.reserveAhead()); err != nil {
		return fmt.Errorf("append to %s: %w", p.name(), err)
	}
	return nil
}

// topUpLocked keeps the active segment's reservation at least reserveAhead past the appended end,
// extending it by half as much again whenever it falls short, so fallocate runs once per half
// reserveAhead of appends. It runs in the flusher after a write, so deferred appends rarely have to take
// w.mu, and thus wait for a flusher write, to reserve for themselves. A failure is left to the append
// that really needs the space. Caller holds w.mu.
//
// Both bounds are capped at SegmentSize, or no top-up would happen near the end of a segment.
func (p *Partition) topUpLocked() {
	seg := p.activeSegment()
	if seg.buf == nil || seg.wfile == nil {
		return
	}
	ahead, end, limit := p.reserveAhead(), seg.buf.endOffset(), p.log.cfg.SegmentSize
	if seg.reserved.Load() >= min(end+ahead, limit) {
		return
	}
	target := min(end+ahead+ahead/2, limit)
	if err := seg.wfile.Reserve(target); err != nil {
		p.log.cfg.Logger.WithError(err).WithField("partition", p.name()).Debug("could not reserve ahead of appends")
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
// appends may have been accepted against seg.reserved meanwhile (Sync does not exclude appends). If
// another file took the freed blocks in between, it drops the reservation, so no further append is
// accepted without reserving for itself, and reserves exactly what is already accepted. Should even
// that fail, the accepted bytes past the File's end may meet ENOSPC when written, which
// writePendingLocked handles (kept in memory, reported, retried). Caller holds w.mu.
func (p *Partition) restoreReservationLocked(seg *segment, prev int64) {
	if prev == 0 || seg.wfile.Reserve(prev) == nil {
		return
	}
	seg.dropReservation()
	need := seg.wfile.Size()
	if seg.buf != nil {
		need = seg.buf.endOffset()
	}
	if err := p.reserveLocked(seg, need, 0); err != nil {
		p.log.cfg.Logger.WithError(err).WithField("partition", p.name()).Warn("lost the disk space reserved for appended bytes; their write may fail with ENOSPC")
	}
}
