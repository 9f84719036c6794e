package tier

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
)

// memCacheBytes: the kernel reads a block in many small requests, which should not each read a file.
const memCacheBytes = 64 << 20

const cacheQueue = 32 // blocks waiting for the disk writer

// freeBlockBytes is one GET's worth: a scan recycles its buffers one for one.
const freeBlockBytes = runBytes

// protectedShare is the part of the disk cache that blocks read more than once may hold.
const protectedShare = 0.8

// cache holds verified blocks in memory (LRU) and on disk (segmented LRU). mu is never held across
// file I/O.
type cache struct {
	dir      string
	capacity int64
	log      logrus.FieldLogger

	mu        sync.Mutex
	entries   map[string]*list.Element // by file name
	probation *list.List               // of *diskEntry, most recent first
	protected *list.List
	used      int64
	protBytes int64
	mem       map[blockRef]*list.Element
	memLRU    *list.List // of *memEntry
	memUsed   int64
	stats     CacheStats
	pending   evictedNames
	writes    chan cacheWrite
	pool      *blockPool
}

// CacheStats counts the cache's work since the Store opened.
type CacheStats struct {
	MemHits, DiskHits, Misses, Evictions, Dropped int64
	Used, Capacity                                int64
}

type diskEntry struct {
	name      string
	size      int64
	protected bool
	hits      int
}

type memEntry struct {
	ref  blockRef
	data *blockBuf
	hits int // reader accesses while in memory
	read int // bytes sequential readers copied out
}

// openCache opens the disk cache in dir, or a memory-only one for "". Files a crash left go on
// probation, tmp- files are removed.
func openCache(dir string, capacity int64, log logrus.FieldLogger) (*cache, error) {
	c := &cache{
		dir: dir, capacity: capacity, log: log, entries: map[string]*list.Element{},
		probation: list.New(), protected: list.New(), mem: map[blockRef]*list.Element{}, memLRU: list.New(),
		writes: make(chan cacheWrite, cacheQueue), pool: &blockPool{maxFree: freeBlockBytes},
	}
	if dir == "" {
		return c, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tier: cache: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("tier: cache: %w", err)
	}
	type found struct {
		name  string
		size  int64
		mtime int64
	}
	var fs []found
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			continue
		}
		if strings.HasPrefix(de.Name(), "tmp-") || !fi.Mode().IsRegular() {
			_ = os.RemoveAll(filepath.Join(dir, de.Name()))
			continue
		}
		fs = append(fs, found{de.Name(), fi.Size(), fi.ModTime().UnixNano()})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].mtime > fs[j].mtime })
	for _, f := range fs {
		c.entries[f.name] = c.probation.PushBack(&diskEntry{name: f.name, size: f.size})
		c.used += f.size
	}
	c.evictLocked()
	c.removeEvicted()
	return c, nil
}

// fileName: key hash (a key's blocks share a prefix), ETag hash (a new version is a new file), block.
func fileName(ref blockRef) string {
	k := sha256.Sum256([]byte(ref.key))
	e := sha256.Sum256([]byte(ref.etag + "\x00" + strconv.FormatInt(ref.size, 10)))
	return hex.EncodeToString(k[:12]) + "-" + hex.EncodeToString(e[:4]) + "-" + strconv.FormatInt(ref.k, 10)
}

func keyPrefix(key string) string {
	k := sha256.Sum256([]byte(key))
	return hex.EncodeToString(k[:12]) + "-"
}

func (c *cache) has(ref blockRef) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.mem[ref]; ok {
		return true
	}
	_, ok := c.entries[fileName(ref)]
	return ok
}

