package segments

import (
	"container/list"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// fdCache is the descriptor budget (Config.MaxOpenFiles) and the cache of sealed segments' read
// descriptors. Past the limit it closes unpinned ones, least recently used, then idle partitions.
// The limit is soft: at RLIMIT_NOFILE everything idle closes and the open is retried.
type fdCache struct {
	sys   directio.Syscalls
	limit int

	mu    sync.Mutex
	open  int       // the cached ones included
	idle  list.List // least recently used first
	parts map[*writer]struct{}
}

// cachedFD is a sealed segment's read descriptor, guarded by fdCache.mu; zero is closed.
type cachedFD struct {
	fd     int
	isOpen bool
	pins   int
	elem   *list.Element
}

func newFDCache(sys directio.Syscalls, limit int) *fdCache {
	return &fdCache{sys: sys, limit: limit}
}

type budgetedSys struct {
	directio.Syscalls
	c *fdCache
}

func (s budgetedSys) Open(path string, flags int, perm uint32) (int, error) {
	return s.c.openFile(path, flags, perm)
}

func (s budgetedSys) Close(fd int) error {
	s.c.mu.Lock()
	s.c.open--
	s.c.mu.Unlock()
	return s.Syscalls.Close(fd)
}

func isFDLimit(err error) bool { return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) }

func (c *fdCache) openFile(path string, flags int, perm uint32) (int, error) {
	c.mu.Lock()
	victims := c.evictLocked(c.open + 1 - c.limit)
	c.open++ // now, so that concurrent opens make room for each other
	c.mu.Unlock()
	c.closeAll(victims)

	if c.over(0) {
		c.releasePartitions(false)
	}
	fd, err := c.sys.Open(path, flags, perm)
	if isFDLimit(err) {
		c.mu.Lock()
		victims = c.evictLocked(c.idle.Len())
		c.mu.Unlock()
		c.closeAll(victims)
		if c.releasePartitions(true) || len(victims) > 0 {
			fd, err = c.sys.Open(path, flags, perm)
		}
	}
	if err != nil {
		c.mu.Lock()
		c.open--
		c.mu.Unlock()
	}
	return fd, err
}

// pin keeps e's descriptor open until unpin; the segment's lock orders it with forget.
func (c *fdCache) pin(e *cachedFD, path string) (int, error) {
	c.mu.Lock()
	if e.isOpen {
		c.useLocked(e)
		c.mu.Unlock()
		return e.fd, nil
	}
	c.mu.Unlock()
	fd, err := c.openFile(path, unix.O_RDONLY, 0)
	if err != nil {
		return -1, fmt.Errorf("open segment %s: %w", path, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.isOpen {
		c.open--
		_ = c.sys.Close(fd)
		c.useLocked(e)
		return e.fd, nil
	}
	e.fd, e.isOpen = fd, true
	c.useLocked(e)
	return fd, nil
}

func (c *fdCache) useLocked(e *cachedFD) {
	e.pins++
	if e.elem != nil {
		c.idle.Remove(e.elem)
		e.elem = nil
	}
}

func (c *fdCache) unpin(e *cachedFD) {
	c.mu.Lock()
	e.pins--
	if e.pins > 0 || !e.isOpen {
		c.mu.Unlock()
		return
	}
	if c.open > c.limit {
		fd := e.fd
		e.isOpen = false
		c.open--
		c.mu.Unlock()
		_ = c.sys.Close(fd)
		return
	}
	e.elem = c.idle.PushBack(e)
	c.mu.Unlock()
}

// adopt caches fd from a seal: a consumer usually reads the segment next.
func (c *fdCache) adopt(e *cachedFD, fd int) {
	c.mu.Lock()
	if e.isOpen {
		c.open--
		c.mu.Unlock()
		_ = c.sys.Close(fd)
		return
	}
	e.fd, e.isOpen = fd, true
	e.elem = c.idle.PushBack(e)
	victims := c.evictLocked(c.open - c.limit)
	c.mu.Unlock()
	c.closeAll(victims)
}

// forget: the caller holds the segment's lock exclusively.
func (c *fdCache) forget(e *cachedFD) error {
	c.mu.Lock()
	if !e.isOpen {
		c.mu.Unlock()
		return nil
	}
	if e.elem != nil {
		c.idle.Remove(e.elem)
		e.elem = nil
	}
	fd := e.fd
	e.isOpen = false
	c.open--
	c.mu.Unlock()
	return c.sys.Close(fd)
}

func (c *fdCache) evictLocked(n int) []int {
	var fds []int
	for ; n > 0 && c.idle.Len() > 0; n-- {
		e := c.idle.Remove(c.idle.Front()).(*cachedFD)
		e.elem = nil
		e.isOpen = false
		c.open--
		fds = append(fds, e.fd)
	}
	return fds
}

func (c *fdCache) closeAll(fds []int) {
	for _, fd := range fds {
		_ = c.sys.Close(fd)
	}
}

func (c *fdCache) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

func (c *fdCache) over(extra int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open+extra > c.limit
}

func (c *fdCache) register(w *writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parts == nil {
		c.parts = make(map[*writer]struct{})
	}
	c.parts[w] = struct{}{}
}

func (c *fdCache) unregister(w *writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.parts, w)
}

// releasePartitions releases idle partitions, least recently appended first, until the
// descriptors fit, or all of them with all.
func (c *fdCache) releasePartitions(all bool) bool {
	tried := make(map[*writer]bool)
	released := false
	for all || c.over(0) {
		c.mu.Lock()
		var victim *writer
		for w := range c.parts {
			if !tried[w] && (victim == nil || w.idle.lastActive.Load() < victim.idle.lastActive.Load()) {
				victim = w
			}
		}
		c.mu.Unlock()
		if victim == nil {
			break
		}
		tried[victim] = true
		if done, err := victim.tryRelease(); done && err == nil {
			released = true
		}
	}
	return released
}
