package metrics

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"segfs/internal/promcheck"
	"segfs/internal/s3test"
	"segfs/segments"
	"segfs/tier"
)

// TestTierMetrics, against a real versitygw: a tiered partition reports the bytes waiting for their
// upload and how long the oldest has waited; failed uploads and failed reads of evicted segments
// count; the read cache's hits and misses come through AddTierCache; the log's descriptor budget
// joins the process's; and per-mount sums agree with the partitions.
func TestTierMetrics(t *testing.T) {
	srv := s3test.Start(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	store, err := tier.Open(context.Background(), tier.Config{
		Bucket: srv.Bucket, Prefix: "m", Endpoint: srv.Endpoint, Timeout: time.Second,
		CacheDir: filepath.Join(t.TempDir(), "cache"), CacheSize: 8 << 20, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() }) // runs after the log's Close, registered later
	m, err := New(Options{Descriptors: []Descriptors{ProcessDescriptors()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddTierCache(store.Reads); err != nil {
		t.Fatal(err)
	}
	perMount, err := New(Options{Detail: PerMount})
	if err != nil {
		t.Fatal(err)
	}
	cfg := segments.DefaultConfig()
	cfg.Logger, cfg.Observer = quietLogger(), m.Observer()
	cfg.SegmentSize, cfg.Remote, cfg.LocalRetentionBytes, cfg.TierRetry = 64<<10, store, 1, 50*time.Millisecond
	l, err := segments.Open(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if _, err := l.CreateTopic("t", 1); err != nil {
		t.Fatal(err)
	}
	for _, mm := range []*Metrics{m, perMount} {
		if err := mm.AddLog(l); err != nil {
			t.Fatal(err)
		}
	}
	tp, _ := l.Topic("t")
	p, _ := tp.Partition(0)
	fill := func(segs int) {
		for i := 0; i < segs; i++ {
			if _, err := p.Append(bytes.Repeat([]byte{'a' + byte(i)}, 64<<10)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	part := map[string]string{"topic": "t", "partition": "0"}
	scrape := func() map[string]*dto.MetricFamily {
		text, err := m.Exposition()
		if err != nil {
			t.Fatal(err)
		}
		promcheck.Check(t, "the exposition", text)
		return promcheck.Families(t, text)
	}
	get := func(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
		t.Helper()
		v, ok := value(fams, name, labels)
		if !ok {
			t.Fatalf("no single series %s%v", name, labels)
		}
		return v
	}
	waitFor := func(what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			fams := scrape()
			if cond(fams) {
				return fams
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	evicted := func() []segments.SegmentInfo {
		var out []segments.SegmentInfo
		for _, s := range p.Segments() {
			if s.Remote {
				out = append(out, s)
			}
		}
		return out
	}

	fill(4)
	fams := waitFor("uploads and evictions", func(f map[string]*dto.MetricFamily) bool {
		return len(evicted()) >= 3 && get(f, "segfs_tier_pending_upload_bytes", part) == 0
	})
	if lag := get(fams, "segfs_tier_upload_lag_seconds", part); lag != 0 {
		t.Errorf("lag %v with nothing waiting", lag)
	}
	if open, limit := get(fams, "segfs_descriptors_open", map[string]string{"budget": "max_open_files"}),
		get(fams, "segfs_descriptors_limit", map[string]string{"budget": "max_open_files"}); open < 1 || limit != float64(segments.DefaultMaxOpenFiles()) {
		t.Errorf("max_open_files budget: %v open of %v; want at least the active segment, of %d", open, limit, segments.DefaultMaxOpenFiles())
	}

	// A read of an evicted segment misses the cache; reading it again hits. Half the segment: a block
	// read to its end leaves memory (the kernel's page cache holds it, see tier's cache.consumed).
	seg := evicted()[0]
	b := make([]byte, seg.Size)
	for range 2 {
		if n, err := p.ReadSegment(seg.Base, b[:seg.Size/2], 0); err != nil || n != int(seg.Size/2) || b[0] != 'a' {
			t.Fatalf("read of evicted segment %d: %d, %v", seg.Base, n, err)
		}
	}
	fams = scrape()
	if hits, misses := get(fams, "segfs_tier_cache_hits_total", nil), get(fams, "segfs_tier_cache_misses_total", nil); hits < 1 || misses < 1 {
		t.Errorf("cache hits %v, misses %v after a cold read and a warm one", hits, misses)
	}

	// The store goes away: new segments wait, uploads fail and are counted, and a read of an evicted
	// segment nobody read fails and is counted.
	srv.Stop()
	fill(3)
	fams = waitFor("failed uploads", func(f map[string]*dto.MetricFamily) bool {
		return get(f, "segfs_tier_upload_errors_total", part) >= 1
	})
	if pending := get(fams, "segfs_tier_pending_upload_bytes", part); pending < 3*64<<10 {
		t.Errorf("%v bytes pending with the store down; want the 3 sealed segments", pending)
	}
	time.Sleep(100 * time.Millisecond)
	fams = scrape()
	if lag := get(fams, "segfs_tier_upload_lag_seconds", part); lag < 0.1 {
		t.Errorf("lag %v s with uploads failing for 100 ms", lag)
	}
	if _, err := p.ReadSegment(evicted()[1].Base, b, 0); err == nil {
		t.Fatal("read of an uncached evicted segment with the store down succeeded")
	}
	fams = scrape()
	if errs := get(fams, "segfs_tier_remote_read_errors_total", part); errs < 1 {
		t.Errorf("remote read errors %v after a failed read", errs)
	}
	// Per mount, the same values without labels.
	text, err := perMount.Exposition()
	if err != nil {
		t.Fatal(err)
	}
	sums := promcheck.Families(t, text)
	if a, b := get(sums, "segfs_tier_remote_read_errors_total", nil), get(fams, "segfs_tier_remote_read_errors_total", part); a != b {
		t.Errorf("per mount: %v remote read errors, the partition %v", a, b)
	}
	if lag := get(sums, "segfs_tier_upload_lag_seconds", nil); lag < 0.1 {
		t.Errorf("per mount lag %v", lag)
	}

	// Back: the uploads catch up without anything else done.
	srv.Restart()
	waitFor("uploads after the store came back", func(f map[string]*dto.MetricFamily) bool {
		return get(f, "segfs_tier_pending_upload_bytes", part) == 0 && get(f, "segfs_tier_upload_lag_seconds", part) == 0
	})
}
