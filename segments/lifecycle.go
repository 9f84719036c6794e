package segments

import (
	"errors"
	"fmt"
)

// shutdown stops the partition for good. keep (Close) makes every appended byte durable; delete
// drops them. On return nothing runs and nothing is open.
func (p *Partition) shutdown(state error, keep bool) error {
	failed, ok := p.w.halt(state)
	if !ok {
		return nil
	}
	p.nsMu.Lock()
	defer p.nsMu.Unlock()
	return p.w.close(keep, failed)
}

// halt sets the closed error, waking appends waiting for memory; ok is false if closed already.
func (w *writer) halt(state error) (failed error, ok bool) {
	shut := w.worsen(func(h health) *health {
		if h.closed != nil {
			return nil
		}
		failed = h.failed
		h.closed = state
		return &h
	})
	return failed, shut.closed == state
}

func (w *writer) close(keep bool, failed error) error {
	w.appendMu.Lock()
	defer w.appendMu.Unlock()
	w.stopFlusher()
	w.stopIdle()
	w.fs.fds.unregister(w)
	w.mu.Lock()
	defer w.mu.Unlock()

	var errs []error
	segs := w.list.all()
	active := segs[len(segs)-1]
	switch {
	case !keep:
		w.worsen(func(h health) *health { h.drop = true; return &h })
	case failed != nil:
		errs = append(errs, failed)
	case active.wfile != nil:
		if _, err := w.writePendingLocked(); err != nil {
			errs = append(errs, err)
		} else if err := w.syncLocked(active, false); err != nil {
			errs = append(errs, err)
		} else {
			w.raiseDurable(active.base + active.wfile.Size())
		}
	}
	for _, s := range segs {
		buf := s.buf
		f, err := s.closeRead(w.fs)
		if err != nil {
			errs = append(errs, err)
		}
		if buf != nil {
			w.budget.discard(&w.mem, buf)
		}
		if f != nil {
			if err := f.Close(); err != nil && !errors.Is(err, errDiscarded) {
				errs = append(errs, fmt.Errorf("close %s: %w", w.name, err))
			}
			s.wfile = nil
			if keep {
				_ = s.keepMtime() // the next Open shows the last append's time
			}
		}
	}
	w.dirty.Store(0)
	w.list.sealDone()
	if err := w.commit.close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
