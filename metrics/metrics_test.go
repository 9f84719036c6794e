package metrics

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"segfs/internal/promcheck"
	"segfs/segments"
)

// TestMain fails the package's tests if the HTTP endpoint's goroutines outlive Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.Out = io.Discard
	return l
}

// openLog opens a log in a temp dir with m observing it and exported by it.
func openLog(t *testing.T, m *Metrics, topics map[string]int) *segments.Log {
	t.Helper()
	cfg := segments.DefaultConfig()
	cfg.Logger = quietLogger()
	cfg.Observer = m.Observer()
	l, err := segments.Open(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	for name, n := range topics {
		if _, err := l.CreateTopic(name, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.AddLog(l); err != nil {
		t.Fatal(err)
	}
	return l
}

func appendTo(t *testing.T, l *segments.Log, topic string, partition int, b []byte) {
	t.Helper()
	tp, err := l.Topic(topic)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tp.Partition(partition)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(b); err != nil {
		t.Fatal(err)
	}
}

// value is the value of the series of name whose labels include want (nil: the only one), and
// whether exactly one such series exists.
func value(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := families[name]
	if f == nil {
		return 0, false
	}
	var found []*dto.Metric
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			if !hasLabel(m, k, v) {
				continue next
			}
		}
		found = append(found, m)
	}
	if len(found) != 1 {
		return 0, false
	}
	m := found[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount()), true
	}
	return 0, false
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k {
			return l.GetValue() == v
		}
	}
	return false
}

// TestExpositionPassesPromtoolAndReportsPartitions: the exposition of a mount's registry (runtime,
// process, segments and FUSE metrics) passes promtool, and the per-partition series say what was
// appended.
func TestExpositionPassesPromtoolAndReportsPartitions(t *testing.T) {
	m, err := New(Options{Build: Build{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26"},
		Descriptors: []Descriptors{ProcessDescriptors()}})
	if err != nil {
		t.Fatal(err)
	}
	l := openLog(t, m, map[string]int{"orders": 2, "clicks": 1})
	appendTo(t, l, "orders", 1, []byte("hello\n"))
	appendTo(t, l, "orders", 1, []byte("world\n"))
	// A FUSE request answered with an errno, through the wrapper.
	raw := m.WrapFUSE(fuse.NewDefaultRawFileSystem())
	if s := raw.Lookup(nil, &fuse.InHeader{}, "x", &fuse.EntryOut{}); s != fuse.ENOSYS {
		t.Fatalf("default raw file system answered lookup with %v", s)
	}
	m.SealedRead()
	text, err := m.Exposition()
	if err != nil {
		t.Fatal(err)
	}
	promcheck.Check(t, "the exposition", text)
	fams := promcheck.Families(t, text)
	orders1 := map[string]string{"topic": "orders", "partition": "1"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"segfs_log_end_offset_bytes", orders1, 12},
		{"segfs_log_start_offset_bytes", orders1, 0},
		{"segfs_log_size_bytes", orders1, 12},
		{"segfs_log_segments", orders1, 1},
		{"segfs_log_appends_total", orders1, 2},
		{"segfs_log_appended_bytes_total", orders1, 12},
		{"segfs_log_unsynced_bytes", orders1, 12},
		{"segfs_log_partitions_failed", orders1, 0},
		{"segfs_log_end_offset_bytes", map[string]string{"topic": "clicks", "partition": "0"}, 0},
		{"segfs_topics", nil, 2},
		{"segfs_partitions", nil, 3},
		{"segfs_append_duration_seconds", nil, 2},
		{"segfs_fuse_requests_total", map[string]string{"op": "lookup", "errno": "ENOSYS"}, 1},
		{"segfs_fuse_request_duration_seconds", map[string]string{"op": "lookup"}, 1},
		{"segfs_sealed_daemon_reads_total", nil, 1},
		{"segfs_build_info", map[string]string{"version": "v1.2.3", "revision": "abc"}, 1},
		{"segfs_dirty_memory_limit_bytes", nil, segments.DefaultMaxDirtyTotal},
	} {
		if got, ok := value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found: %v); want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if open, ok := value(fams, "segfs_descriptors_open", map[string]string{"budget": "process"}); !ok || open < 3 {
		t.Errorf("process descriptors open = %v, %v", open, ok)
	}
	for _, name := range []string{"go_goroutines", "process_open_fds", "segfs_log_last_append_timestamp_seconds"} {
		if fams[name] == nil {
			t.Errorf("%s missing from the exposition", name)
		}
	}
}

