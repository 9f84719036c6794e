package segments

import (
	"fmt"
	"sync"
)

// Partition is one append-only byte log: the concatenation of its segments in base order.
// Its locks are listed in doc.go ("Locking").
type Partition struct {
	log   *Log
	topic string
	id    int
	dir   string
	fs    diskCalls

	nsMu sync.Mutex

	list segList
	w    *writer
}

func newPartition(l *Log, topic string, id int, dir string) *Partition {
	p := &Partition{log: l, topic: topic, id: id, dir: dir, fs: l.fs}
	p.w = newWriter(l, p.name(), dir, &p.list)
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
func (p *Partition) Size() int64 { return p.w.end.Load() }

// Unsynced reports whether bytes were appended that no Sync or seal has made durable and exact yet.
func (p *Partition) Unsynced() bool { return p.w.unsynced() }

// Append appends b as one unit, after every earlier Append, and returns the partition offset of its
// first byte. It never spans two segments: if b does not fit in a non-empty active segment, that
// segment is sealed first. Inline: returns after every full block of b is written. Deferred: returns
// after b is copied into memory, blocking first while the memory caps are reached.
func (p *Partition) Append(b []byte) (int64, error) {
	off, rot, err := p.w.append(b)
	if rot != nil && p.log.cfg.OnRotate != nil {
		p.log.cfg.OnRotate(p.topic, p.id, rot.sealed, rot.active)
	}
	return off, err
}

// Sync makes every byte appended before it durable, and the active file exact (no padding), before
// returning.
func (p *Partition) Sync() error { return p.w.sync() }
