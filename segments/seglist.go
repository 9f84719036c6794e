package segments

import "sync"

// segList is a partition's segments, sorted by base; the last one is active. The partition's read
// side and its writer share it. mu is memory only.
type segList struct {
	mu   sync.Mutex
	segs []*segment
}

func (l *segList) active() *segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[len(l.segs)-1]
}
