package metrics

import (
	"bytes"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"segfs/segments"
)

// Detail is how finely the per-partition metrics are labelled: thousands of partitions make
// thousands of series per metric, which a mount can trade for per-topic or per-mount sums.
type Detail string

const (
	// PerPartition labels every per-partition metric with topic and partition (the default).
	PerPartition Detail = "partition"
	// PerTopic drops the partition label: values are summed over each topic's partitions.
	PerTopic Detail = "topic"
	// PerMount drops both labels: values are summed over the whole mount.
	PerMount Detail = "mount"
)

// ParseDetail parses the metrics_detail option.
func ParseDetail(s string) (Detail, error) {
	switch d := Detail(s); d {
	case PerPartition, PerTopic, PerMount:
		return d, nil
	case "":
		return PerPartition, nil
	}
	return "", fmt.Errorf("invalid metrics detail %q: want partition, topic or mount", s)
}

// Build describes the running binary for segfs_build_info.
type Build struct {
	Version, Revision, GoVersion string
}

// Descriptors is one descriptor budget: how many descriptors it counts as open now, and its limit.
type Descriptors struct {
	Budget string // the label value: "process" is RLIMIT_NOFILE against the process's descriptors
	Usage  func() (open, limit int64, err error)
}

// Options configures New.
type Options struct {
	Detail Detail
	Build  Build
	// Descriptors lists the descriptor budgets to export; ProcessDescriptors is the one every mount has.
	// A bounded descriptor cache in segments adds its own entry here.
	Descriptors []Descriptors
}

// Metrics is one mount's registry and the recorders that feed it.
type Metrics struct {
	reg  *prometheus.Registry
	opts Options
	fuse *fuseStats

	appendLatency, syncLatency, flushLatency, sealLatency prometheus.Histogram
	flushedBytes                                          prometheus.Counter
	passthroughOpens, sealedDaemonReads                   prometheus.Counter
}

// New builds a registry with the Go runtime and process collectors and segfs's own recorders. The
// log is added with AddLog once it is open, since its Config needs Observer first.
func New(opts Options) (*Metrics, error) {
	if _, err := ParseDetail(string(opts.Detail)); err != nil {
		return nil, err
	}
	if opts.Detail == "" {
		opts.Detail = PerPartition
	}
	m := &Metrics{reg: prometheus.NewRegistry(), opts: opts}
	hist := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets()})
	}
	m.appendLatency = hist("segfs_append_duration_seconds",
		"Time of one append to a partition, from the call to its return, including waits for memory (max_dirty) and pacing.")
	m.syncLatency = hist("segfs_sync_duration_seconds",
		"Time of one fsync or close of current that had bytes to make durable: pending writes, tail block, fdatasync.")
	m.flushLatency = hist("segfs_flush_duration_seconds",
		"Time of one write of deferred bytes (persist=deferred) to a segment file.")
	m.sealLatency = hist("segfs_seal_duration_seconds",
		"Time to seal one segment: tail block, truncate, fsync of the file and of its directory.")
	m.flushedBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "segfs_flushed_bytes_total",
		Help: "Deferred bytes (persist=deferred) written to segment files."})
	m.passthroughOpens = prometheus.NewCounter(prometheus.CounterOpts{Name: "segfs_sealed_passthrough_opens_total",
		Help: "Opens of sealed segments whose reads the kernel serves from the backing file (FUSE passthrough); those reads never reach segfs."})
	m.sealedDaemonReads = prometheus.NewCounter(prometheus.CounterOpts{Name: "segfs_sealed_daemon_reads_total",
		Help: "READ requests of sealed segments served by the segfs daemon (none while passthrough works)."})
	m.fuse = newFUSEStats(m)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "segfs_build_info", Help: "Always 1; the labels describe the running segfs binary.",
		ConstLabels: prometheus.Labels{"version": opts.Build.Version, "revision": opts.Build.Revision, "goversion": opts.Build.GoVersion},
	})
	info.Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		info,
		m.appendLatency, m.syncLatency, m.flushLatency, m.sealLatency, m.flushedBytes,
		m.passthroughOpens, m.sealedDaemonReads,
		m.fuse,
		newDescriptorCollector(opts.Descriptors),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// latencyBuckets cover 10 µs (a FUSE lookup) to 10 s (a seal stuck behind a busy disk) in steps of
// 2 to 2.5.
func latencyBuckets() []float64 {
	return []float64{1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
}

// AddLog exports the per-partition and per-mount state of l, read at each scrape.
func (m *Metrics) AddLog(l *segments.Log) error {
	if err := m.reg.Register(newLogCollector(l, m.opts.Detail)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Registry is the mount's registry, for the HTTP endpoint.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Exposition renders every metric in the Prometheus text format, as /metrics serves it by default:
// the content of MNT/.stats.
func (m *Metrics) Exposition() ([]byte, error) {
	families, err := m.reg.Gather()
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if eerr := enc.Encode(f); eerr != nil {
			return nil, fmt.Errorf("metrics: encode %s: %w", f.GetName(), eerr)
		}
	}
	if err != nil {
		// A collector failed: the rest is still worth showing, as promhttp does with ContinueOnError.
		return b.Bytes(), fmt.Errorf("metrics: %w", err)
	}
	return b.Bytes(), nil
}

// Observer is what segments.Config.Observer gets.
func (m *Metrics) Observer() segments.Observer { return (*segmentsObserver)(m) }

// segmentsObserver feeds segments' events into the histograms; each call is one lock-free observe.
type segmentsObserver Metrics

func (o *segmentsObserver) Append(d time.Duration) { o.appendLatency.Observe(d.Seconds()) }
func (o *segmentsObserver) Sync(d time.Duration)   { o.syncLatency.Observe(d.Seconds()) }
func (o *segmentsObserver) Seal(d time.Duration)   { o.sealLatency.Observe(d.Seconds()) }
func (o *segmentsObserver) Flush(n int64, d time.Duration) {
	o.flushLatency.Observe(d.Seconds())
	o.flushedBytes.Add(float64(n))
}

// SealedRead counts one READ of a sealed segment served by the daemon (fusefs.Options.SealedRead).
func (m *Metrics) SealedRead() { m.sealedDaemonReads.Inc() }
