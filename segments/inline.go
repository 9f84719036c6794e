package segments

import (
	"fmt"

	"segfs/internal/logfields"
)

// inlinePolicy writes every full block before Append returns, and seals before the next segment.
type inlinePolicy struct{}

func (inlinePolicy) pace(*writer, int) {}

func (inlinePolicy) append(w *writer, seg *segment, b []byte) (int64, error) {
	return w.writeThrough(seg, b)
}

func (inlinePolicy) rotate(w *writer, old *segment) (*rotation, error) { return w.rotateInline(old) }

// rotateInline seals old, then creates the next segment. On ENOSPC old stays active; if only the
// next cannot be created, old stays last and sealed, and the next Append retries.
func (w *writer) rotateInline(old *segment) (*rotation, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.writePendingLocked(); err != nil {
		return nil, err
	}
	prev := old.reserved.Load()
	began := w.observeStart()
	if err := old.wfile.FlushAndTruncate(); err != nil {
		err = fmt.Errorf("seal %s: %w", old.path, err)
		if onlyNoSpace(err) {
			w.restoreReservationLocked(old, prev)
			return nil, fmt.Errorf("append to %s: %w", w.name, err)
		}
		return nil, w.failLocked(err)
	}
	if err := w.sealLocked(old, true); err != nil {
		if isFDLimit(err) { // nothing changed yet: the next append retries
			w.restoreReservationLocked(old, prev)
			return nil, fmt.Errorf("append to %s: %w", w.name, err)
		}
		return nil, w.failLocked(err)
	}
	w.padded = false // the seal made old exact
	w.observeSeal(began)
	w.raiseDurable(old.base + old.size.Load())
	rot, err := w.createSuccessorLocked(old)
	if err != nil {
		logfields.Err(w.logger(), err).WithFields(map[string]any{"segment": old.base, "size": old.size.Load()}).
			Warn("sealed segment, but could not create the next one; the next append retries")
	}
	return rot, err
}

func (w *writer) openSuccessor(old *segment) (*rotation, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.failedErr(); err != nil {
		return nil, err
	}
	return w.createSuccessorLocked(old)
}

func (w *writer) createSuccessorLocked(old *segment) (*rotation, error) {
	next, err := w.createSegment(old.base+old.size.Load(), true)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", w.name, err)
	}
	w.list.rotate(next, nil)
	w.logger().WithFields(map[string]any{"segment": old.base, "size": old.size.Load(), "next": next.base}).
		Info("sealed segment")
	return &rotation{sealed: old.base, active: next.base}, nil
}
