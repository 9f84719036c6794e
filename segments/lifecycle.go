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
	failed, ok := p.w.halt(state)
	if !ok {
		return nil // closed or deleted already
	}
	p.nsMu.Lock()
	defer p.nsMu.Unlock()
	return p.w.close(keep, failed)
}

// halt makes state the partition's closed error, which every append, Sync and wait for memory
// returns from now on, and returns the write failure before it. ok is false if the partition was
// closed already.
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

// close finishes the writer of a halted partition: it waits for the running append, stops the
// flusher, writes and syncs what was appended (keep, unless a write failed before: failed) or drops
// it, and closes every segment and the commit file.
func (w *writer) close(keep bool, failed error) error {
	w.appendMu.Lock()
	defer w.appendMu.Unlock()
	w.stopFlusher()
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
		}
	}
	w.dirty.Store(0)
	w.list.sealDone()
	if err := w.commit.close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
