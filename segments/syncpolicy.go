package segments

import (
	"fmt"

	"segfs/directio"
)

// syncPolicy (persist=sync) returns from an append once its bytes are durable, with the least I/O
// the padded-block trap allows. The file stays padded between appends: truncating would free the
// reservation and cost an fdatasync.
type syncPolicy struct{}

func (syncPolicy) pace(*writer, int) {}

func (syncPolicy) append(w *writer, seg *segment, b []byte) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	off, err := w.writeThroughLocked(seg, b, true)
	if err != nil {
		return 0, err
	}
	if err := seg.wfile.Sync(); err != nil {
		return 0, w.failLocked(fmt.Errorf("append to %s: make durable: %w", w.name, err))
	}
	// Appended zeros ending where a record's padded block ends would look like its padding.
	if err := w.settleCommit(seg); err != nil {
		return 0, err
	}
	size := seg.wfile.Size()
	w.padded = w.log.cfg.IO != directio.Buffered && size%int64(w.log.block) != 0
	w.raiseDurable(seg.base + size)
	return off, nil
}

func (syncPolicy) rotate(w *writer, old *segment) (*rotation, error) { return w.rotateInline(old) }
