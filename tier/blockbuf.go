package tier

import (
	"sync"
	"sync/atomic"
)

// blockBuf holds one verified block; the memory cache, a queued disk write, a flight and each reader
// hold a reference. The last release returns it to the pool: fresh heap costs page faults.
type blockBuf struct {
	b    []byte
	refs atomic.Int32
	pool *blockPool
}

func (d *blockBuf) acquire() { d.refs.Add(1) }

func (d *blockBuf) release() {
	switch n := d.refs.Add(-1); {
	case n == 0:
		d.pool.put(d)
	case n < 0:
		panic("tier: block buffer released twice")
	}
}

// blockPool keeps released buffers by capacity, up to maxFree bytes.
type blockPool struct {
	mu      sync.Mutex
	free    map[int][]*blockBuf
	bytes   int64
	maxFree int64
}

// get returns a buffer of n bytes and capacity bs, holding one reference.
func (p *blockPool) get(bs, n int64) *blockBuf {
	p.mu.Lock()
	var d *blockBuf
	if l := p.free[int(bs)]; len(l) > 0 {
		d = l[len(l)-1]
		p.free[int(bs)] = l[:len(l)-1]
		p.bytes -= bs
	}
	p.mu.Unlock()
	if d == nil {
		d = &blockBuf{b: make([]byte, bs), pool: p}
	}
	d.b = d.b[:n]
	d.refs.Store(1)
	return d
}

func (p *blockPool) put(d *blockBuf) {
	c := int64(cap(d.b))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bytes+c > p.maxFree {
		return
	}
	if p.free == nil {
		p.free = map[int][]*blockBuf{}
	}
	p.free[int(c)] = append(p.free[int(c)], d)
	p.bytes += c
}
