package segments

import (
	"fmt"
	"math"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// rotateInline seals the active segment old, then creates the next one at its end. Caller holds
// appendMu. A full disk does not fail the partition: if the seal's FlushAndTruncate finds no space,
// the segment stays active and unchanged; if the successor cannot be created, old stays sealed as the
// last segment (shown active by Segments and Active until a successor exists) and the next Append
// creates it. Either way the Append fails with the error. (Deferred: sealLater.)
func (p *Partition) rotateInline(old *segment) (*rotation, error) {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	if _, err := p.writePendingLocked(); err != nil {
		return nil, err
	}
	prev := old.reserved.Load()
	if err := old.wfile.FlushAndTruncate(); err != nil {
		err = fmt.Errorf("seal %s: %w", old.path, err)
		if onlyNoSpace(err) {
			p.restoreReservationLocked(old, prev)
			return nil, fmt.Errorf("append to %s: %w", p.name(), err)
		}
		return nil, p.failLocked(err)
	}
	if err := p.sealLocked(old, true); err != nil {
		return nil, p.failLocked(err)
	}
	p.raiseDurable(old.base + old.size.Load())
	rot, err := p.createSuccessorLocked(old)
	if err != nil {
		p.log.cfg.Logger.WithError(err).WithFields(map[string]any{
			"partition": p.name(), "segment": old.base, "size": old.size.Load(),
		}).Warn("sealed segment, but could not create the next one; the next append retries")
	}
	return rot, err
}

// openSuccessor retries creating the segment after old, which an earlier rotation sealed. Caller holds
// appendMu.
func (p *Partition) openSuccessor(old *segment) (*rotation, error) {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	if err := p.w.failedErr(); err != nil {
		return nil, err
	}
	return p.createSuccessorLocked(old)
}

// createSuccessorLocked creates the segment that follows the sealed segment old and makes it the
// active one. On failure nothing changes, so it can be retried. Caller holds w.mu.
func (p *Partition) createSuccessorLocked(old *segment) (*rotation, error) {
	next, err := p.createSegment(old.base+old.size.Load(), true)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", p.name(), err)
	}
	p.mu.Lock()
	p.segs = append(p.segs, next)
	p.mu.Unlock()
	p.log.cfg.Logger.WithFields(map[string]any{
		"partition": p.name(), "segment": old.base, "size": old.size.Load(), "next": next.base,
	}).Info("sealed segment")
	return &rotation{sealed: old.base, active: next.base}, nil
}

// sealLocked makes seg, which the caller made exact with FlushAndTruncate, durable and switches its
// readers to a read-only descriptor: fsync of the file, stale-record check, and with syncDir an fsync
// of the directory. Only after all of that does anything reach the next segment, so recovery can
// trust every segment but the last by its size. The File is closed here, so nothing can write to a
// sealed segment again.
func (p *Partition) sealLocked(seg *segment, syncDir bool) error {
	f := seg.wfile
	rfd, err := p.fs.sys.Open(seg.path, unix.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("seal %s: open: %w", seg.path, err)
	}
	if err := p.fs.sys.Fsync(rfd); err != nil {
		_ = p.fs.sys.Close(rfd)
		return fmt.Errorf("seal %s: fsync: %w", seg.path, err)
	}
	if err := p.settleCommit(seg); err != nil {
		_ = p.fs.sys.Close(rfd)
		return err
	}
	seg.mu.Lock()
	buf := seg.buf
	seg.file, seg.buf, seg.rfd = nil, nil, rfd
	seg.size.Store(f.Size())
	seg.mtime.Store(time.Now().UnixNano())
	seg.sealed.Store(true)
	seg.mu.Unlock()
	if buf != nil {
		p.w.budget.discard(&p.w, buf)
	}
	seg.wfile = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("seal %s: %w", seg.path, err)
	}
	p.log.tierSealed() // tier hook: the uploader may take it once it is listed as sealed
	if !syncDir {
		return nil
	}
	return p.fs.syncDir(p.dir)
}

