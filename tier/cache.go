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

// memCacheBytes bounds the verified blocks kept in memory, in front of the disk cache: the kernel
// reads a block in many small requests, which should not each read and verify a file.
const memCacheBytes = 64 << 20

// cacheQueue bounds the blocks waiting to be written to the disk cache.
const cacheQueue = 32

// protectedShare is the part of the disk cache that blocks read more than once may hold.
const protectedShare = 0.8

// cache is the read cache: verified blocks in memory (plain LRU) and on disk (segmented LRU, see
// doc.go). Its methods are safe for concurrent use; mu is held for memory operations only, never
// across file I/O.
type cache struct {
	dir      string
	capacity int64
	log      logrus.FieldLogger

	mu        sync.Mutex
	entries   map[string]*list.Element // disk entries by file name
	probation *list.List               // of *diskEntry, most recent first
	protected *list.List
	used      int64
	protBytes int64
	mem       map[blockRef]*list.Element
	memLRU    *list.List // of *memEntry
	memUsed   int64
	stats     CacheStats
	pending   evictedNames // evicted under mu, removed from disk after it
	writes    chan cacheWrite
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
	data []byte
	hits int // reader accesses while in memory
}

// openCache opens the disk cache in dir (created if missing), or a memory-only cache for "". What a
// crash left is rebuilt from the files, oldest first on probation; half-written files are removed,
// and every hit is verified again anyway.
func openCache(dir string, capacity int64, log logrus.FieldLogger) (*cache, error) {
	c := &cache{
		dir: dir, capacity: capacity, log: log, entries: map[string]*list.Element{},
		probation: list.New(), protected: list.New(), mem: map[blockRef]*list.Element{}, memLRU: list.New(),
		writes: make(chan cacheWrite, cacheQueue),
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

// fileName is a block's file: hash of the key (so all blocks of a key share a prefix), hash of the
// ETag (another version of the key is another file), block number.
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

// get returns a cached block. A disk hit is verified against the CRC stored with it; a file that
// fails is dropped. Accesses with count set count toward promotion (see touchLocked).
func (c *cache) get(ref blockRef, count bool) ([]byte, bool) {
	c.mu.Lock()
	name := fileName(ref)
	if el, ok := c.mem[ref]; ok {
		c.memLRU.MoveToFront(el)
		c.stats.MemHits++
		e := el.Value.(*memEntry)
		d, onDisk := c.entries[name]
		switch {
		case onDisk && count:
			c.touchLocked(d)
		case !onDisk && count:
			// A block a reader comes back to earns its place on disk; one a scan passes through once
			// does not (see put).
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
	data, err := c.readFile(name)
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

// readFile reads a block file: the data, then its CRC-32C, big endian.
func (c *cache) readFile(name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		return nil, err
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%d bytes, shorter than its checksum", len(b))
	}
	data, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32c(data) != sum {
		return nil, fmt.Errorf("checksum mismatch")
	}
	return data, nil
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

// put stores a verified block in memory, and on disk if a reader asked for it (foreground). Blocks
// readahead fetched go to disk only once a reader comes back to them (get): a scan, read once, never
// costs disk writes next to the appends, nor pushes anything out of the disk cache.
func (c *cache) put(ref blockRef, data []byte, foreground bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.memPutLocked(ref, data)
	if foreground {
		c.queueLocked(fileName(ref), data, true)
	}
}

// queueLocked hands a block to the disk writer. The write happens behind the read: a GET streaming
// blocks must not wait for writeback. A full queue skips the block (the memory cache has it).
func (c *cache) queueLocked(name string, data []byte, foreground bool) {
	if _, exists := c.entries[name]; c.dir == "" || exists || int64(len(data))+4 > c.capacity {
		return
	}
	select {
	case c.writes <- cacheWrite{name, data, foreground}:
	default:
	}
}

type cacheWrite struct {
	name       string
	data       []byte
	foreground bool
}

// writeLoop writes queued blocks to disk until stop is closed. The Store owns it.
func (c *cache) writeLoop(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case w := <-c.writes:
			c.store(w.name, w.data, w.foreground)
		}
	}
}

// store writes one block file and lists it on probation.
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

// writeFile writes a block file under a temporary name and renames it: a crash leaves the whole file
// or a tmp- file that openCache removes. Nothing is fsynced: the cache holds copies, verified on
// every hit.
func (c *cache) writeFile(name string, data []byte) error {
	f, err := os.CreateTemp(c.dir, "tmp-")
	if os.IsNotExist(err) {
		// Removed under us (an operator emptying the cache): start a new one.
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

// evicted collects names evictLocked took out, removed from disk outside mu.
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

func (c *cache) memPutLocked(ref blockRef, data []byte) {
	if el, ok := c.mem[ref]; ok {
		c.memLRU.MoveToFront(el)
		return
	}
	c.mem[ref] = c.memLRU.PushFront(&memEntry{ref: ref, data: data})
	c.memUsed += int64(len(data))
	for c.memUsed > min(memCacheBytes, max(c.capacity, 2*int64(len(data)))) && c.memLRU.Len() > 1 {
		back := c.memLRU.Back()
		e := back.Value.(*memEntry)
		c.memLRU.Remove(back)
		delete(c.mem, e.ref)
		c.memUsed -= int64(len(e.data))
	}
}

// dropKey forgets every block of key, in memory and on disk.
func (c *cache) dropKey(key string) {
	prefix := keyPrefix(key)
	c.mu.Lock()
	for ref, el := range c.mem {
		if ref.key == key {
			c.memLRU.Remove(el)
			delete(c.mem, ref)
			c.memUsed -= int64(len(el.Value.(*memEntry).data))
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
