package fusefs

import (
	"sync"

	"segfs/segments"
)

// openReaders keeps `current` readable after rmdir, as an unlinked file stays readable. If `current`
// is open for reading, rmdir first syncs the partition, so its files are exact, and records its segments.
type openReaders struct {
	mu      sync.Mutex
	readers map[*segments.Partition]int
	final   map[*segments.Partition][]segments.SegmentInfo
}

func (o *openReaders) opened(p *segments.Partition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.readers == nil {
		o.readers = make(map[*segments.Partition]int)
	}
	o.readers[p]++
}

func (o *openReaders) closed(p *segments.Partition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.readers[p]--; o.readers[p] <= 0 {
		delete(o.readers, p)
		delete(o.final, p)
	}
}

// beforeDelete syncs p and records its segments if a reader holds its `current`.
func (o *openReaders) beforeDelete(p *segments.Partition) error {
	o.mu.Lock()
	n := o.readers[p]
	o.mu.Unlock()
	if n == 0 {
		return nil
	}
	if err := p.Sync(); err != nil {
		return err
	}
	segs := p.Segments()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.readers[p] > 0 {
		if o.final == nil {
			o.final = make(map[*segments.Partition][]segments.SegmentInfo)
		}
		o.final[p] = segs
	}
	return nil
}

// lastSeen is the segment at base as of the sync before its partition's deletion.
func (o *openReaders) lastSeen(p *segments.Partition, base int64) (segments.SegmentInfo, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.final[p] {
		if s.Base == base {
			return s, true
		}
	}
	return segments.SegmentInfo{}, false
}
