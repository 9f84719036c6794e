package directio

import (
	"fmt"
	"sync"
)

// DefaultPoolRetain bounds the free blocks a Pool keeps, so a burst does not pin memory.
const DefaultPoolRetain = 64

// Pool hands out fixed-size aligned blocks without allocating once warm; a sync.Pool would box
// every slice header on Put.
type Pool struct {
	blockSize, align int
	mu               sync.Mutex
	free             [][]byte
	retain           int
}

// NewPool returns a pool of blocks of blockSize bytes aligned to align (a power of two).
func NewPool(blockSize, align int) *Pool {
	if blockSize <= 0 {
		panic(fmt.Sprintf("directio: pool block size %d must be positive", blockSize))
	}
	if align <= 0 || align&(align-1) != 0 {
		panic(fmt.Sprintf("directio: pool alignment %d is not a power of two", align))
	}
	return &Pool{blockSize: blockSize, align: align, retain: DefaultPoolRetain}
}

// SetRetain sets how many free blocks Put keeps; a dropped block is faulted in again on the write path.
func (p *Pool) SetRetain(n int) {
	p.mu.Lock()
	p.retain = max(n, 0)
	p.mu.Unlock()
	p.Trim(n)
}

// Trim drops free blocks beyond keep, for callers gone idle, and returns how many.
func (p *Pool) Trim(keep int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep = max(keep, 0)
	if len(p.free) <= keep {
		return 0
	}
	n := len(p.free) - keep
	clear(p.free[keep:])
	p.free = p.free[:keep]
	return n
}

// Free is how many blocks the pool holds for reuse.
func (p *Pool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// BlockSize is the length of every block Get returns.
func (p *Pool) BlockSize() int { return p.blockSize }

// Align is the address alignment of every block Get returns.
func (p *Pool) Align() int { return p.align }

// Get returns a block of BlockSize bytes with stale content.
func (p *Pool) Get() []byte {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return b
	}
	p.mu.Unlock()
	return AlignedAlloc(p.blockSize, p.align)
}

// Put returns a block; one of another size or alignment is dropped.
func (p *Pool) Put(b []byte) {
	if len(b) != p.blockSize || cap(b) != p.blockSize || !IsAligned(b, p.align) {
		return
	}
	p.mu.Lock()
	if len(p.free) < p.retain {
		p.free = append(p.free, b)
	}
	p.mu.Unlock()
}
