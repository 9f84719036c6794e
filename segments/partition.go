package segments

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// Partition is one append-only byte log: the concatenation of its segments in base order.
//
// Locks, in the order they nest:
//
//	appendMu  serializes appends (call order, rotation decisions); held across the writes of inline
//	          appends and seals, never taken by readers
//	nsMu      serializes Purge with delete and close
//	fileMu    serializes every use of the active File and of the commit file: the flusher, inline
//	          writes, Sync, seal, close; held across disk I/O, never taken by readers
//	mu        the segment list and state; held for slice operations only
//	segment.mu, dirtyBuf.mu, budget.mu: memory only
//
// Readers take mu, then one segment's mu shared: nothing a reader waits for is ever held across a
// write, which is what keeps consumers off the writer's disk latency.
type Partition struct {
	log   *Log
	topic string
	id    int
	dir   string
	fs    fsys

	appendMu sync.Mutex
	nsMu     sync.Mutex

	fileMu  sync.Mutex
	commit  *commitLog // under fileMu
	failed  error      // under fileMu: sticky write-path failure
	iovs    [][]byte   // under fileMu
	padBuf  []byte     // under fileMu
	discard bool       // under fileMu: being deleted, write nothing more

	mu    sync.Mutex
	segs  []*segment // sorted by base; the last one is active
	state error      // non-nil once deleted or closed

	end     atomic.Int64 // partition end offset
	durable atomic.Int64 // end offset made durable and exact by Sync or a seal
	dirty   atomic.Int64 // deferred bytes not yet handed to the File
	halted  atomic.Pointer[haltReason]
	mem     int64 // deferred chunk memory held; under log.budget.mu
	fl      flusher
}

type haltReason struct{ err error }

// rotation is what OnRotate is told once Append has released the partition.
type rotation struct{ sealed, active int64 }

func newPartition(l *Log, topic string, id int, dir string) *Partition {
	return &Partition{log: l, topic: topic, id: id, dir: dir, fs: l.fs}
}

func (p *Partition) name() string { return fmt.Sprintf("%s/%d", p.topic, p.id) }

// Topic is the name of the partition's topic.
func (p *Partition) Topic() string { return p.topic }

// ID is the partition number.
func (p *Partition) ID() int { return p.id }

// Size is the end offset of the partition: every byte appended, persisted or not.
func (p *Partition) Size() int64 { return p.end.Load() }

// Unsynced reports whether bytes were appended that no Sync or seal has made durable and exact yet.
func (p *Partition) Unsynced() bool { return p.end.Load() > p.durable.Load() }

func (p *Partition) activeSegment() *segment {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.segs[len(p.segs)-1]
}

// halt makes appends (including those blocked for memory) fail with err from now on.
func (p *Partition) halt(err error) {
	if p.halted.CompareAndSwap(nil, &haltReason{err}) {
		p.log.budget.wake()
	}
}

func (p *Partition) failLocked(err error) error {
	if p.failed == nil {
		p.failed = fmt.Errorf("partition %s failed (reopen to recover): %w", p.name(), err)
		p.halt(p.failed)
	}
	return p.failed
}

// Append appends b as one unit, after every earlier Append, and returns the partition offset of its
// first byte. It never spans two segments: if b does not fit in a non-empty active segment, that
// segment is sealed first. Inline: returns after every full block of b is written. Deferred: returns
// after b is copied into memory, blocking first while the memory caps are reached.
func (p *Partition) Append(b []byte) (int64, error) {
	p.appendMu.Lock()
	off, rot, err := p.appendLocked(b)
	p.appendMu.Unlock()
	if rot != nil && p.log.cfg.OnRotate != nil {
		p.log.cfg.OnRotate(p.topic, p.id, rot.sealed, rot.active)
	}
	return off, err
}

