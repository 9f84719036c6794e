package segments

import (
	"container/list"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// fdCache is the Log's descriptor budget (Config.MaxOpenFiles). Every descriptor segments opens goes
// through it (budgetedSys wraps the Syscalls seam), so it counts them all: active segment files,
// commit files, directories being fsynced, and the read descriptors of sealed segments, which it
// keeps itself. Those stay open while idle, so a consumer reading segment after segment costs no open
// per read, and are closed, least recently used first, when an open would pass the limit. Readers pin
// a descriptor for one read; only an unpinned one is ever closed, so a read never meets a closed (and
// possibly reused) descriptor number.
//
// The limit is soft: with nothing idle to close, the open goes ahead, and only the process's
// RLIMIT_NOFILE can refuse it. Then every idle descriptor is closed and the open tried once more; if
// that fails too, the operation that needed it fails with EMFILE or ENFILE and nothing else does.
type fdCache struct {
	sys   directio.Syscalls // the configured seam, below the counting
	limit int

	mu    sync.Mutex
	open  int                  // descriptors open through budgetedSys, including the cached ones
	idle  list.List            // *cachedFD, unpinned and open; least recently used at the front
	parts map[*writer]struct{} // partitions holding their files open, which an idle release closes
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

// budgetedSys is the Syscalls seam as segments and its Files use it: opens and closes are counted
// against the budget.
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

// isFDLimit reports whether err is the process (EMFILE) or system (ENFILE) descriptor limit.
func isFDLimit(err error) bool { return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) }

// openFile opens path, counted, after closing idle descriptors if it would pass the limit: cached
// ones first, then idle partitions' files; when the process is out of descriptors it closes every idle
// one and tries once more.
func (c *fdCache) openFile(path string, flags int, perm uint32) (int, error) {
	c.mu.Lock()
	victims := c.evictLocked(c.open + 1 - c.limit)
	c.open++ // counted from now on, so concurrent opens make room for each other
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

// pin returns e's descriptor of path, opening it if needed, and keeps it open until unpin. Callers
// serialize pin against forget (the segment's lock: readers shared, forget exclusive).
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

// adopt hands a descriptor of e's file, opened through budgetedSys, to the cache, idle (the seal
// opened it to fsync the segment, and a consumer usually reads it next). If e has one already (a
// reader opened the file before), that one stays and fd is closed.
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

// over reports whether the descriptors open, plus extra, pass the limit.
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

// releasePartitions releases idle partitions, least recently appended first, until the descriptors
// fit the limit, or, with all (the process is out of descriptors), every one that is idle. Each is
// tried once; a partition busy at that moment stays open. It reports whether any was released.
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
