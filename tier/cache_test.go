package tier

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func block(k int64, size int) (blockRef, []byte) {
	data := bytes.Repeat([]byte{byte(k)}, size)
	return blockRef{key: "p/t/0/x.log", etag: "e", size: 1 << 30, k: k}, data
}

// A crash leaves half-written temp files and possibly torn blocks: the cache comes back with what is
// whole, removes temp files, and drops a damaged block on its first hit instead of serving it.
func TestCacheAfterCrash(t *testing.T) {
	dir := t.TempDir()
	c, err := openCache(dir, 1<<20, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for k := int64(0); k < 4; k++ {
		ref, data := block(k, 1000)
		putSync(c, ref, data, true)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp-123"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	ref2, _ := block(2, 1000)
	torn := filepath.Join(dir, fileName(ref2))
	if err := os.Truncate(torn, 600); err != nil {
		t.Fatal(err)
	}
	c, err = openCache(dir, 1<<20, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp-123")); !os.IsNotExist(err) {
		t.Errorf("temp file survived reopening: %v", err)
	}
	for k := int64(0); k < 4; k++ {
		ref, data := block(k, 1000)
		got, ok := c.get(ref, true)
		if k == 2 {
			if ok {
				t.Fatalf("torn block served: %d bytes", len(got))
			}
			continue
		}
		if !ok || !bytes.Equal(got, data) {
			t.Fatalf("block %d after reopening: ok %v", k, ok)
		}
	}
	if st := c.snapshot(); st.Dropped != 1 || st.DiskHits != 3 {
		t.Fatalf("stats %+v; want 3 disk hits, 1 dropped", st)
	}
}

// Blocks read twice are protected: a scan of more than the whole cache, read once, passes through
// probation and leaves them in place. A plain LRU would have lost every one of them.
func TestCacheScanResistance(t *testing.T) {
	const blk = 1000
	c, err := openCache(t.TempDir(), 100*(blk+4), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	hot := func(k int64) blockRef {
		return blockRef{key: "hot", etag: "e", size: 1 << 30, k: k}
	}
	for round := 0; round < 2; round++ {
		for k := int64(0); k < 30; k++ {
			if _, ok := c.get(hot(k), true); !ok {
				putSync(c, hot(k), make([]byte, blk), true)
			}
		}
	}
	for k := int64(0); k < 500; k++ {
		ref := blockRef{key: fmt.Sprintf("scan-%d", k/50), etag: "e", size: 1 << 30, k: k}
		putSync(c, ref, make([]byte, blk), false) // readahead
		c.get(ref, true)                          // the reader consumes it once
	}
	c.mu.Lock()
	clear(c.mem) // look at the disk cache alone
	c.memLRU.Init()
	c.memUsed = 0
	c.mu.Unlock()
	kept := 0
	for k := int64(0); k < 30; k++ {
		if _, ok := c.get(hot(k), true); ok {
			kept++
		}
	}
	if kept != 30 {
		t.Fatalf("%d of 30 hot blocks survived a scan of 500 blocks", kept)
	}
	if st := c.snapshot(); st.Used > st.Capacity {
		t.Fatalf("cache holds %d bytes, capacity %d", st.Used, st.Capacity)
	}
}

// putSync is put with the queued disk write done before it returns.
func putSync(c *cache, ref blockRef, data []byte, foreground bool) {
	c.put(ref, data, foreground)
	for len(c.writes) > 0 {
		w := <-c.writes
		c.store(w.name, w.data, w.foreground)
	}
}
