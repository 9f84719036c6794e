package segments

import (
	"errors"
	"fmt"
)

// shutdown stops the partition for good: state is what its methods return from now on. With keep (Log
// close) every appended byte is written and the active segment made exact and durable; without it
// (delete) dirty bytes are dropped and nothing more is written. When it returns, the flusher has
// exited, no append, write or purge is in flight, and every descriptor is closed.
func (p *Partition) shutdown(state error, keep bool) error {
	var failed error
	shut := p.w.worsen(func(h health) *health {
		if h.closed != nil {
			return nil
		}
		failed = h.failed
		h.closed = state
		return &h
	})
	if shut.closed != state {
		return nil // closed or deleted already
	}
	p.w.appendMu.Lock()
	defer p.w.appendMu.Unlock()
	p.w.stopFlusher()
	p.nsMu.Lock()
	defer p.nsMu.Unlock()
	p.w.mu.Lock()
	defer p.w.mu.Unlock()

	var errs []error
	p.list.mu.Lock()
	segs := p.list.segs
	p.list.mu.Unlock()
	active := segs[len(segs)-1]
	switch {
	case !keep:
		p.w.worsen(func(h health) *health { h.drop = true; return &h })
	case failed != nil:
		errs = append(errs, failed)
	case active.wfile != nil:
		if _, err := p.w.writePendingLocked(); err != nil {
			errs = append(errs, err)
		} else if err := p.w.syncLocked(active, false); err != nil {
			errs = append(errs, err)
		} else {
			p.w.raiseDurable(active.base + active.wfile.Size())
		}
	}
	for _, s := range segs {
		buf := s.buf
		f, err := s.closeRead(p.fs)
		if err != nil {
			errs = append(errs, err)
		}
		if buf != nil {
			p.w.budget.discard(p.w, buf)
		}
		if f != nil {
			if err := f.Close(); err != nil && !errors.Is(err, errDiscarded) {
				errs = append(errs, fmt.Errorf("close %s: %w", p.name(), err))
			}
			s.wfile = nil
		}
	}
	p.w.dirty.Store(0)
	p.w.sealing.Store(nil)
	if err := p.w.commit.close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
