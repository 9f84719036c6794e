package segments

import "sync"

// segList is a partition's segments, sorted by base; the last one is active. The partition's read
// side and its writer share it. mu is memory only.
type segList struct {
	mu   sync.Mutex
	segs []*segment
	// sealing is the segment a deferred rotation left to seal in the background, until that is done: the one seal in
	// progress, nil if none. A rotation sets it in the same step that lists the new active segment.
	sealing *segment
}

func (l *segList) active() *segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[len(l.segs)-1]
}

// all is a copy of the list.
func (l *segList) all() []*segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*segment(nil), l.segs...)
}

// target is what the writer must deal with first: the segment being sealed (sealing true), or else
// the active one.
func (l *segList) target() (seg *segment, sealing bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sealing != nil {
		return l.sealing, true
	}
	return l.segs[len(l.segs)-1], false
}

// beingSealed is the segment whose seal is in progress, nil if none.
func (l *segList) beingSealed() *segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sealing
}

// rotate lists next as the active segment, and sealing, if not nil, as the one being sealed.
func (l *segList) rotate(next, sealing *segment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.segs = append(l.segs, next)
	if sealing != nil {
		l.sealing = sealing
	}
}

// sealDone records that the seal in progress is done (or abandoned at shutdown).
func (l *segList) sealDone() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sealing = nil
}
