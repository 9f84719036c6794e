package segments

import "sync"

// segList is a partition's segments, sorted by base; the last one is active.
type segList struct {
	mu      sync.Mutex
	segs    []*segment
	sealing *segment // the seal in progress, set with the new active segment; nil if none
}

func (l *segList) active() *segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[len(l.segs)-1]
}

func (l *segList) all() []*segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*segment(nil), l.segs...)
}

// target is what the writer deals with first: the seal in progress, else the active segment.
func (l *segList) target() (seg *segment, sealing bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sealing != nil {
		return l.sealing, true
	}
	return l.segs[len(l.segs)-1], false
}

func (l *segList) beingSealed() *segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sealing
}

// rotate lists next as active and sealing, if not nil, as the seal in progress.
func (l *segList) rotate(next, sealing *segment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.segs = append(l.segs, next)
	if sealing != nil {
		l.sealing = sealing
	}
}

func (l *segList) sealDone() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sealing = nil
}
