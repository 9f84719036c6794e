package segments

import (
	"fmt"
	"sync"
)

// Partition is one append-only byte log: its segments concatenated.
type Partition struct {
	log   *Log
	topic string
	id    int
	dir   string
	fs    diskCalls

	nsMu sync.Mutex

	list segList
	w    *writer

	counters partitionCounters
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

// Dir is the backing directory; its times are the partition's.
func (p *Partition) Dir() string { return p.dir }

// Size is the partition's end: every byte appended, persisted or not.
func (p *Partition) Size() int64 { return p.w.end.Load() }

// Unsynced reports bytes that no Sync or seal made durable yet.
func (p *Partition) Unsynced() bool { return p.w.unsynced() }

// Append appends b in one segment and returns its offset; with RotateNewline, b may be cut after
// its first line (ShortAppendError). Deferred, it waits while the memory caps are reached.
func (p *Partition) Append(b []byte) (int64, error) {
	began := p.w.observeStart()
	off, rot, err := p.w.append(b)
	if rot != nil && p.log.cfg.OnRotate != nil {
		p.log.cfg.OnRotate(p.topic, p.id, rot.sealed, rot.active)
	}
	p.appended(began, len(b), err)
	return off, err
}

// Sync makes every byte appended before it durable, and the active file exact.
func (p *Partition) Sync() error { return p.w.sync() }
