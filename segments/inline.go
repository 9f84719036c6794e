package segments

import "fmt"

// inlinePolicy writes every full block of an append before Append returns, and seals a retired
// segment before the next one is created.
type inlinePolicy struct{}

func (inlinePolicy) pace(*writer, int) {}

func (inlinePolicy) append(w *writer, seg *segment, b []byte) (int64, error) {
	return w.writeThrough(seg, b)
}

func (inlinePolicy) rotate(w *writer, old *segment) (*rotation, error) { return w.rotateInline(old) }

// rotateInline seals the active segment old, then creates the next one at its end. Caller holds
// appendMu. A full disk does not fail the partition: if the seal's FlushAndTruncate finds no space,
// the segment stays active and unchanged; if the successor cannot be created, old stays sealed as the
// last segment (shown active by Segments and Active until a successor exists) and the next Append
// creates it. Either way the Append fails with the error. (Deferred: sealLater.)
func (w *writer) rotateInline(old *segment) (*rotation, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.writePendingLocked(); err != nil {
		return nil, err
	}
	prev := old.reserved.Load()
	if err := old.wfile.FlushAndTruncate(); err != nil {
		err = fmt.Errorf("seal %s: %w", old.path, err)
		if onlyNoSpace(err) {
			w.restoreReservationLocked(old, prev)
			return nil, fmt.Errorf("append to %s: %w", w.name, err)
		}
		return nil, w.failLocked(err)
	}
	if err := w.sealLocked(old, true); err != nil {
		return nil, w.failLocked(err)
	}
	w.padded = false // persist=sync: the seal made old exact
	w.raiseDurable(old.base + old.size.Load())
	rot, err := w.createSuccessorLocked(old)
	if err != nil {
		w.log.cfg.Logger.WithError(err).WithFields(map[string]any{
			"partition": w.name, "segment": old.base, "size": old.size.Load(),
		}).Warn("sealed segment, but could not create the next one; the next append retries")
	}
	return rot, err
}

// openSuccessor retries creating the segment after old, which an earlier rotation sealed. Caller holds
// appendMu.
func (w *writer) openSuccessor(old *segment) (*rotation, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.failedErr(); err != nil {
		return nil, err
	}
	return w.createSuccessorLocked(old)
}

// createSuccessorLocked creates the segment that follows the sealed segment old and makes it the
// active one. On failure nothing changes, so it can be retried. Caller holds w.mu.
func (w *writer) createSuccessorLocked(old *segment) (*rotation, error) {
	next, err := w.createSegment(old.base+old.size.Load(), true)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", w.name, err)
	}
	w.list.mu.Lock()
	w.list.segs = append(w.list.segs, next)
	w.list.mu.Unlock()
	w.log.cfg.Logger.WithFields(map[string]any{
		"partition": w.name, "segment": old.base, "size": old.size.Load(), "next": next.base,
	}).Info("sealed segment")
	return &rotation{sealed: old.base, active: next.base}, nil
}
