package segments

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Partition is one append-only byte log: the concatenation of its segments in base order.
// Its locks are listed in doc.go ("Locking").
type Partition struct {
	log   *Log
	topic string
	id    int
	dir   string
	fs    diskCalls

	appendMu sync.Mutex
	nsMu     sync.Mutex

	w writer

	mu   sync.Mutex
	segs []*segment // sorted by base; the last one is active

	end     atomic.Int64 // partition end offset
	durable atomic.Int64 // end offset made durable and exact by Sync or a seal

	counters partitionCounters // stats.go: metrics hook
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

func newPartition(l *Log, topic string, id int, dir string) *Partition {
	p := &Partition{log: l, topic: topic, id: id, dir: dir, fs: l.fs}
	p.w = writer{policy: newPolicy(l.cfg.Persist), budget: l.budget, chunks: l.chunks, maxDirty: l.cfg.MaxDirty}
	return p
}

func (p *Partition) name() string { return fmt.Sprintf("%s/%d", p.topic, p.id) }

// Topic is the name of the partition's topic.
func (p *Partition) Topic() string { return p.topic }

// ID is the partition number.
func (p *Partition) ID() int { return p.id }

// Dir is the partition's backing directory: its times are the partition's.
func (p *Partition) Dir() string { return p.dir }

// Size is the end offset of the partition: every byte appended, persisted or not.
func (p *Partition) Size() int64 { return p.end.Load() }

// Unsynced reports whether bytes were appended that no Sync or seal has made durable and exact yet.
func (p *Partition) Unsynced() bool { return p.end.Load() > p.durable.Load() }

func (p *Partition) activeSegment() *segment {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.segs[len(p.segs)-1]
}

// failLocked records a sticky write failure (the first one counts) and returns it.
func (p *Partition) failLocked(err error) error {
	return p.w.worsen(func(h health) *health {
		if h.failed != nil {
			return nil
		}
		h.failed = fmt.Errorf("partition %s failed (reopen to recover): %w", p.name(), err)
		return &h
	}).failed
}

// Append appends b as one unit, after every earlier Append, and returns the partition offset of its
// first byte. It never spans two segments: if b does not fit in a non-empty active segment, that
// segment is sealed first. Inline: returns after every full block of b is written. Deferred: returns
// after b is copied into memory, blocking first while the memory caps are reached.
func (p *Partition) Append(b []byte) (int64, error) {
	began := p.log.observeStart() // stats.go: metrics hook

	p.w.policy.pace(p, len(b)) // outside appendMu: a delayed append must not hold up the partition's others
	p.appendMu.Lock()
	off, rot, err := p.appendLocked(b)
	p.appendMu.Unlock()
	if rot != nil && p.log.cfg.OnRotate != nil {
		p.log.cfg.OnRotate(p.topic, p.id, rot.sealed, rot.active)
	}
	p.appended(began, len(b), err) // stats.go: metrics hook
	return off, err
}

func (p *Partition) appendLocked(b []byte) (int64, *rotation, error) {
	if err := p.w.writeErr(); err != nil {
		return 0, nil, err
	}
	if len(b) == 0 {
		return p.end.Load(), nil, nil
	}
	var rot *rotation
	var err error
	seg := p.activeSegment()
	if seg.sealed.Load() {
		// A rotation sealed it but could not create the successor (full disk): it is never written
		// again, so create the successor first.
		if rot, err = p.openSuccessor(seg); err != nil {
			return 0, nil, err
		}
		seg = p.activeSegment()
	}
	if size := seg.size.Load(); size > 0 && size+int64(len(b)) > p.log.cfg.SegmentSize {
		if rot, err = p.w.policy.rotate(p, seg); err != nil {
			return 0, nil, err
		}
		seg = p.activeSegment()
	}
	off, err := p.w.policy.append(p, seg, b)
	return off, rot, err
}

// appendDeferred copies b into the active segment's dirty buffer once its disk space is reserved and
// memory is available (bound bytes of chunks), and kicks the flusher.
func (p *Partition) appendDeferred(seg *segment, b []byte, bound int64) (int64, error) {
	need := seg.size.Load() + int64(len(b))
	for {
		if p.w.stall.Load() != nil {
			// Bytes acknowledged earlier are stuck on a full disk: retry them first, and refuse this
			// append while they cannot be written.
			if err := p.retryFlush(); err != nil {
				return 0, err
			}
		}
		if need > seg.reserved.Load() {
			if err := p.reserveFor(seg, need); err != nil {
				return 0, err
			}
		}
		if err := p.w.budget.acquire(&p.w, bound); err != nil {
			if errors.Is(err, errFlushStalled) {
				continue
			}
			return 0, err
		}
		off := seg.base + seg.size.Load()
		taken, ok := seg.buf.add(p.log.chunks, b, &seg.reserved)
		if !ok {
			// A Sync lost the reservation between the check and the copy: reserve again.
			p.w.budget.release(&p.w, bound)
			continue
		}
		p.w.budget.release(&p.w, bound-taken*p.log.chunk)
		p.published(seg, off+int64(len(b)))
		p.w.dirty.Add(int64(len(b)))
		p.kickSoon()
		return off, nil
	}
}

// retryFlush writes the deferred bytes a full disk left in memory.
func (p *Partition) retryFlush() error {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	if _, err := p.writePendingLocked(); err != nil {
		return fmt.Errorf("append to %s: %w", p.name(), err)
	}
	return nil
}

// published records a new end of the active segment.
func (p *Partition) published(seg *segment, end int64) {
	seg.size.Store(end - seg.base)
	seg.mtime.Store(time.Now().UnixNano())
	p.end.Store(end)
}

// writeThrough appends b with File.Write after every dirty byte before it.
func (p *Partition) writeThrough(seg *segment, b []byte) (int64, error) {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	if _, err := p.writePendingLocked(); err != nil {
		return 0, err
	}
	start := seg.wfile.Size()
	// Four appends ahead (at least reserveStep), so large appends do not cost a fallocate each.
	if err := p.reserveLocked(seg, start+int64(len(b)), max(reserveStep, 4*int64(len(b)))); err != nil {
		return 0, fmt.Errorf("append to %s: %w", p.name(), err)
	}
	if _, err := seg.wfile.Write(b); err != nil {
		// The File left size and disk as they were, so the partition stays usable (ENOSPC may pass);
		// its rollback truncated, though, so the reservation is put back.
		p.restoreReservationLocked(seg, seg.reserved.Load())
		return 0, fmt.Errorf("append to %s: %w", p.name(), err)
	}
	end := start + int64(len(b))
	if seg.buf != nil {
		p.w.budget.written(&p.w, seg.buf, end)
	}
	p.published(seg, seg.base+end)
	return seg.base + start, nil
}

// Sync makes every byte appended before it durable, and the active file exact (no padding), before
// returning.
func (p *Partition) Sync() error {
	if err := p.w.writeErr(); err != nil {
		return err
	}
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	if err := p.w.writeErr(); err != nil {
		return err // shut down (or failed) while this Sync waited for the file lock
	}
	if !p.Unsynced() {
		return nil
	}
	defer p.observeSync(p.log.observeStart()) // stats.go: metrics hook
	// The segment writePendingLocked wrote, not the active one read afterwards: a rotation may have
	// listed a new, empty active segment meanwhile, and syncing that would mark the retired one's
	// unflushed tail durable.
	seg, err := p.writePendingLocked()
	if err != nil {
		return err
	}
	if seg.wfile == nil {
		return nil // sealed by a rotation that could not create the successor; the seal synced it
	}
	if err := p.syncLocked(seg, true); err != nil {
		return err
	}
	p.raiseDurable(seg.base + seg.wfile.Size())
	return nil
}

func (p *Partition) raiseDurable(end int64) {
	for {
		cur := p.durable.Load()
		if end <= cur || p.durable.CompareAndSwap(cur, end) {
			return
		}
	}
}

// syncLocked makes the active File exact and durable: FlushAndTruncate (the padded write is preceded
// by its commit record), fdatasync, then the stale-record check. The truncate frees the blocks
// reserved past the end; keepReservation (the segment stays active) reserves them again at once.
func (p *Partition) syncLocked(seg *segment, keepReservation bool) error {
	prev := seg.reserved.Load()
	err := seg.wfile.FlushAndTruncate()
	if keepReservation {
		p.restoreReservationLocked(seg, prev)
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", p.name(), err)
	}
	if err := seg.wfile.Sync(); err != nil {
		return p.failLocked(fmt.Errorf("sync %s: %w", p.name(), err))
	}
	return p.settleCommit(seg)
}

// settleCommit runs after a segment was made exact and durable. If the current commit record could
// make recovery cut that segment back (see commitLog.stale), it writes a record of the exact length,
// which recovery always leaves alone.
func (p *Partition) settleCommit(seg *segment) error {
	size := seg.wfile.Size()
	if !p.w.commit.stale(seg.base, size) {
		return nil
	}
	blk := p.padBlock()
	if n, err := seg.wfile.ReadAt(blk, size-int64(len(blk))); n != len(blk) {
		return p.failLocked(fmt.Errorf("settle commit record of %s: read last block: %w", seg.path, err))
	}
	if err := p.w.commit.write(seg.base, size, len(blk), crc32c(blk)); err != nil {
		return p.failLocked(err)
	}
	return nil
}

func (p *Partition) padBlock() []byte {
	if p.w.padBuf == nil {
		p.w.padBuf = make([]byte, p.log.block)
	}
	return p.w.padBuf
}

// beforePad is the File's BeforePad hook (w.mu is held by whoever flushes): it makes the commit
// record for the padded block about to be written durable first.
func (p *Partition) beforePad(seg *segment, size int64) error {
	if h := p.w.health.Load(); h != nil && h.drop {
		// Deleting: the bytes are going away, so neither the record nor the padded block is written
		// (the File then closes without writing anything).
		return errDiscarded
	}
	blk := p.padBlock()
	bs := int64(len(blk))
	start := size &^ (bs - 1)
	if n, err := seg.wfile.ReadAt(blk[:size-start], start); n != int(size-start) {
		return fmt.Errorf("read tail of %s: %w", seg.path, err)
	}
	clear(blk[size-start:])
	return p.w.commit.write(seg.base, size, int(bs), crc32c(blk))
}

var errDiscarded = errors.New("partition deleted; tail not written")
