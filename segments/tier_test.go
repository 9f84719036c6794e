package segments

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"segfs/directio"
	"segfs/internal/s3test"
	"segfs/tier"
)

// tiered starts versitygw and returns a Config whose Remote is a tier.Store on it.
func tiered(t *testing.T, srv *s3test.Server, mod func(*Config)) Config {
	t.Helper()
	if srv == nil {
		srv = s3test.Start(t)
	}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	st, err := tier.Open(context.Background(), tier.Config{
		Bucket: srv.Bucket, Prefix: "p", Endpoint: srv.Endpoint, Timeout: 2 * time.Second,
		CacheDir: filepath.Join(t.TempDir(), "cache"), CacheSize: 32 << 20, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.SegmentSize = 256 << 10
	cfg.Remote = st
	cfg.TierRetry = 50 * time.Millisecond
	cfg.tierInterval = 20 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func segState(p *Partition) (uploaded, remote, sealed int) {
	for _, s := range p.Segments() {
		if s.Sealed {
			sealed++
		}
		if s.Uploaded {
			uploaded++
		}
		if s.Remote {
			remote++
		}
	}
	return
}

func readPartition(t *testing.T, p *Partition) []byte {
	t.Helper()
	b := make([]byte, p.Size())
	n, err := p.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	return b[:n]
}

func storedKeys(t *testing.T, srv *s3test.Server) []string {
	t.Helper()
	m, err := srv.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Sealed segments are uploaded in log order and verified; beyond the local retention their local
// files go, and the partition still reads byte for byte, across local and remote segments, also after
// reopening.
func TestTierUploadEvictRead(t *testing.T) {
	srv := s3test.Start(t)
	cfg := tiered(t, srv, func(c *Config) { c.LocalRetentionBytes = 600 << 10 })
	dir := t.TempDir()
	l := openLog(t, dir, cfg)
	p := mustPartition(t, l, "t", 0)
	for i := 0; i < 40; i++ {
		appendPattern(t, p, 1, 50<<10)
	}
	want := pattern(1, 0, 40*50<<10)
	waitFor(t, "uploads and evictions", func() bool {
		up, remote, sealed := segState(p)
		return up == sealed && remote >= sealed-3
	})
	if got := readPartition(t, p); !bytes.Equal(got, want) {
		t.Fatalf("partition reads %d bytes, differing at %d", len(got), firstDiff(got, want))
	}
	segs := p.Segments()
	for _, s := range segs {
		_, err := os.Stat(s.Path)
		if s.Remote != os.IsNotExist(err) {
			t.Fatalf("segment %d: Remote %v, local file: %v", s.Base, s.Remote, err)
		}
		if s.Remote && !s.Uploaded {
			t.Fatalf("segment %d evicted without a verified upload", s.Base)
		}
	}
	keys := storedKeys(t, srv)
	if len(keys) != len(segs)-1 || keys[0] != "p/t/0/00000000000000000000.log" {
		t.Fatalf("bucket: %v; want the %d sealed segments", keys, len(segs)-1)
	}
	var man manifest
	b, err := os.ReadFile(filepath.Join(p.Dir(), manifestName))
	if err != nil || json.Unmarshal(b, &man) != nil || len(man.Segments) != len(segs)-1 {
		t.Fatalf("manifest %s: %v", b, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, cfg)
	p2 := mustPartition(t, l2, "t", 0)
	if got := readPartition(t, p2); !bytes.Equal(got, want) {
		t.Fatalf("after reopening, the partition reads %d bytes, differing at %d", len(got), firstDiff(got, want))
	}
	if a, b := segInfoString(p2.Segments()), segInfoString(segs); a != b {
		t.Fatalf("segments after reopening:\n%s\nbefore:\n%s", a, b)
	}
}

// A fresh data directory opened read-only on the bucket lists and reads the whole log.
func TestTierFreshReadOnly(t *testing.T) {
	srv := s3test.Start(t)
	cfg := tiered(t, srv, nil)
	l := openLog(t, t.TempDir(), cfg)
	if _, err := l.CreateTopic("orders", 2); err != nil {
		t.Fatal(err)
	}
	for id := 0; id < 2; id++ {
		p := mustPartition(t, l, "orders", id)
		for i := 0; i < 12; i++ {
			appendPattern(t, p, uint64(id), 40<<10)
		}
	}
	for _, id := range []int{0, 1} {
		p := mustPartition(t, l, "orders", id)
		waitFor(t, "uploads", func() bool { up, _, sealed := segState(p); return up == sealed })
	}
	cfg2 := tiered(t, srv, func(c *Config) { c.RemoteReadOnly = true })
	l2 := openLog(t, t.TempDir(), cfg2)
	if got := l2.Topics(); len(got) != 1 || got[0] != "orders" {
		t.Fatalf("topics %v", got)
	}
	for _, id := range []int{0, 1} {
		p, p2 := mustPartition(t, l, "orders", id), mustPartition(t, l2, "orders", id)
		segs := p.Segments()
		sealedEnd := segs[len(segs)-1].Base
		want := pattern(uint64(id), 0, int(sealedEnd))
		if got := readPartition(t, p2); !bytes.Equal(got, want) {
			t.Fatalf("partition %d reads %d bytes, want the %d sealed ones", id, len(got), sealedEnd)
		}
		for i, s := range p2.Segments()[:len(segs)-1] {
			if !s.Remote || s.Size != segs[i].Size || s.Base != segs[i].Base {
				t.Fatalf("partition %d segment %d: %+v, want remote like %+v", id, i, s, segs[i])
			}
		}
	}
}

// Retention of the whole log deletes the remote objects too.
func TestTierRetentionDeletesObjects(t *testing.T) {
	srv := s3test.Start(t)
	cfg := tiered(t, srv, func(c *Config) {
		c.LocalRetentionBytes = 300 << 10
		c.RetentionBytes = 700 << 10
		c.retentionInterval = 20 * time.Millisecond
	})
	l := openLog(t, t.TempDir(), cfg)
	p := mustPartition(t, l, "t", 0)
	for i := 0; i < 40; i++ {
		appendPattern(t, p, 1, 50<<10)
	}
	waitFor(t, "retention to reach the store", func() bool {
		segs := p.Segments()
		keys := storedKeys(t, srv)
		return len(keys) == len(segs)-1 && segs[0].Base > 0 && keys[0] == fmt.Sprintf("p/t/0/%020d.log", segs[0].Base)
	})
	segs := p.Segments()
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	if total-segs[0].Size >= cfg.RetentionBytes {
		t.Fatalf("partition holds %d bytes; retention is %d", total, cfg.RetentionBytes)
	}
	if n, err := p.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrNotExist) || n != 0 {
		t.Fatalf("read of a purged offset: %d, %v", n, err)
	}
	b := make([]byte, p.Size()-segs[0].Base)
	if n, err := p.ReadAt(b, segs[0].Base); n != len(b) || (err != nil && err != io.EOF) {
		t.Fatalf("read of the kept log: %d, %v", n, err)
	}
	checkPattern(t, "kept log", 1, segs[0].Base, b)
}

// With the store down, appends and rotations go on and nothing is evicted; once it is back, uploads
// resume by themselves.
func TestTierStoreDownAndBack(t *testing.T) {
	srv := s3test.Start(t)
	cfg := tiered(t, srv, func(c *Config) { c.LocalRetentionBytes = 300 << 10 })
	l := openLog(t, t.TempDir(), cfg)
	p := mustPartition(t, l, "t", 0)
	srv.Stop()
	for i := 0; i < 30; i++ {
		appendPattern(t, p, 3, 50<<10)
	}
	time.Sleep(300 * time.Millisecond)
	if up, remote, sealed := segState(p); up != 0 || remote != 0 || sealed < 4 {
		t.Fatalf("store down: %d uploaded, %d evicted of %d sealed", up, remote, sealed)
	}
	if got := readPartition(t, p); !bytes.Equal(got, pattern(3, 0, 30*50<<10)) {
		t.Fatal("local reads differ while the store is down")
	}
	srv.Restart()
	waitFor(t, "uploads after the store came back", func() bool {
		up, remote, sealed := segState(p)
		return up == sealed && remote > 0
	})
	if got := readPartition(t, p); !bytes.Equal(got, pattern(3, 0, 30*50<<10)) {
		t.Fatal("reads differ after the store came back")
	}
}

// Deleting a partition deletes its objects; a partition made again under the name starts clean.
func TestTierDeletePartition(t *testing.T) {
	srv := s3test.Start(t)
	cfg := tiered(t, srv, nil)
	l := openLog(t, t.TempDir(), cfg)
	p := mustPartition(t, l, "t", 0)
	for i := 0; i < 12; i++ {
		appendPattern(t, p, 4, 50<<10)
	}
	waitFor(t, "uploads", func() bool { up, _, sealed := segState(p); return up == sealed && up > 0 })
	if err := l.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the objects to go", func() bool { return len(storedKeys(t, srv)) == 0 })
}

// Retries back off exponentially from TierRetry to five minutes, each delay jittered over its upper
// half so that partitions that failed together do not retry together.
func TestTierBackoff(t *testing.T) {
	l := &Log{cfg: Config{TierRetry: time.Second}}
	seen := map[time.Duration]bool{}
	for n := 1; n <= 30; n++ {
		d := time.Second << min(n-1, 20)
		if d > maxTierRetry {
			d = maxTierRetry
		}
		for i := 0; i < 20; i++ {
			got := l.backoff(n)
			if got < d/2 || got > d {
				t.Fatalf("retry %d: %v, want within [%v, %v]", n, got, d/2, d)
			}
			seen[got] = true
		}
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct delays in 600: no jitter", len(seen))
	}
}
