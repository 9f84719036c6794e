package segments

import (
	"container/list"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// fdCache keeps the read descriptors of sealed segments within Config.MaxOpenFiles: a descriptor is
// opened on first use, stays open while idle so that a consumer reading segment after segment costs
// no open per read, and is closed, least recently used first, when another one needs its place.
// Readers pin a descriptor for one read; only an unpinned one is ever closed, so a read never meets a
// closed (and possibly reused) descriptor number.
//
// The limit is soft: when every descriptor is pinned, one more is opened anyway, and only the
// process's RLIMIT_NOFILE can refuse it. Then every idle descriptor is closed and the open tried once
// more; if that fails too, the read fails with EMFILE or ENFILE and nothing else does.
type fdCache struct {
	sys   directio.Syscalls
	limit int

	mu   sync.Mutex
	open int       // descriptors held, pinned or idle
	idle list.List // *cachedFD, unpinned and open; least recently used at the front
}

// cachedFD is one sealed segment's read descriptor as the cache holds it. The zero value is closed.
// Its fields are guarded by fdCache.mu.
type cachedFD struct {
	fd     int
	isOpen bool
	pins   int
	elem   *list.Element // in fdCache.idle while open and unpinned
}

func newFDCache(sys directio.Syscalls, limit int) *fdCache {
	return &fdCache{sys: sys, limit: limit}
}

// isFDLimit reports whether err is the process (EMFILE) or system (ENFILE) descriptor limit.
func isFDLimit(err error) bool { return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) }

// pin returns e's descriptor of path, opening it if needed, and keeps it open until unpin. Callers
// serialize pin against forget (the segment's lock: readers shared, forget exclusive).
func (c *fdCache) pin(e *cachedFD, path string) (int, error) {
	c.mu.Lock()
	if e.isOpen {
		c.useLocked(e)
		c.mu.Unlock()
		return e.fd, nil
	}
	victims := c.evictLocked(c.open + 1 - c.limit)
	c.open++ // counted from now on, so concurrent opens make room for each other
	c.mu.Unlock()
	c.closeAll(victims)

	fd, err := c.sys.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if isFDLimit(err) {
		// The process is out of descriptors whatever the limit said: give back every idle one.
		c.mu.Lock()
		victims = c.evictLocked(c.idle.Len())
		c.mu.Unlock()
		if len(victims) > 0 {
			c.closeAll(victims)
			fd, err = c.sys.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.open--
		return -1, fmt.Errorf("open segment %s: %w", path, err)
	}
	if e.isOpen {
		// Another reader opened it meanwhile; keep one.
		c.open--
		_ = c.sys.Close(fd)
		c.useLocked(e)
		return e.fd, nil
	}
	e.fd, e.isOpen = fd, true
	c.useLocked(e)
	return fd, nil
}

// useLocked pins an open entry.
func (c *fdCache) useLocked(e *cachedFD) {
	e.pins++
	if e.elem != nil {
		c.idle.Remove(e.elem)
		e.elem = nil
	}
}

// unpin ends one use of e's descriptor. The last user leaves it idle, or closes it when the cache is
// over its limit (every other descriptor was pinned when this one was opened).
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

// adopt hands an open descriptor of e's file to the cache, idle (the seal opened it to fsync the
// segment, and a consumer usually reads it next). e must be closed.
func (c *fdCache) adopt(e *cachedFD, fd int) {
	c.mu.Lock()
	victims := c.evictLocked(c.open + 1 - c.limit)
	c.open++
	e.fd, e.isOpen = fd, true
	e.elem = c.idle.PushBack(e)
	c.mu.Unlock()
	c.closeAll(victims)
}

// forget closes e's descriptor for good, if open. The caller made sure no read holds it (the
// segment's exclusive lock) and that none will pin it again.
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

// evictLocked takes up to n idle descriptors, least recently used first, out of the cache and returns
// them for the caller to close once it released mu.
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

// held is the number of descriptors the cache holds open.
func (c *fdCache) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}