// get returns a cached block, with a reference the caller releases. A disk hit is verified; a file
// that fails is dropped. count says the access counts toward promotion.
func (c *cache) get(ref blockRef, count bool) (*blockBuf, bool) {
	c.mu.Lock()
	name := fileName(ref)
	if el, ok := c.mem[ref]; ok {
		c.memLRU.MoveToFront(el)
		c.stats.MemHits++
		e := el.Value.(*memEntry)
		e.data.acquire()
		d, onDisk := c.entries[name]
		switch {
		case onDisk && count:
			c.touchLocked(d)
		case !onDisk && count:
			// A block a reader comes back to earns its place on disk (see put).
			if e.hits++; e.hits >= 2 {
				c.queueLocked(name, e.data, true)
			}
		}
		c.mu.Unlock()
		return e.data, true
	}
	_, onDisk := c.entries[name]
	c.mu.Unlock()
	if !onDisk {
		c.count(func(s *CacheStats) { s.Misses++ })
		return nil, false
	}
	data, err := c.readFile(name, BlockSize(ref.size))
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[name]
	if os.IsNotExist(err) {
		c.stats.Misses++ // evicted meanwhile
		return nil, false
	}
	if err != nil {
		c.stats.Dropped++
		if ok {
			c.removeLocked(el)
		}
		c.log.WithError(err).WithField("file", name).Warn("tier: cache file dropped")
		_ = os.Remove(filepath.Join(c.dir, name))
		return nil, false
	}
	c.stats.DiskHits++
	if ok && count {
		c.touchLocked(el)
	}
	c.memPutLocked(ref, data)
	return data, true
}

