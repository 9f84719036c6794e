package segments

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// writer is the write side of a partition (locks: doc.go). Methods named ...Locked run under mu.
type writer struct {
	log    *Log
	name   string
	dir    string
	fs     diskCalls
	list   *segList
	policy policy
	budget *budget

	appendMu sync.Mutex
	// lineWait counts what RotateNewline let a full segment take past its size; under appendMu.
	lineWait struct {
		seg *segment
		n   int64
	}
	idle idleState

	mu     sync.Mutex
	commit *commitLog
	iovs   [][]byte
	padBuf []byte

	health atomic.Pointer[health] // nil while healthy; only ever replaced by a worse one
	stall  atomic.Pointer[errBox] // deferred bytes meet ENOSPC; cleared when a retry succeeds
	// The flusher's last write and what was appended during it, for reserveAhead.
	lastWrite   atomic.Int64
	lastArrived atomic.Int64
	// arrivalRate is appended bytes per second, sampled by the flusher (rateAt, rateEnd under mu).
	arrivalRate     atomic.Int64
	rateAt, rateEnd int64

	end     atomic.Int64
	durable atomic.Int64 // end made durable and exact by Sync or a seal
	padded  bool         // persist=sync left the active file padded: durable, not exact; under mu

	// Deferred only.
	fl        flusher
	dirty     atomic.Int64
	mem       account
	flushRate atomic.Int64
	paceNext  atomic.Int64
	epoch     time.Time
}

func newWriter(l *Log, name, dir string, list *segList) *writer {
	return &writer{
		log: l, name: name, dir: dir, fs: l.fs, list: list, policy: newPolicy(l.cfg.Persist),
		budget: l.budget, mem: account{max: l.cfg.MaxDirty},
		fl: flusher{exited: make(chan struct{})}, epoch: time.Now(),
	}
}

// health is a partition's sticky condition: a write failure, then close or delete.
type health struct {
	failed error // writes return it until the Log is reopened; reads go on
	closed error // every method returns it
	drop   bool  // deleted: nothing more is written, not even by the shutdown
}

type errBox struct{ err error }

type rotation struct{ sealed, active int64 }

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

func (w *writer) closedErr() error {
	if h := w.health.Load(); h != nil {
		return h.closed
	}
	return nil
}

func (w *writer) failedErr() error {
	if h := w.health.Load(); h != nil {
		return h.failed
	}
	return nil
}

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

func (w *writer) failLocked(err error) error {
	return w.worsen(func(h health) *health {
		if h.failed != nil {
			return nil
		}
		h.failed = fmt.Errorf("partition %s failed (reopen to recover): %w", w.name, err)
		return &h
	}).failed
}

// policy is what the persistence modes do differently; append and rotate run under appendMu.
type policy interface {
	pace(w *writer, n int)
	append(w *writer, seg *segment, b []byte) (int64, error)
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

func (w *writer) append(b []byte) (int64, *rotation, error) {
	w.policy.pace(w, len(b)) // a delayed append must not hold up the others
	w.appendMu.Lock()
	defer w.appendMu.Unlock()
	defer w.touched()
	if err := w.reopen(); err != nil {
		return 0, nil, err
	}
	off, rot, err := w.appendLocked(b)
	var short *ShortAppendError
	if err != nil && onlyNoSpace(err) && !errors.As(err, &short) && w.log.freeSpace(w) {
		// Nothing was accepted: take back other partitions' reservations and retry once.
		off, rot2, err2 := w.appendLocked(b)
		if rot2 != nil {
			rot = rot2
		}
		return off, rot, err2
	}
	return off, rot, err
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
		// A rotation sealed it but could not create the successor.
		if rot, err = w.openSuccessor(seg); err != nil {
			return 0, nil, err
		}
		seg = w.list.active()
	}
	if size := seg.size.Load(); size > 0 && size+int64(len(b)) > w.log.cfg.SegmentSize {
		if w.log.cfg.RotateOn == RotateNewline && w.endsInsideLine(seg) {
			return w.appendAtNewline(seg, b)
		}
		if rot, err = w.policy.rotate(w, seg); err != nil {
			return 0, nil, err
		}
		seg = w.list.active()
	}
	off, err := w.policy.append(w, seg, b)
	return off, rot, err
}

func (w *writer) published(seg *segment, end int64) {
	seg.size.Store(end - seg.base)
	seg.mtime.Store(time.Now().UnixNano())
	w.end.Store(end)
}

func (w *writer) writeThrough(seg *segment, b []byte) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeThroughLocked(seg, b, false)
}

func (w *writer) writeThroughLocked(seg *segment, b []byte, flush bool) (int64, error) {
	if _, err := w.writePendingLocked(); err != nil {
		return 0, err
	}
	start := seg.wfile.Size()
	// Four appends ahead, so large appends do not cost a fallocate each.
	if err := w.reserveLocked(seg, start+int64(len(b)), max(reserveStep, 4*int64(len(b)))); err != nil {
		return 0, fmt.Errorf("append to %s: %w", w.name, err)
	}
	write := seg.wfile.Write
	if flush {
		write = seg.wfile.WriteFlush
	}
	if _, err := write(b); err != nil {
		// The File rolled back, which truncated away the reservation.
		w.restoreReservationLocked(seg, seg.reserved.Load())
		return 0, fmt.Errorf("append to %s: %w", w.name, err)
	}
	end := start + int64(len(b))
	if seg.buf != nil {
		w.budget.written(&w.mem, seg.buf, end)
	}
	w.published(seg, seg.base+end)
	return seg.base + start, nil
}

func (w *writer) unsynced() bool { return w.end.Load() > w.durable.Load() }

func (w *writer) sync() error {
	if err := w.writeErr(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writeErr(); err != nil {
		return err
	}
	if !w.unsynced() && !w.padded {
		return nil
	}
	defer w.observeSync(w.observeStart())
	// The segment written, not the active one: a rotation may have listed an empty one since.
	seg, err := w.writePendingLocked()
	if err != nil {
		return err
	}
	if seg.wfile == nil {
		return nil // sealed, and synced by the seal, but no successor yet
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

// syncLocked makes seg's File exact and durable; keepReservation re-reserves what the truncate freed.
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

// settleCommit writes an exact-length record if the current one could make recovery cut seg.
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

// beforePad runs under mu: the padded block's record goes first.
func (w *writer) beforePad(seg *segment, size int64, padded []byte) error {
	if h := w.health.Load(); h != nil && h.drop {
		// Deleting: the File closes without writing.
		return errDiscarded
	}
	return w.commit.write(seg.base, size, len(padded), crc32c(padded))
}

var errDiscarded = errors.New("partition deleted; tail not written")
