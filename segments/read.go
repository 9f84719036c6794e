package segments

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	Base    int64     // first byte offset within the partition; file name is SegmentName(Base)
	Size    int64     // logical size (active: includes bytes not yet persisted)
	Sealed  bool      // a later segment exists; set in the same step that makes the successor visible
	ModTime time.Time // last append (active) or seal time
	Path    string    // backing file
	Ino     uint64    // backing file inode number: stable across rotation
	Blocks  int64     // backing file st_blocks
}

// snapshot returns the segment list, or the partition's state error once deleted or closed.
func (p *Partition) snapshot() ([]*segment, error) {
	p.list.mu.Lock()
	defer p.list.mu.Unlock()
	if err := p.w.closedErr(); err != nil {
		return nil, err
	}
	return append([]*segment(nil), p.list.segs...), nil
}

// find returns the segment with the given base.
func (p *Partition) find(base int64) (*segment, error) {
	s, _, err := p.findSuperseded(base)
	return s, err
}

// findSuperseded returns the segment with the given base and whether a later segment exists.
func (p *Partition) findSuperseded(base int64) (*segment, bool, error) {
	p.list.mu.Lock()
	defer p.list.mu.Unlock()
	if err := p.w.closedErr(); err != nil {
		return nil, false, err
	}
	i := sort.Search(len(p.list.segs), func(i int) bool { return p.list.segs[i].base >= base })
	if i == len(p.list.segs) || p.list.segs[i].base != base {
		return nil, false, fmt.Errorf("segment %d of %s: %w", base, p.name(), ErrNotExist)
	}
	return p.list.segs[i], i < len(p.list.segs)-1, nil
}

// Segments lists the segments sorted by base; the last one is the active segment. Empty once the
// partition is deleted or closed.
func (p *Partition) Segments() []SegmentInfo {
	segs, _ := p.snapshot()
	out := make([]SegmentInfo, len(segs))
	for i, s := range segs {
		out[i] = s.info(i < len(segs)-1)
	}
	return out
}

// Active describes the active segment (the zero SegmentInfo once the partition is deleted or closed).
func (p *Partition) Active() SegmentInfo {
	segs, _ := p.snapshot()
	if len(segs) == 0 {
		return SegmentInfo{}
	}
	return segs[len(segs)-1].info(false)
}

// Segment describes the segment at base; ErrNotExist once purged.
func (p *Partition) Segment(base int64) (SegmentInfo, error) {
	s, superseded, err := p.findSuperseded(base)
	if err != nil {
		return SegmentInfo{}, err
	}
	return s.info(superseded), nil
}

// ReadSegment reads within one segment (off relative to the segment start). It works for the active
// segment and keeps working for it after it is sealed (same base); returns ErrNotExist once purged.
// It never returns bytes of another segment, returns io.EOF at the segment's logical end, and never
// waits for the writer's disk I/O.
func (p *Partition) ReadSegment(base int64, b []byte, off int64) (int, error) {
	s, err := p.find(base)
	if err != nil {
		return 0, err
	}
	return s.readAt(p.fs, b, off)
}

