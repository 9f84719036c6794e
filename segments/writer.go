package segments

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"segfs/directio"
)

// writer is the write side of a partition: the active File, the commit log, the reservation, the
// health, the flusher and the background seal. mu guards all of it and is held across disk I/O;
// readers never take it. The atomics are the values appends and readers check without mu; they are
// changed under mu (dirty and the pacing state also by appends, holding appendMu).
type writer struct {
	log    *Log   // configuration and the Log's shared pools
	name   string // topic/partition, for errors and logs
	dir    string // the partition's directory
	fs     diskCalls
	list   *segList // the partition's segments; rotations add to it
	policy policy   // Inline, Deferred or Sync, chosen when the partition opens
	// The Log's, shared by all partitions; maxDirty is Config.MaxDirty.
	budget   *budget
	chunks   *directio.Pool
	maxDirty int64

	appendMu sync.Mutex // the order of appends and rotations

	mu     sync.Mutex
	commit *commitLog
	iovs   [][]byte
	padBuf []byte

	health atomic.Pointer[health] // nil while healthy; replaced, never cleared (see health)
	// stall is set while deferred bytes cannot be written for lack of space; unlike health it
	// clears once a retry succeeds.
	stall atomic.Pointer[errBox]
	// sealing is the segment a deferred rotation retired and whose seal is not done: the one seal in
	// progress, nil if none. Stored under the partition's list lock together with the new active
	// segment, so writers read both in one snapshot (writeTarget); cleared only once the seal is done.
	sealing atomic.Pointer[segment]
	// lastWrite and lastArrived size reservations (reserveAhead): the bytes of the flusher's last
	// write and the bytes appended while it ran. Atomic because a rotation reads them without mu.
	lastWrite   atomic.Int64
	lastArrived atomic.Int64

	end     atomic.Int64 // partition end offset
	durable atomic.Int64 // end offset made durable and exact by Sync or a seal
	// padded: a persist=sync append left the active file ending in a padded block (durable, not
	// exact); Sync still truncates it. Under mu.
	padded bool

	// Deferred only.
	fl        flusher
	dirty     atomic.Int64 // bytes not yet handed to the File
	mem       int64        // chunk memory held; under log.budget.mu
	flushRate atomic.Int64 // bytes per second of the flusher's recent writes (see pace)
	paceNext  atomic.Int64 // Log.monoNow at which the next paced append's slot starts
}

func newWriter(l *Log, name, dir string, list *segList) *writer {
	return &writer{
		log: l, name: name, dir: dir, fs: l.fs, list: list, policy: newPolicy(l.cfg.Persist),
		budget: l.budget, chunks: l.chunks, maxDirty: l.cfg.MaxDirty,
	}
}

// health is a partition's sticky condition. It only gets worse: a write failure, then close or
// delete; each step stores a new value.
type health struct {
	failed error // a write failed: writes return it until the Log is reopened; reads go on
	closed error // closed or deleted: every method returns it
	drop   bool  // deleted: nothing more is written, not even by the shutdown
}

type errBox struct{ err error }

// rotation is what OnRotate is told once Append has released the partition.
type rotation struct{ sealed, active int64 }

// writeErr is what an append or Sync returns instead of writing, nil while the partition is healthy.
func (w *writer) writeErr() error {
	h := w.health.Load()
	switch {
	case h == nil:
		return nil
	case h.failed != nil:
		return h.failed
	}
	return h.closed
}

// closedErr is non-nil once the partition is closed or deleted.
func (w *writer) closedErr() error {
	if h := w.health.Load(); h != nil {
		return h.closed
	}
	return nil
}

// failedErr is the sticky write failure, if any; the writes of a closing partition check it.
func (w *writer) failedErr() error {
	if h := w.health.Load(); h != nil {
		return h.failed
	}
	return nil
}

