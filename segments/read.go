package segments

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// SegmentInfo describes one segment file.
type SegmentInfo struct {
	Base    int64     // first partition offset; the file is SegmentName(Base)
	Size    int64     // logical size, with bytes not yet persisted
	Sealed  bool      // a later segment exists
	ModTime time.Time // last append
	Path    string
	Ino     uint64 // backing file's inode, stable across rotation
	Blocks  int64  // backing file's st_blocks
	// Remote: no local file; reads go to the object store.
	Remote bool
	// Uploaded: the object store holds a verified copy.
	Uploaded bool
}

func (p *Partition) snapshot() ([]*segment, error) {
	p.list.mu.Lock()
	defer p.list.mu.Unlock()
	if err := p.w.closedErr(); err != nil {
		return nil, err
	}
	return append([]*segment(nil), p.list.segs...), nil
}

func (p *Partition) find(base int64) (*segment, error) {
	s, _, err := p.findSuperseded(base)
	return s, err
}

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

// Segments lists the segments by base, the active one last; none once deleted or closed.
func (p *Partition) Segments() []SegmentInfo {
	segs, _ := p.snapshot()
	out := make([]SegmentInfo, len(segs))
	for i, s := range segs {
		out[i] = s.info(i < len(segs)-1)
	}
	return out
}

// Active describes the active segment; zero once deleted or closed.
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

// ReadSegment reads the segment at base without waiting for the writer's I/O; ErrNotExist once purged.
func (p *Partition) ReadSegment(base int64, b []byte, off int64) (int, error) {
	s, err := p.find(base)
	if err != nil {
		return 0, err
	}
	return p.readSeg(s, b, off)
}

// ReadAt reads partition offsets across segments, as io.ReaderAt; ErrNotExist for purged offsets.
func (p *Partition) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s at %d: negative offset", p.name(), off)
	}
	n := 0
	var done *segment // read to its end
	for n < len(b) {
		s, superseded, err := p.segmentAt(off + int64(n))
		if err != nil {
			return n, err
		}
		if s == done {
			return n, io.EOF // no segment after it (yet)
		}
		k, err := p.readSeg(s, b[n:], off+int64(n)-s.base)
		n += k
		// Superseded or sealed, it never grows again.
		if err == io.EOF && (superseded || s.sealed.Load()) && s.size.Load() == off+int64(n)-s.base {
			done = s
			continue
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

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

// WaitSealed returns once the segment at base is exact and durable, finishing a background seal
// itself. ErrActiveSegment for the active segment, ErrNotExist for none.
func (p *Partition) WaitSealed(base int64) error {
	s, superseded, err := p.findSuperseded(base)
	if err != nil {
		return err
	}
	if !superseded && !s.sealed.Load() {
		return fmt.Errorf("segment %d of %s: %w", base, p.name(), ErrActiveSegment)
	}
	// Not another segment's seal, which may be stuck on a full disk.
	if p.list.beingSealed() == s {
		if err := p.w.sealPending(); err != nil {
			return fmt.Errorf("seal segment %d of %s: %w", base, p.name(), err)
		}
	}
	if !s.sealed.Load() {
		return fmt.Errorf("segment %d of %s: %w", base, p.name(), ErrNotExist)
	}
	return nil
}

// Purge deletes a sealed segment once reads in flight finish.
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
	if p.list.sealing == s {
		// Seal it first: only sealed files are removed.
		p.list.mu.Unlock()
		if err := p.w.sealPending(); err != nil {
			return fmt.Errorf("purge segment %d of %s: %w", base, p.name(), err)
		}
		p.list.mu.Lock()
		if err := p.w.closedErr(); err != nil {
			p.list.mu.Unlock()
			return err
		}
		// nsMu kept other purges out, and rotations only append: s is still at i.
	}
	p.list.segs = append(p.list.segs[:i:i], p.list.segs[i+1:]...)
	p.list.mu.Unlock()
	p.log.tierPurged(p, s)
	if _, err := s.closeRead(p.fs); err != nil {
		// close(2) frees the descriptor even on error, and a read-only one loses nothing.
		p.log.cfg.Logger.WithError(err).WithField("partition", p.name()).Warn("purge: closing the segment's read descriptor failed")
	}
	if s.tier.evicted.Load() {
		return nil
	}
	if err := p.fs.dirs.Unlink(s.path); err != nil {
		return fmt.Errorf("purge %s: %w", s.path, err)
	}
	if err := p.fs.syncDir(p.dir); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	p.logger().WithField("segment", base).Debug("purged segment")
	return nil
}