// ReadAt reads partition offsets [off, off+len(b)) across segments, with io.ReaderAt semantics:
// io.EOF at the end of the partition, ErrNotExist for offsets whose segment was purged.
func (p *Partition) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s at %d: negative offset", p.name(), off)
	}
	n := 0
	var done *segment // a segment read up to its end
	for n < len(b) {
		s, superseded, err := p.segmentAt(off + int64(n))
		if err != nil {
			return n, err
		}
		if s == done {
			return n, io.EOF // no segment after it (yet)
		}
		k, err := s.readAt(p.fs, b[n:], off+int64(n)-s.base)
		n += k
		// A retired segment never grows again, whether or not its seal is done yet; neither does a
		// sealed last one (a full disk kept its successor from being created).
		if err == io.EOF && (superseded || s.sealed.Load()) && s.size.Load() == off+int64(n)-s.base {
			done = s // the rest is in the next segment, if there is one
			continue
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// segmentAt returns the segment holding partition offset off (the active one for off >= its base),
// and whether a later segment exists.
func (p *Partition) segmentAt(off int64) (*segment, bool, error) {
	p.list.mu.Lock()
	defer p.list.mu.Unlock()
	if err := p.w.closedErr(); err != nil {
		return nil, false, err
	}
	i := sort.Search(len(p.list.segs), func(i int) bool { return p.list.segs[i].base > off }) - 1
	if i < 0 {
		return nil, false, fmt.Errorf("offset %d of %s was purged: %w", off, p.name(), ErrNotExist)
	}
	s := p.list.segs[i]
	superseded := i < len(p.list.segs)-1
	if superseded && off >= s.base+s.size.Load() {
		return nil, false, fmt.Errorf("offset %d of %s was purged: %w", off, p.name(), ErrNotExist)
	}
	return s, superseded, nil
}

// WaitSealed returns once the segment at base is sealed on disk: its backing file holds exactly its
// bytes and they are durable. A rotation in deferred mode lists the next segment at once and seals
// the retired one in the background; whoever wants to read the retired one's backing file directly
// (or count on its durability) calls this first, and finishes the seal itself if it is not done yet.
// ErrActiveSegment for the active segment, ErrNotExist if there is none at base.
func (p *Partition) WaitSealed(base int64) error {
	s, superseded, err := p.findSuperseded(base)
	if err != nil {
		return err
	}
	if !superseded && !s.sealed.Load() {
		return fmt.Errorf("segment %d of %s: %w", base, p.name(), ErrActiveSegment)
	}
	// Only s's own seal is waited for: another segment's seal stuck on a full disk must not fail this.
	if p.w.sealing.Load() == s {
		if err := p.w.sealPending(); err != nil {
			return fmt.Errorf("seal segment %d of %s: %w", base, p.name(), err)
		}
	}
	if !s.sealed.Load() {
		return fmt.Errorf("segment %d of %s: %w", base, p.name(), ErrNotExist) // deleted or closed meanwhile
	}
	return nil
}

// Purge deletes a sealed segment; ErrActiveSegment for the active one, ErrNotExist if there is none at
// base. Readers in flight finish first; later reads of it fail with ErrNotExist.
func (p *Partition) Purge(base int64) error {
	p.nsMu.Lock()
	defer p.nsMu.Unlock()
	p.list.mu.Lock()
	if err := p.w.closedErr(); err != nil {
		p.list.mu.Unlock()
		return err
	}
	i := sort.Search(len(p.list.segs), func(i int) bool { return p.list.segs[i].base >= base })
	if i == len(p.list.segs) || p.list.segs[i].base != base {
		p.list.mu.Unlock()
		return fmt.Errorf("purge segment %d of %s: %w", base, p.name(), ErrNotExist)
	}
	if i == len(p.list.segs)-1 {
		p.list.mu.Unlock()
		return fmt.Errorf("purge segment %d of %s: %w", base, p.name(), ErrActiveSegment)
	}
	s := p.list.segs[i]
	if p.w.sealing.Load() == s {
		// s is the retired segment, still being sealed: its File is open and the flusher may be
		// writing it. Seal it first, so the file is only ever removed as a sealed segment. Any other
		// superseded segment is sealed already, so a seal stuck on a full disk does not keep Purge from
		// freeing space.
		p.list.mu.Unlock()
		if err := p.w.sealPending(); err != nil {
			return fmt.Errorf("purge segment %d of %s: %w", base, p.name(), err)
		}
		p.list.mu.Lock()
		if err := p.w.closedErr(); err != nil {
			p.list.mu.Unlock()
			return err
		}
		// nsMu kept other purges out; rotations only append, so s is still at i.
	}
	p.list.segs = append(p.list.segs[:i:i], p.list.segs[i+1:]...)
	p.list.mu.Unlock()
	if _, err := s.closeRead(p.fs); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	if err := p.fs.dirs.Unlink(s.path); err != nil {
		return fmt.Errorf("purge %s: %w", s.path, err)
	}
	if err := p.fs.syncDir(p.dir); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	p.log.cfg.Logger.WithFields(map[string]any{"partition": p.name(), "segment": base}).Debug("purged segment")
	return nil
}