func (p *Partition) appendLocked(b []byte) (int64, *rotation, error) {
	if h := p.halted.Load(); h != nil {
		return 0, nil, h.err
	}
	if len(b) == 0 {
		return p.end.Load(), nil, nil
	}
	var rot *rotation
	seg := p.activeSegment()
	if size := seg.size.Load(); size > 0 && size+int64(len(b)) > p.log.cfg.SegmentSize {
		var err error
		if rot, err = p.rotate(seg); err != nil {
			return 0, nil, err
		}
		seg = p.activeSegment()
	}
	cfg := &p.log.cfg
	if cfg.Persist == Inline {
		off, err := p.writeThrough(seg, b)
		return off, rot, err
	}
	c := p.log.chunk
	bound := chunkBound(int64(len(b)), c) * c
	if bound > cfg.MaxDirty || bound > cfg.MaxDirtyTotal {
		// Larger than the cap itself: waiting would never end, so it goes to the File directly,
		// after everything before it.
		off, err := p.writeThrough(seg, b)
		return off, rot, err
	}
	if err := p.log.budget.acquire(p, bound); err != nil {
		return 0, rot, err
	}
	off := seg.base + seg.size.Load()
	taken := seg.buf.add(p.log.chunks, b)
	p.log.budget.release(p, bound-taken*c)
	p.published(seg, off+int64(len(b)))
	p.dirty.Add(int64(len(b)))
	p.kick()
	return off, rot, nil
}

// published records a new end of the active segment.
func (p *Partition) published(seg *segment, end int64) {
	seg.size.Store(end - seg.base)
	seg.mtime.Store(time.Now().UnixNano())
	p.end.Store(end)
}

// writeThrough appends b with File.Write after every dirty byte before it.
func (p *Partition) writeThrough(seg *segment, b []byte) (int64, error) {
	p.fileMu.Lock()
	defer p.fileMu.Unlock()
	if err := p.writePendingLocked(); err != nil {
		return 0, err
	}
	start := seg.wfile.Size()
	if _, err := seg.wfile.Write(b); err != nil {
		// The File left size and disk as they were, so the partition stays usable (ENOSPC may pass).
		return 0, fmt.Errorf("append to %s: %w", p.name(), err)
	}
	end := start + int64(len(b))
	if seg.buf != nil {
		p.log.budget.release(p, seg.buf.written(p.log.chunks, end)*seg.buf.c)
	}
	p.published(seg, seg.base+end)
	return seg.base + start, nil
}