// worsen applies change to the health until it sticks, wakes appends blocked for memory (they
// re-check it), and returns the new value. change returns nil to leave the health as it is.
func (w *writer) worsen(change func(old health) *health) *health {
	for {
		old := w.health.Load()
		var cur health
		if old != nil {
			cur = *old
		}
		next := change(cur)
		if next == nil {
			return old
		}
		if w.health.CompareAndSwap(old, next) {
			w.budget.wake()
			return next
		}
	}
}

// failLocked records a sticky write failure (the first one counts) and returns it.
func (w *writer) failLocked(err error) error {
	return w.worsen(func(h health) *health {
		if h.failed != nil {
			return nil
		}
		h.failed = fmt.Errorf("partition %s failed (reopen to recover): %w", w.name, err)
		return &h
	}).failed
}

// policy is what the persistence modes do differently, chosen once when the partition opens.
type policy interface {
	// pace runs before appendMu (see writer.pace).
	pace(w *writer, n int)
	// append writes or buffers b at the end of seg, the active segment; caller holds appendMu.
	append(w *writer, seg *segment, b []byte) (int64, error)
	// rotate retires old, the active segment, and opens the next one; caller holds appendMu.
	rotate(w *writer, old *segment) (*rotation, error)
}

func newPolicy(mode Persist) policy {
	switch mode {
	case Deferred:
		return deferredPolicy{}
	case Sync:
		return syncPolicy{}
	}
	return inlinePolicy{}
}

// append appends b as one unit after every earlier append and returns the partition offset of its
// first byte, and the rotation it made, if any.
func (w *writer) append(b []byte) (int64, *rotation, error) {
	w.policy.pace(w, len(b)) // outside appendMu: a delayed append must not hold up the partition's others
	w.appendMu.Lock()
	defer w.appendMu.Unlock()
	return w.appendLocked(b)
}

func (w *writer) appendLocked(b []byte) (int64, *rotation, error) {
	if err := w.writeErr(); err != nil {
		return 0, nil, err
	}
	if len(b) == 0 {
		return w.end.Load(), nil, nil
	}
	var rot *rotation
	var err error
	seg := w.list.active()
	if seg.sealed.Load() {
		// A rotation sealed it but could not create the successor (full disk): it is never written
		// again, so create the successor first.
		if rot, err = w.openSuccessor(seg); err != nil {
			return 0, nil, err
		}
		seg = w.list.active()
	}
	if size := seg.size.Load(); size > 0 && size+int64(len(b)) > w.log.cfg.SegmentSize {
		if rot, err = w.policy.rotate(w, seg); err != nil {
			return 0, nil, err
		}
		seg = w.list.active()
	}
	off, err := w.policy.append(w, seg, b)
	return off, rot, err
}

// published records a new end of the active segment.
func (w *writer) published(seg *segment, end int64) {
	seg.size.Store(end - seg.base)
	seg.mtime.Store(time.Now().UnixNano())
	w.end.Store(end)
}

// writeThrough appends b with File.Write after every dirty byte before it.
func (w *writer) writeThrough(seg *segment, b []byte) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeThroughLocked(seg, b, false)
}

// writeThroughLocked is writeThrough under w.mu; with flush (persist=sync) the sub-block tail is
// written padded in the same write (File.WriteFlush).
func (w *writer) writeThroughLocked(seg *segment, b []byte, flush bool) (int64, error) {
	if _, err := w.writePendingLocked(); err != nil {
		return 0, err
	}
	start := seg.wfile.Size()
	// Four appends ahead (at least reserveStep), so large appends do not cost a fallocate each.
	if err := w.reserveLocked(seg, start+int64(len(b)), max(reserveStep, 4*int64(len(b)))); err != nil {
		return 0, fmt.Errorf("append to %s: %w", w.name, err)
	}
	write := seg.wfile.Write
	if flush {
		write = seg.wfile.WriteFlush
	}
	if _, err := write(b); err != nil {
		// The File left size and disk as they were, so the partition stays usable (ENOSPC may pass);
		// its rollback truncated, though, so the reservation is put back.
		w.restoreReservationLocked(seg, seg.reserved.Load())
		return 0, fmt.Errorf("append to %s: %w", w.name, err)
	}
	end := start + int64(len(b))
	if seg.buf != nil {
		w.budget.written(w, seg.buf, end)
	}
	w.published(seg, seg.base+end)
	return seg.base + start, nil
}

