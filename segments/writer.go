package segments

import (
	"sync"
	"sync/atomic"

	"segfs/directio"
)

// writer is the write side of a partition: the active File, the commit log, the reservation, the
// health, the flusher and the background seal. mu guards all of it and is held across disk I/O;
// readers never take it. The atomics are the values appends and readers check without mu; they are
// changed under mu (dirty and the pacing state also by appends, holding appendMu).
type writer struct {
	policy policy // Inline or Deferred, chosen when the partition opens
	// The Log's, shared by all partitions; maxDirty is Config.MaxDirty.
	budget   *budget
	chunks   *directio.Pool
	maxDirty int64

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

	// Deferred only.
	fl        flusher
	dirty     atomic.Int64 // bytes not yet handed to the File
	mem       int64        // chunk memory held; under log.budget.mu
	flushRate atomic.Int64 // bytes per second of the flusher's recent writes (see pace)
	paceNext  atomic.Int64 // Log.monoNow at which the next paced append's slot starts
}

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

// policy is what the persistence modes do differently, chosen once when the partition opens.
type policy interface {
	// pace runs before appendMu (see Partition.pace).
	pace(p *Partition, n int)
	// append writes or buffers b at the end of seg, the active segment; caller holds appendMu.
	append(p *Partition, seg *segment, b []byte) (int64, error)
	// rotate retires old, the active segment, and opens the next one; caller holds appendMu.
	rotate(p *Partition, old *segment) (*rotation, error)
}

func newPolicy(mode Persist) policy {
	if mode == Deferred {
		return deferredPolicy{}
	}
	return inlinePolicy{}
}

// inlinePolicy writes every full block of an append before Append returns, and seals a retired
// segment before the next one is created.
type inlinePolicy struct{}

func (inlinePolicy) pace(*Partition, int) {}

func (inlinePolicy) append(p *Partition, seg *segment, b []byte) (int64, error) {
	return p.writeThrough(seg, b)
}

func (inlinePolicy) rotate(p *Partition, old *segment) (*rotation, error) { return p.rotateInline(old) }

// deferredPolicy copies appends into memory for the flusher, and seals a retired segment in the
// background.
type deferredPolicy struct{}

func (deferredPolicy) pace(p *Partition, n int) { p.pace(n) }

func (deferredPolicy) append(p *Partition, seg *segment, b []byte) (int64, error) {
	cfg := &p.log.cfg
	bound := chunkBound(int64(len(b)), p.log.chunk) * p.log.chunk
	if bound > cfg.MaxDirty || bound > cfg.MaxDirtyTotal {
		// Larger than the cap itself: waiting would never end, so it goes to the File directly,
		// after everything before it.
		return p.writeThrough(seg, b)
	}
	return p.appendDeferred(seg, b, bound)
}

func (deferredPolicy) rotate(p *Partition, old *segment) (*rotation, error) { return p.sealLater(old) }