// Sync makes every byte appended before it durable, and the active file exact (no padding), before
// returning.
func (p *Partition) Sync() error {
	if h := p.halted.Load(); h != nil {
		return h.err
	}
	p.fileMu.Lock()
	defer p.fileMu.Unlock()
	if h := p.halted.Load(); h != nil {
		return h.err // shut down (or failed) while this Sync waited for the file lock
	}
	if !p.Unsynced() {
		return nil
	}
	if err := p.writePendingLocked(); err != nil {
		return err
	}
	seg := p.activeSegment()
	if err := p.syncLocked(seg); err != nil {
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
// by its commit record), fdatasync, then the stale-record check.
func (p *Partition) syncLocked(seg *segment) error {
	if err := seg.wfile.FlushAndTruncate(); err != nil {
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
	if !p.commit.stale(seg.base, size) {
		return nil
	}
	blk := p.padBlock()
	if n, err := seg.wfile.ReadAt(blk, size-int64(len(blk))); n != len(blk) {
		return p.failLocked(fmt.Errorf("settle commit record of %s: read last block: %w", seg.path, err))
	}
	if err := p.commit.write(seg.base, size, len(blk), crc32c(blk)); err != nil {
		return p.failLocked(err)
	}
	return nil
}

func (p *Partition) padBlock() []byte {
	if p.padBuf == nil {
		p.padBuf = make([]byte, p.log.block)
	}
	return p.padBuf
}

// beforePad is the File's BeforePad hook (fileMu is held by whoever flushes): it makes the commit
// record for the padded block about to be written durable first.
func (p *Partition) beforePad(seg *segment, size int64) error {
	if p.discard {
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
	return p.commit.write(seg.base, size, int(bs), crc32c(blk))
}

var errDiscarded = errors.New("partition deleted; tail not written")

// rotate seals the active segment and opens the next one at its end. Caller holds appendMu.
func (p *Partition) rotate(old *segment) (*rotation, error) {
	p.fileMu.Lock()
	defer p.fileMu.Unlock()
	if err := p.writePendingLocked(); err != nil {
		return nil, err
	}
	if err := p.sealLocked(old); err != nil {
		return nil, p.failLocked(err)
	}
	next, err := p.createSegment(old.base + old.size.Load())
	if err != nil {
		return nil, p.failLocked(err)
	}
	p.mu.Lock()
	p.segs = append(p.segs, next)
	p.mu.Unlock()
	p.raiseDurable(next.base)
	p.log.cfg.Logger.WithFields(map[string]any{
		"partition": p.name(), "segment": old.base, "size": old.size.Load(), "next": next.base,
	}).Info("sealed segment")
	return &rotation{sealed: old.base, active: next.base}, nil
}

// sealLocked makes seg exact and durable and switches its readers to a read-only descriptor:
// FlushAndTruncate, fsync of the file, stale-record check, fsync of the directory. Only after all of
// that does the caller create the next segment, so recovery can trust every segment but the last by
// its size. The File is closed here, so nothing can write to a sealed segment again.
func (p *Partition) sealLocked(seg *segment) error {
	f := seg.wfile
	if err := f.FlushAndTruncate(); err != nil {
		return fmt.Errorf("seal %s: %w", seg.path, err)
	}
	rfd, err := p.fs.sys.Open(seg.path, unix.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("seal %s: open: %w", seg.path, err)
	}
	if err := p.fs.sys.Fsync(rfd); err != nil {
		_ = p.fs.sys.Close(rfd)
		return fmt.Errorf("seal %s: fsync: %w", seg.path, err)
	}
	if err := p.settleCommit(seg); err != nil {
		_ = p.fs.sys.Close(rfd)
		return err
	}
	seg.mu.Lock()
	buf := seg.buf
	seg.file, seg.buf, seg.rfd = nil, nil, rfd
	seg.size.Store(f.Size())
	seg.mtime.Store(time.Now().UnixNano())
	seg.sealed.Store(true)
	seg.mu.Unlock()
	if buf != nil {
		p.log.budget.release(p, buf.discard(p.log.chunks)*buf.c)
	}
	seg.wfile = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("seal %s: %w", seg.path, err)
	}
	return p.fs.syncDir(p.dir)
}

// openFile opens seg's file for appending (creating it if missing).
func (p *Partition) openFile(seg *segment) (directio.File, error) {
	l := p.log
	f, err := directio.Open(seg.path, directio.Options{
		Mode: l.cfg.IO, Syscalls: l.cfg.Syscalls, Alignment: l.align, Pool: l.scratch,
		BeforePad: func(size int64) error { return p.beforePad(seg, size) },
	})
	if err != nil {
		return nil, err
	}
	seg.wfile, seg.file = f, f
	if l.cfg.Persist == Deferred {
		seg.buf = newDirtyBuf(l.chunk, f.Size())
	}
	seg.size.Store(f.Size())
	seg.mtime.Store(time.Now().UnixNano())
	var st unix.Stat_t
	if err := unix.Stat(seg.path, &st); err == nil {
		seg.ino = st.Ino
	}
	return f, nil
}

// createSegment creates the empty segment file at base and makes its directory entry durable.
func (p *Partition) createSegment(base int64) (*segment, error) {
	seg := &segment{base: base, path: filepath.Join(p.dir, segmentName(base)), rfd: -1}
	f, err := p.openFile(seg)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := p.fs.syncDir(p.dir); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("create segment %s: %w", seg.path, err)
	}
	return seg, nil
}