// unsynced reports whether bytes were appended that no Sync or seal has made durable and exact yet.
func (w *writer) unsynced() bool { return w.end.Load() > w.durable.Load() }

// sync makes every byte appended before it durable, and the active file exact (no padding), before
// returning.
func (w *writer) sync() error {
	if err := w.writeErr(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writeErr(); err != nil {
		return err // shut down (or failed) while this Sync waited for the file lock
	}
	if !w.unsynced() && !w.padded {
		return nil
	}
	// The segment writePendingLocked wrote, not the active one read afterwards: a rotation may have
	// listed a new, empty active segment meanwhile, and syncing that would mark the retired one's
	// unflushed tail durable.
	seg, err := w.writePendingLocked()
	if err != nil {
		return err
	}
	if seg.wfile == nil {
		return nil // sealed by a rotation that could not create the successor; the seal synced it
	}
	if err := w.syncLocked(seg, true); err != nil {
		return err
	}
	w.padded = false
	w.raiseDurable(seg.base + seg.wfile.Size())
	return nil
}

func (w *writer) raiseDurable(end int64) {
	for {
		cur := w.durable.Load()
		if end <= cur || w.durable.CompareAndSwap(cur, end) {
			return
		}
	}
}

// syncLocked makes the active File exact and durable: FlushAndTruncate (the padded write is preceded
// by its commit record), fdatasync, then the stale-record check. The truncate frees the blocks
// reserved past the end; keepReservation (the segment stays active) reserves them again at once.
func (w *writer) syncLocked(seg *segment, keepReservation bool) error {
	prev := seg.reserved.Load()
	err := seg.wfile.FlushAndTruncate()
	if keepReservation {
		w.restoreReservationLocked(seg, prev)
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", w.name, err)
	}
	if err := seg.wfile.Sync(); err != nil {
		return w.failLocked(fmt.Errorf("sync %s: %w", w.name, err))
	}
	return w.settleCommit(seg)
}

// settleCommit runs after a segment was made exact and durable. If the current commit record could
// make recovery cut that segment back (see commitLog.stale), it writes a record of the exact length,
// which recovery always leaves alone.
func (w *writer) settleCommit(seg *segment) error {
	size := seg.wfile.Size()
	if !w.commit.stale(seg.base, size) {
		return nil
	}
	blk := w.padBlock()
	if n, err := seg.wfile.ReadAt(blk, size-int64(len(blk))); n != len(blk) {
		return w.failLocked(fmt.Errorf("settle commit record of %s: read last block: %w", seg.path, err))
	}
	if err := w.commit.write(seg.base, size, len(blk), crc32c(blk)); err != nil {
		return w.failLocked(err)
	}
	return nil
}

func (w *writer) padBlock() []byte {
	if w.padBuf == nil {
		w.padBuf = make([]byte, w.log.block)
	}
	return w.padBuf
}

// beforePad is the File's BeforePad hook (w.mu is held by whoever flushes): it makes the commit
// record for the padded block about to be written durable first.
func (w *writer) beforePad(seg *segment, size int64, padded []byte) error {
	if h := w.health.Load(); h != nil && h.drop {
		// Deleting: the bytes are going away, so neither the record nor the padded block is written
		// (the File then closes without writing anything).
		return errDiscarded
	}
	return w.commit.write(seg.base, size, len(padded), crc32c(padded))
}

var errDiscarded = errors.New("partition deleted; tail not written")