// openFile opens seg's file for appending (creating it if missing).
func (p *Partition) openFile(seg *segment) (directio.File, error) {
	l := p.log
	f, err := directio.Open(seg.path, directio.Options{
		Mode: l.cfg.IO, Syscalls: l.cfg.Syscalls, Alignment: l.align, Pool: l.scratch,
		BeforePad: func(size int64) error { return p.beforePad(seg, size) },
	})
	if err != nil {
		return nil, err
	}
	seg.wfile, seg.file = f, f
	if l.cfg.Persist == Deferred {
		seg.buf = newDirtyBuf(l.chunk, f.Size())
	}
	seg.size.Store(f.Size())
	seg.mtime.Store(time.Now().UnixNano())
	var st unix.Stat_t
	if err := unix.Stat(seg.path, &st); err == nil {
		seg.ino = st.Ino
	}
	return f, nil
}

// createSegment creates the empty segment file at base and, with syncDir, makes its directory entry
// durable.
func (p *Partition) createSegment(base int64, syncDir bool) (*segment, error) {
	seg := &segment{base: base, path: filepath.Join(p.dir, SegmentName(base)), rfd: -1}
	f, err := p.openFile(seg)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if !syncDir {
		return seg, nil
	}
	if err := p.fs.syncDir(p.dir); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("create segment %s: %w", seg.path, err)
	}
	return seg, nil
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
func (p *Partition) sealLater(old *segment) (*rotation, error) {
	if p.w.sealing.Load() != nil {
		// At most one segment is being sealed: a rotation this soon after the last one (segments
		// smaller than the backlog) finishes that seal first.
		p.w.mu.Lock()
		_, err := p.sealPendingLocked()
		p.w.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	if err := p.w.writeErr(); err != nil {
		return nil, err
	}
	next, err := p.createSegment(old.base+old.size.Load(), false)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", p.name(), err)
	}
	// Reserve ahead in the new file now: otherwise its first appends reserve for themselves, each
	// waiting for w.mu behind the flusher's writes of the old segment and its seal. Nothing else
	// can reach next before it is listed, so w.mu is not needed. A failure is left to the append
	// that needs the space.
	if err := p.reserveLocked(next, 1, p.reserveAhead()); err != nil {
		p.log.cfg.Logger.WithError(err).WithField("partition", p.name()).Debug("could not reserve ahead in the new segment")
	}
	p.mu.Lock()
	p.w.sealing.Store(old)
	p.segs = append(p.segs, next)
	p.mu.Unlock()
	p.kick()
	return &rotation{sealed: old.base, active: next.base}, nil
}

// writeTarget is what a writer must deal with first: the segment being sealed (sealing true) or else
// the active one, read in one snapshot because a rotation changes both at once without w.mu.
func (p *Partition) writeTarget() (seg *segment, sealing bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.w.sealing.Load(); s != nil {
		return s, true
	}
	return p.segs[len(p.segs)-1], false
}

// sealPendingLocked writes the rest of the segment being sealed, if any, and seals it; it returns the
// active segment as of the moment no seal was pending. Caller holds w.mu.
func (p *Partition) sealPendingLocked() (*segment, error) {
	for {
		seg, sealing := p.writeTarget()
		if !sealing {
			return seg, nil
		}
		if err := p.sealStepLocked(seg); err != nil {
			return seg, err
		}
	}
}

// sealStepLocked does one piece of the background seal of old: a write of its pending bytes, or, once
// none are left, the seal itself. A full disk leaves old being sealed, its bytes in memory, to be
// retried like any deferred write (see writePendingLocked). Caller holds w.mu.
func (p *Partition) sealStepLocked(old *segment) error {
	done, err := p.writePieceLocked(old, math.MaxInt64)
	if err != nil || !done {
		return err
	}
	prev := old.reserved.Load()
	if err := old.wfile.FlushAndTruncate(); err != nil {
		err = fmt.Errorf("seal %s: %w", old.path, err)
		if onlyNoSpace(err) {
			p.restoreReservationLocked(old, prev)
			return p.deferredWriteFailedLocked(err)
		}
		return p.failLocked(err)
	}
	// The directory fsync makes the successor's entry durable (sealLater left it to the seal), after
	// old is durable and exact, as recovery expects.
	if err := p.sealLocked(old, true); err != nil {
		return p.failLocked(err)
	}
	p.raiseDurable(old.base + old.size.Load())
	p.w.sealing.Store(nil)
	p.log.cfg.Logger.WithFields(map[string]any{
		"partition": p.name(), "segment": old.base, "size": old.size.Load(),
	}).Info("sealed segment")
	return nil
}
