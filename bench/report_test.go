package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	agg := 500.0
	lat := func(base float64) *Latency {
		return &Latency{Count: 10, P50: base, P90: 2 * base, P99: 3 * base, P999: 4 * base, P9999: 1668.9,
			Max: 2631.4, StdDev: 0.0042, Curve: []CurvePoint{{0, base}, {90, 2 * base}}}
	}
	return &Report{
		Tool: "segfs bench", Version: "test", StartedAt: time.Unix(0, 0).UTC(),
		Machine: Machine{Hostname: "h", Cores: 2, Kernel: "Linux 6.18", DataFSType: "ext4"},
		Config:  reportConfig(Defaults()),
		Results: []ModeResult{
			{Mode: Mode{Name: "buffered", Kind: KindFUSE}, Producer: &Throughput{MBps: 250}, Consumer: &Throughput{MBps: 250},
				AggregateMBps: &agg, ProducerLatency: lat(1.39), ConsumerLatency: lat(2.09), EndToEnd: lat(3),
				Verification: &Verification{Exact: true, Bytes: 10, ExpectedBytes: 10, Messages: 1}},
			{Mode: Mode{Name: "limit", Kind: KindLimit}, Producer: &Throughput{MBps: 237.6}, ProducerLatency: lat(0.5)},
		},
	}
}

func TestWriteTableIsTheSeedsLayout(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"| Metric | buffered | limit |",
		"| --- | ---: | ---: |",
		"| **Throughput** |  |  |",
		"| Producer | 250 MB/s | 238 MB/s (-5%) |",
		"| Consumer | 250 MB/s | – |",
		"| Aggregate | 500 MB/s | – |",
		"| **Producer latency** |  |  |",
		"| p50 | 1.39 ms | 0.500 ms |",
		"| p90 | 2.78 ms | 1.00 ms |",
		"| p99 | 4.17 ms | 1.50 ms |",
		"| p999 | 5.56 ms | 2.00 ms |",
		"| p9999 | 1,668.90 ms | 1,668.90 ms |",
		"| max | 2,631.40 ms | 2,631.40 ms |",
		"| std dev | 0.004 ms | 0.004 ms |",
		"| **Consumer latency** |  |  |",
		"| p50 | 2.09 ms | – |",
	}
	if len(lines) != 2+4+8+8+4 {
		t.Fatalf("table has %d lines, want 26:\n%s", len(lines), b.String())
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d: %q, want %q", i, lines[i], w)
		}
	}
	if got := lines[len(lines)-4:]; got[0] != "| **End-to-end latency** |  |  |" || got[3] != "| p9999 | 1,668.90 ms | – |" {
		t.Errorf("end-to-end rows: %q", got)
	}
}

func TestWriteJSONHasEveryNumberAndTheConfiguration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(path, sampleReport()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Machine map[string]any `json:"machine"`
		Config  map[string]any `json:"config"`
		Results []struct {
			Mode      Mode           `json:"mode"`
			Producer  map[string]any `json:"producer"`
			Consumer  map[string]any `json:"consumer"`
			ProdLat   map[string]any `json:"producer_latency"`
			Aggregate *float64       `json:"aggregate_mb_per_s"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"hostname", "cores", "kernel", "data_fs_type", "cpu_model", "memory_bytes", "go_version"} {
		if _, ok := doc.Machine[k]; !ok {
			t.Errorf("machine.%s missing", k)
		}
	}
	for _, k := range []string{"producers", "consumers", "message_size", "batch", "fsync", "duration_s", "warmup_s",
		"segment_size", "modes", "batch_bytes"} {
		if _, ok := doc.Config[k]; !ok {
			t.Errorf("config.%s missing", k)
		}
	}
	if len(doc.Results) != 2 || doc.Results[0].Mode.Name != "buffered" || doc.Results[0].Producer["mb_per_s"] != 250.0 {
		t.Fatalf("results: %+v", doc.Results)
	}
	for _, k := range []string{"p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "p99_99_ms", "max_ms", "stddev_ms", "curve"} {
		if _, ok := doc.Results[0].ProdLat[k]; !ok {
			t.Errorf("producer_latency.%s missing", k)
		}
	}
	if doc.Results[1].Consumer != nil || doc.Results[1].Aggregate != nil {
		t.Errorf("limit column has consumer numbers: %+v", doc.Results[1])
	}
}

func TestWritePlotWritesSVG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.svg")
	if err := WritePlot(path, sampleReport()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "buffered producer", "limit producer", "90%"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for in, want := range map[float64]string{0.0123: "0.012 ms", 1.385: "1.39 ms", 1668.9: "1,668.90 ms", 1234567: "1,234,567.00 ms"} {
		if got := formatMs(in); got != want {
			t.Errorf("formatMs(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{2.25: "2.2 MB/s", 250.4: "250 MB/s", 2234.8: "2,235 MB/s"} {
		if got := formatMBps(in); got != want {
			t.Errorf("formatMBps(%v) = %q, want %q", in, got, want)
		}
	}
	for x, want := range map[float64]string{0: "0%", 1: "90%", 2: "99%", 3: "99.9%", 5: "99.999%"} {
		if got := ninesLabel(x); got != want {
			t.Errorf("ninesLabel(%v) = %q, want %q", x, got, want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for in, want := range map[string]int{"every": 1, "never": 0, "10": 10} {
		if got, err := ParseFsync(in); err != nil || got != want {
			t.Errorf("ParseFsync(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := ParseFsync("sometimes"); err == nil {
		t.Error("ParseFsync accepted sometimes")
	}
	if m, err := ParseModes("raw, dsync-deferred", ""); err != nil || len(m) != 2 || m[1].IO != "dsync" || m[1].Persist != "deferred" {
		t.Errorf("ParseModes: %+v, %v", m, err)
	}
	if m, err := ParseModes("raw", "/mnt"); err != nil || len(m) != 2 || m[0].Kind != KindMount {
		t.Errorf("ParseModes with --mount: %+v, %v", m, err)
	}
	for _, bad := range []string{"", "fast", "raw,raw"} {
		if _, err := ParseModes(bad, ""); err == nil {
			t.Errorf("ParseModes(%q) accepted", bad)
		}
	}
	if _, err := ParseModes("direct", "/mnt"); err == nil {
		t.Error("ParseModes accepted a FUSE mode with --mount")
	}
}

func TestParseFio(t *testing.T) {
	// Trimmed from `fio --output-format=json --group_reporting --percentile_list=50:90:99:99.9:99.99` (fio 3.33).
	raw := `{"fio version":"fio-3.33","jobs":[{"jobname":"limit","write":{"io_bytes":40140800,"bw_bytes":1824581818,
	"runtime":22,"clat_ns":{"min":500372,"max":2971066,"mean":959657.3,"stddev":444241.210186,"N":40,
	"percentile":{"50.000000":880640,"90.000000":1335296,"99.000000":2965504,"99.900000":2965504,"99.990000":2965504}}}}]}`
	res, err := parseFio([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	l := res.ProducerLatency
	if res.Producer.MBps != 1824.581818 || l.P50 != 0.88064 || l.P9999 != 2.965504 || l.Max != 2.971066 || l.Count != 40 || len(l.Curve) != 5 {
		t.Fatalf("parsed %+v %+v", res.Producer, l)
	}
	if _, err := parseFio([]byte(`{"jobs":[]}`)); err == nil {
		t.Error("parseFio accepted no jobs")
	}
}
