package segments

import (
	"fmt"

	"segfs/directio"
)

// syncPolicy (persist=sync, the mount option sync) returns from an append only once its bytes are
// durable, and seals a retired segment before the next one is created, as inline does.
//
// The least I/O that makes an append durable, and what it does: an append that ends on a block
// boundary is one write of its blocks (with io=dsync, O_DSYNC makes the data and the size it extends
// the file to durable together). One that ends inside a block also needs the padded-block commit
// record durable before its padded write (doc.go, "The padded-block trap"): the record, then one
// write of the blocks and the padded tail. The file stays padded until a Sync, seal or close truncates it, so the
// reservation ahead survives; recovery finds the padding described by the current or, if the next
// append's padded write never happened, the previous record. io=direct and io=buffered add an
// fdatasync.
type syncPolicy struct{}

func (syncPolicy) pace(*writer, int) {}

func (syncPolicy) append(w *writer, seg *segment, b []byte) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// WriteFlush writes the sub-block tail padded, in the same write as the blocks, after its record,
	// and keeps it in memory for the next append to complete; Sync is the fdatasync of io=direct and
	// io=buffered.
	off, err := w.writeThroughLocked(seg, b, true)
	if err != nil {
		return 0, err
	}
	if err := seg.wfile.Sync(); err != nil {
		return 0, w.failLocked(fmt.Errorf("append to %s: make durable: %w", w.name, err))
	}
	// Zeros appended up to where a record's padded block ends would look like its padding.
	if err := w.settleCommit(seg); err != nil {
		return 0, err
	}
	size := seg.wfile.Size()
	w.padded = w.log.cfg.IO != directio.Buffered && size%int64(w.log.block) != 0
	w.raiseDurable(seg.base + size)
	return off, nil
}

func (syncPolicy) rotate(w *writer, old *segment) (*rotation, error) { return w.rotateInline(old) }