func (c *cache) count(f func(*CacheStats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

func (c *cache) readFile(name string, bs int64) (*blockBuf, error) {
	f, err := os.Open(filepath.Join(c.dir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := fi.Size() - 4
	if n < 0 || n > bs {
		return nil, fmt.Errorf("%d bytes, not a block of at most %d and its checksum", fi.Size(), bs)
	}
	d := c.pool.get(bs, n)
	var sum [4]byte
	if _, err = f.ReadAt(d.b, 0); err == nil {
		_, err = f.ReadAt(sum[:], n)
	}
	if err == nil && crc32c(d.b) != binary.BigEndian.Uint32(sum[:]) {
		err = fmt.Errorf("checksum mismatch")
	}
	if err != nil {
		d.release()
		return nil, err
	}
	return d, nil
}

// touchLocked records a foreground hit: a block on probation read again is protected.
func (c *cache) touchLocked(el *list.Element) {
	e := el.Value.(*diskEntry)
	e.hits++
	if e.protected {
		c.protected.MoveToFront(el)
		return
	}
	if e.hits < 2 {
		c.probation.MoveToFront(el)
		return
	}
	c.probation.Remove(el)
	e.protected = true
	c.entries[e.name] = c.protected.PushFront(e)
	c.protBytes += e.size
	for float64(c.protBytes) > protectedShare*float64(c.capacity) && c.protected.Len() > 1 {
		back := c.protected.Back()
		d := back.Value.(*diskEntry)
		c.protected.Remove(back)
		d.protected = false
		c.protBytes -= d.size
		c.entries[d.name] = c.probation.PushFront(d)
	}
}

// put stores a block in memory, and on disk only if a reader asked for it (see doc.go).
func (c *cache) put(ref blockRef, data *blockBuf, foreground bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.memPutLocked(ref, data)
	if foreground {
		c.queueLocked(fileName(ref), data, true)
	}
}

// queueLocked hands a block to the disk writer, so a streaming GET never waits for writeback. A
// full queue skips the block.
func (c *cache) queueLocked(name string, data *blockBuf, foreground bool) {
	if _, exists := c.entries[name]; c.dir == "" || exists || int64(len(data.b))+4 > c.capacity {
		return
	}
	data.acquire()
	select {
	case c.writes <- cacheWrite{name, data, foreground}:
	default:
		data.release()
	}
}

type cacheWrite struct {
	name       string
	data       *blockBuf
	foreground bool
}

// writeLoop writes queued blocks until stop is closed.
func (c *cache) writeLoop(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case w := <-c.writes:
			c.store(w.name, w.data.b, w.foreground)
			w.data.release()
		}
	}
}

func (c *cache) store(name string, data []byte, foreground bool) {
	if err := c.writeFile(name, data); err != nil {
		c.log.WithError(err).Warn("tier: cache write failed; reads go on from the store")
		return
	}
	c.mu.Lock()
	if _, ok := c.entries[name]; !ok {
		e := &diskEntry{name: name, size: int64(len(data)) + 4}
		if foreground {
			e.hits = 1
		}
		c.entries[name] = c.probation.PushFront(e)
		c.used += e.size
		c.evictLocked()
	}
	c.mu.Unlock()
	c.removeEvicted()
}

// writeFile renames a tmp- file into place, so a crash leaves a whole file or one openCache removes.
// No fsync: the cache holds copies, verified on every hit.
func (c *cache) writeFile(name string, data []byte) error {
	f, err := os.CreateTemp(c.dir, "tmp-")
	if os.IsNotExist(err) {
		// An operator emptied the cache: start a new one.
		if err = os.MkdirAll(c.dir, 0o755); err == nil {
			f, err = os.CreateTemp(c.dir, "tmp-")
		}
	}
	if err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32c(data))
	_, err = f.Write(data)
	if err == nil {
		_, err = f.Write(sum[:])
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(c.dir, name))
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// evictedNames are removed from disk outside mu.
type evictedNames struct{ names []string }

func (c *cache) evictLocked() {
	for c.used > c.capacity {
		l := c.probation
		if l.Len() == 0 {
			l = c.protected
		}
		back := l.Back()
		if back == nil {
			return
		}
		c.removeLocked(back)
		c.stats.Evictions++
		c.pending.names = append(c.pending.names, back.Value.(*diskEntry).name)
	}
}

func (c *cache) removeLocked(el *list.Element) {
	e := el.Value.(*diskEntry)
	if e.protected {
		c.protected.Remove(el)
		c.protBytes -= e.size
	} else {
		c.probation.Remove(el)
	}
	delete(c.entries, e.name)
	c.used -= e.size
}

func (c *cache) removeEvicted() {
	c.mu.Lock()
	names := c.pending.names
	c.pending.names = nil
	c.mu.Unlock()
	for _, n := range names {
		_ = os.Remove(filepath.Join(c.dir, n))
	}
}

func (c *cache) memPutLocked(ref blockRef, data *blockBuf) {
	if el, ok := c.mem[ref]; ok {
		c.memLRU.MoveToFront(el)
		return
	}
	data.acquire()
	c.mem[ref] = c.memLRU.PushFront(&memEntry{ref: ref, data: data})
	c.memUsed += int64(cap(data.b))
	for c.memUsed > min(memCacheBytes, max(c.capacity, 2*int64(cap(data.b)))) && c.memLRU.Len() > 1 {
		back := c.memLRU.Back()
		e := back.Value.(*memEntry)
		c.memLRU.Remove(back)
		delete(c.mem, e.ref)
		c.memUsed -= int64(cap(e.data.b))
		e.data.release()
	}
}

// consumed drops a block from memory once scans copied all its bytes, unless a reader came back to
// it; counting bytes keeps it for the kernel's out-of-order reads.
func (c *cache) consumed(ref blockRef, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.mem[ref]
	if !ok {
		return
	}
	e := el.Value.(*memEntry)
	if e.read += n; e.read < len(e.data.b) || e.hits >= 2 {
		return
	}
	c.memLRU.Remove(el)
	delete(c.mem, ref)
	c.memUsed -= int64(cap(e.data.b))
	e.data.release()
}

func (c *cache) dropKey(key string) {
	prefix := keyPrefix(key)
	c.mu.Lock()
	for ref, el := range c.mem {
		if ref.key == key {
			e := el.Value.(*memEntry)
			c.memLRU.Remove(el)
			delete(c.mem, ref)
			c.memUsed -= int64(cap(e.data.b))
			e.data.release()
		}
	}
	for name, el := range c.entries {
		if strings.HasPrefix(name, prefix) {
			c.removeLocked(el)
			c.pending.names = append(c.pending.names, name)
		}
	}
	c.mu.Unlock()
	c.removeEvicted()
}

func (c *cache) snapshot() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Used, s.Capacity = c.used, c.capacity
	return s
}

// CacheStats reports the read cache's counters.
func (s *Store) CacheStats() CacheStats { return s.cache.snapshot() }