// TestDetailBoundsCardinality: per topic, the partition label is gone and values are sums over the
// topic's partitions; per mount, both labels are gone.
func TestDetailBoundsCardinality(t *testing.T) {
	for _, c := range []struct {
		detail Detail
		series int
		labels map[string]string
		end    float64
		segs   float64
	}{
		{PerTopic, 2, map[string]string{"topic": "orders"}, 9, 3},
		{PerMount, 1, nil, 10, 5},
	} {
		t.Run(string(c.detail), func(t *testing.T) {
			m, err := New(Options{Detail: c.detail})
			if err != nil {
				t.Fatal(err)
			}
			l := openLog(t, m, map[string]int{"orders": 3, "clicks": 2})
			appendTo(t, l, "orders", 0, []byte("abcd"))
			appendTo(t, l, "orders", 2, []byte("efghi"))
			appendTo(t, l, "clicks", 1, []byte("j"))
			text, err := m.Exposition()
			if err != nil {
				t.Fatal(err)
			}
			promcheck.Check(t, "the exposition", text)
			fams := promcheck.Families(t, text)
			f := fams["segfs_log_end_offset_bytes"]
			if f == nil || len(f.GetMetric()) != c.series {
				t.Fatalf("segfs_log_end_offset_bytes: %v; want %d series", f, c.series)
			}
			for _, s := range f.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == "partition" || c.detail == PerMount {
						t.Errorf("label %s=%s at detail %s", l.GetName(), l.GetValue(), c.detail)
					}
				}
			}
			if got, ok := value(fams, "segfs_log_end_offset_bytes", c.labels); !ok || got != c.end {
				t.Errorf("end offset %v = %v, %v; want %v", c.labels, got, ok, c.end)
			}
			if got, ok := value(fams, "segfs_log_segments", c.labels); !ok || got != c.segs {
				t.Errorf("segments %v = %v, %v; want %v", c.labels, got, ok, c.segs)
			}
		})
	}
	if _, err := New(Options{Detail: "segment"}); err == nil || !strings.Contains(err.Error(), "partition, topic or mount") {
		t.Errorf("New with an unknown detail: %v", err)
	}
}

// TestFUSEWrapperCountsByOpAndErrno: the wrapper answers what the wrapped file system answers and
// counts each request once, by op and errno name, WRITE once whichever of Writev or Write serves it.
func TestFUSEWrapperCountsByOpAndErrno(t *testing.T) {
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw := m.WrapFUSE(fuse.NewDefaultRawFileSystem())
	for range 3 {
		raw.GetAttr(nil, &fuse.GetAttrIn{}, &fuse.AttrOut{})
	}
	// go-fuse calls Writev first and Write when that answers ENOSYS: one request.
	if _, s := raw.Writev(nil, &fuse.WriteIn{}, [][]byte{[]byte("x")}); s == fuse.ENOSYS {
		raw.Write(nil, &fuse.WriteIn{}, []byte("x"))
	}
	raw.Forget(1, 1)
	text, err := m.Exposition()
	if err != nil {
		t.Fatal(err)
	}
	promcheck.Check(t, "the exposition", text)
	fams := promcheck.Families(t, text)
	for _, c := range []struct {
		op, errno string
		want      float64
	}{{"getattr", "ENOSYS", 3}, {"write", "ENOSYS", 1}, {"forget", "OK", 1}} {
		if got, ok := value(fams, "segfs_fuse_requests_total", map[string]string{"op": c.op, "errno": c.errno}); !ok || got != c.want {
			t.Errorf("requests{op=%s,errno=%s} = %v, %v; want %v", c.op, c.errno, got, ok, c.want)
		}
		if got, ok := value(fams, "segfs_fuse_request_duration_seconds", map[string]string{"op": c.op}); !ok || got != c.want {
			t.Errorf("duration{op=%s} count = %v, %v; want %v", c.op, got, ok, c.want)
		}
	}
	if errnoLabel(int(syscall.ENOENT)) != "ENOENT" || errnoLabel(0) != "OK" || errnoLabel(maxErrno) != "other" {
		t.Error("errno labels")
	}
}

// TestServerServesAndStops: the endpoint serves the registry at /metrics, a taken address fails
// Listen with the address in the message, and Close stops every goroutine (goleak, TestMain).
func TestServerServesAndStops(t *testing.T) {
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(m, quietLogger())
	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %v %v", resp.Status, err)
	}
	promcheck.Check(t, "/metrics", body)
	if !bytes.Contains(body, []byte("segfs_build_info")) {
		t.Errorf("/metrics lacks segfs_build_info:\n%s", body)
	}
	_, err = Listen(s.Addr())
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "metrics endpoint "+s.Addr()) {
		t.Errorf("Listen on a taken address: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", s.Addr()); err == nil {
		t.Error("the endpoint still accepts connections after Close")
	}
}
