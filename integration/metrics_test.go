package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"segfs/internal/promcheck"
)

// statusJSON runs `segfs status --json MNT` and decodes it.
func statusJSON(t *testing.T, mnt string) map[string]any {
	t.Helper()
	res := runCmd(t, 30*time.Second, nil, binaries.segfs, "status", "--json", mnt)
	if res.code != 0 {
		t.Fatalf("segfs status --json %s: %v", mnt, res)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("segfs status --json: %v\n%s", err, res.stdout)
	}
	return st
}

// metricsURL is the endpoint of a mount started with -o metrics=127.0.0.1:0, as segfs status reports it.
func metricsURL(t *testing.T, mnt string) string {
	t.Helper()
	addr, _ := statusJSON(t, mnt)["metrics_address"].(string)
	if addr == "" {
		t.Fatalf("segfs status reports no metrics address for %s", mnt)
	}
	return "http://" + addr + "/metrics"
}

func scrape(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return b
}

// sample is one series' value; histograms contribute their count and every bucket.
type sample struct {
	name   string
	labels string
}

// counterSamples returns every value that may only grow: counters, histogram counts and buckets.
func counterSamples(fams map[string]*dto.MetricFamily) map[sample]float64 {
	out := map[sample]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			key := sample{name, strings.Join(ls, ",")}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[sample{name + "_count", key.labels}] = float64(m.GetHistogram().GetSampleCount())
				for _, b := range m.GetHistogram().GetBucket() {
					out[sample{name + "_bucket", fmt.Sprintf("%s,le=%g", key.labels, b.GetUpperBound())}] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

// gauge is the value of the series name{topic,partition}, failing the test if there is none.
func partitionValue(t *testing.T, fams map[string]*dto.MetricFamily, name, topic, partition string) float64 {
	t.Helper()
	for _, m := range fams[name].GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if got["topic"] == topic && got["partition"] == partition {
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s{topic=%q,partition=%q}", name, topic, partition)
	return 0
}

// TestMetricsEndpointStatsFileAndDashboard: /metrics and MNT/.stats of a tiered mount pass promtool
// and export the same metrics, FUSE errors, sealed reads and the tier's uploads and reads are counted,
// and every metric the Grafana dashboard queries exists in a scrape.
func TestMetricsEndpointStatsFileAndDashboard(t *testing.T) {
	_, tierOpts := startTier(t, "mt", "local_retention_bytes=512KiB")
	data, mnt := newDirs(t)
	m := mountFS(t, data, mnt, tierOpts+",metrics=127.0.0.1:0,partitions=2")
	url := metricsURL(t, mnt)
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	backing := filepath.Join(data, "T", "0")
	mustSh(t, `dd if=/dev/urandom of="$P/current" bs=256k count=10 oflag=append conv=notrunc status=none`, "P="+part)
	// Segments of 256 KiB upload, and all but the last 512 KiB leave the local disk.
	waitUntil(t, "uploads and evictions", 30*time.Second, func() bool {
		fams := promcheck.Families(t, scrape(t, url))
		return fams["segfs_tier_pending_upload_bytes"] != nil &&
			partitionValue(t, fams, "segfs_tier_pending_upload_bytes", "T", "0") == 0 && !localFiles(t, backing)["00000000000000000000.log"]
	})
	local := "" // the newest sealed segment, still on disk
	listed, _ := listing(t, part)
	for _, n := range listed {
		if n != "current" && localFiles(t, backing)[n] {
			local = n
		}
	}
	mustSh(t, `cat "$P/00000000000000000000.log" "$P/$L" >/dev/null`, "P="+part, "L="+local)
	if _, err := os.Stat(filepath.Join(mnt, "T", "nope")); err == nil {
		t.Fatal("stat of a missing name succeeded")
	}
	body := scrape(t, url)
	promcheck.Check(t, "/metrics", body)
	stats, err := os.ReadFile(filepath.Join(mnt, ".stats"))
	if err != nil {
		t.Fatal(err)
	}
	promcheck.Check(t, "MNT/.stats", stats)
	fromHTTP, fromFile := promcheck.Families(t, body), promcheck.Families(t, stats)
	if a, b := names(fromHTTP), names(fromFile); !slicesEqual(a, b) {
		t.Errorf("/metrics and .stats export different metrics:\n/metrics %v\n.stats   %v", a, b)
	}
	if got := partitionValue(t, fromFile, "segfs_log_end_offset_bytes", "T", "0"); got != 10*256<<10 {
		t.Errorf(".stats end offset of T/0 = %v; want %d", got, 10*256<<10)
	}
	var lookupENOENT float64
	for _, s := range fromFile["segfs_fuse_requests_total"].GetMetric() {
		if hasLabels(s, "op", "lookup", "errno", "ENOENT") {
			lookupENOENT = s.GetCounter().GetValue()
		}
	}
	if lookupENOENT < 1 {
		t.Errorf("the failed lookup of T/nope is not counted as lookup/ENOENT")
	}
	served := fromFile["segfs_sealed_passthrough_opens_total"].GetMetric()[0].GetCounter().GetValue() +
		fromFile["segfs_sealed_daemon_reads_total"].GetMetric()[0].GetCounter().GetValue()
	if served < 1 {
		t.Errorf("reading a sealed segment counted neither a passthrough open nor a daemon READ")
	}
	// The tier: everything sealed is uploaded, nothing failed, and the evicted segment's cold read
	// waited for the store.
	for name, want := range map[string]float64{
		"segfs_tier_pending_upload_bytes": 0, "segfs_tier_upload_lag_seconds": 0,
		"segfs_tier_upload_errors_total": 0, "segfs_tier_remote_read_errors_total": 0,
	} {
		if got := partitionValue(t, fromFile, name, "T", "0"); got != want {
			t.Errorf("%s{T/0} = %v; want %v", name, got, want)
		}
	}
	if misses := fromFile["segfs_tier_cache_misses_total"].GetMetric()[0].GetCounter().GetValue(); misses < 1 {
		t.Errorf("a cold read of an evicted segment counted no cache miss")
	}
	var budget bool
	for _, s := range fromFile["segfs_descriptors_limit"].GetMetric() {
		budget = budget || hasLabels(s, "budget", "max_open_files") && s.GetGauge().GetValue() > 0
	}
	if !budget {
		t.Errorf("no segfs_descriptors_limit{budget=\"max_open_files\"}")
	}
	for _, n := range dashboardMetrics(t) {
		if !exported(fromHTTP, n) {
			t.Errorf("the dashboard queries %s, which the scrape does not have", n)
		}
	}
	m.Unmount()
}

func names(fams map[string]*dto.MetricFamily) []string {
	var out []string
	for n := range fams {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func hasLabels(m *dto.Metric, kv ...string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for i := 0; i < len(kv); i += 2 {
		if got[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

// dashboardMetrics lists every metric name the dashboard's queries use.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../contrib/grafana/segfs.json")
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("contrib/grafana/segfs.json: %v", err)
	}
	walk(dash)
	seen := map[string]bool{}
	ident := regexp.MustCompile(`\b(?:segfs|process|go)_[a-z0-9_]+\b`)
	for _, e := range exprs {
		for _, n := range ident.FindAllString(e, -1) {
			seen[n] = true
		}
	}
	if len(exprs) < 10 || len(seen) < 10 {
		t.Fatalf("the dashboard has %d queries over %d metrics; it was not read", len(exprs), len(seen))
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// exported reports whether name is a family of the scrape, or a series of one of its histograms.
func exported(fams map[string]*dto.MetricFamily, name string) bool {
	if fams[name] != nil {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if f := fams[strings.TrimSuffix(name, suffix)]; f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
			return true
		}
	}
	return false
}

// TestMetricsDuringLoad scrapes while dd appends to two partitions: no counter ever goes down, the
// appended-bytes and appends counters match what dd wrote, and the end offset matches stat of the
// partition (.stream's size and the sum of its segments' sizes).
func TestMetricsDuringLoad(t *testing.T) {
	data, mnt := newDirs(t)
	m := mountFS(t, data, mnt, "metrics=127.0.0.1:0,segment_size=1MiB,partitions=2")
	url := metricsURL(t, mnt)
	mkdir(t, filepath.Join(mnt, "T"))
	const writes, size = 600, 64 << 10 // each write() is one FUSE WRITE, one append
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command("dd", "if=/dev/urandom", "of="+filepath.Join(mnt, "T", fmt.Sprint(p), "current"),
				fmt.Sprintf("bs=%d", size), fmt.Sprintf("count=%d", writes), "oflag=append", "conv=notrunc", "status=none").CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("dd into T/%d: %v: %s", p, err, out)
			}
		}()
	}
	loadDone := make(chan struct{})
	go func() { wg.Wait(); close(loadDone) }()
	prev := map[sample]float64{}
	scrapes := 0
	check := func() {
		now := counterSamples(promcheck.Families(t, scrape(t, url)))
		for k, v := range prev {
			if now[k] < v {
				t.Errorf("scrape %d: %s{%s} went from %v to %v", scrapes, k.name, k.labels, v, now[k])
			}
		}
		prev = now
		scrapes++
	}
	for running := true; running; {
		select {
		case <-loadDone:
			running = false
		case <-time.After(20 * time.Millisecond):
		}
		check()
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if scrapes < 3 {
		t.Errorf("only %d scrapes ran during the load", scrapes)
	}
	fams := promcheck.Families(t, scrape(t, url))
	for p := 0; p < 2; p++ {
		ps := fmt.Sprint(p)
		dir := filepath.Join(mnt, "T", ps)
		if got := partitionValue(t, fams, "segfs_log_appended_bytes_total", "T", ps); got != writes*size {
			t.Errorf("T/%d appended bytes counter = %v; dd wrote %d", p, got, writes*size)
		}
		if got := partitionValue(t, fams, "segfs_log_appends_total", "T", ps); got != writes {
			t.Errorf("T/%d appends counter = %v; dd made %d write()s", p, got, writes)
		}
		end := partitionValue(t, fams, "segfs_log_end_offset_bytes", "T", ps)
		st, err := os.Stat(filepath.Join(dir, ".stream"))
		if err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		var sum int64
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			sum += fi.Size()
		}
		if end != float64(st.Size()) || end != float64(sum) || end != writes*size {
			t.Errorf("T/%d: end offset %v, stat .stream %d, sum of segments %d, dd wrote %d", p, end, st.Size(), sum, writes*size)
		}
		if segs := partitionValue(t, fams, "segfs_log_segments", "T", ps); int(segs) != len(files) {
			t.Errorf("T/%d: %v segments exported, %d files listed", p, segs, len(files))
		}
		if u := partitionValue(t, fams, "segfs_log_unsynced_bytes", "T", ps); u != 0 {
			t.Errorf("T/%d: %v bytes unsynced after dd closed it", p, u)
		}
	}
	m.Unmount()
}

// TestStatusCommand: segfs status on a daemonized mount without metrics: the table and the JSON
// describe the partitions as stat sees them; after kill -9 of the daemon it says so, exit 1.
func TestStatusCommand(t *testing.T) {
	data, mnt := newDirs(t)
	daemonMount(t, mnt, "mount", "--data", data, "-o", "segment_size=1MiB,partitions=2,metrics=off", mnt)
	mkdir(t, filepath.Join(mnt, "orders"))
	mustSh(t, `head -c 1500000 /dev/urandom >> "$M/orders/1/current"`, "M="+mnt)
	if _, err := os.Stat(filepath.Join(mnt, ".stats")); !os.IsNotExist(err) {
		t.Errorf("stat .stats with metrics=off: %v; want ENOENT", err)
	}
	res := runCmd(t, 30*time.Second, nil, binaries.segfs, "status", mnt)
	if res.code != 0 {
		t.Fatalf("segfs status: %v", res)
	}
	row := regexp.MustCompile(`(?m)^orders +1 +1500000 +2 +1\.43 MiB +\d+s ago +0 B +ok$`)
	if !row.MatchString(res.stdout) || !strings.Contains(res.stdout, "metrics  off\n") || strings.Contains(res.stdout, "\x1b") {
		t.Errorf("segfs status | cat:\n%s", res.stdout)
	}
	st := statusJSON(t, mnt)
	parts, _ := st["partitions"].([]any)
	if st["schema"] != 1.0 || st["mountpoint"] != mnt || st["data_dir"] != data || len(parts) != 2 {
		t.Fatalf("segfs status --json: %v", st)
	}
	p1 := parts[1].(map[string]any)
	fi, err := os.Stat(filepath.Join(mnt, "orders", "1", ".stream"))
	if err != nil {
		t.Fatal(err)
	}
	if p1["topic"] != "orders" || p1["partition"] != 1.0 || p1["end_offset"] != float64(fi.Size()) ||
		p1["segments"] != 2.0 || p1["health"] != "ok" || p1["unsynced_bytes"] != 0.0 {
		t.Errorf("partition orders/1 in segfs status --json: %v (stat .stream: %d)", p1, fi.Size())
	}
	if row0 := regexp.MustCompile(`(?m)^orders +0 +0 +1 +0 B +never +0 B +ok$`); !row0.MatchString(res.stdout) {
		t.Errorf("a partition never written to shows its last append as never:\n%s", res.stdout)
	}
	t.Run("another user is refused", func(t *testing.T) {
		requireRoot(t)
		// Everything nobody must reach is opened to it: the binary (the suite's sits in a directory
		// only root may enter), the directories above the mount point, and the mount (allow_other).
		data, mnt := newDirs(t)
		mustSh(t, `chmod 0755 "$(dirname "$M")" "$(dirname "$(dirname "$M")")"`, "M="+mnt)
		daemonMount(t, mnt, "mount", "--data", data, "-o", "allow_other,metrics=off", mnt)
		bin := filepath.Join(filepath.Dir(mnt), "segfs")
		mustSh(t, `cp "$S" "$B" && chmod 0755 "$B"`, "S="+binaries.segfs, "B="+bin)
		res := sh(t, `runuser -u nobody -- "$B" status "$M"`, "B="+bin, "M="+mnt)
		if msg := strings.TrimSpace(res.stderr); res.code != 1 || strings.Contains(msg, "\n") ||
			!strings.Contains(msg, "refused this user") || !strings.Contains(msg, "root may use it") {
			t.Errorf("segfs status as nobody: %v; want exit 1 and one line saying it was refused", res)
		}
	})
	pid, _ := st["pid"].(float64)
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(exitTimeout)
	for len(daemonPids(mnt)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	res = runCmd(t, 30*time.Second, nil, binaries.segfs, "status", mnt)
	if msg := strings.TrimSpace(res.stderr); res.code != 1 || strings.Contains(msg, "\n") || !strings.Contains(msg, "its daemon is gone") {
		t.Errorf("segfs status after kill -9: %v", res)
	}
}

// TestMountRefusesATakenMetricsAddress: a daemonized segfs mount whose endpoint cannot listen exits 1
// with one line naming the address, and nothing is mounted.
func TestMountRefusesATakenMetricsAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data, mnt := newDirs(t)
	t.Cleanup(func() { unmountLeftovers(t, mnt) })
	expectMountError(t, []string{"mount", "--data", data, "-o", "metrics=" + ln.Addr().String(), mnt},
		"metrics endpoint "+ln.Addr().String(), "address already in use")
	if hasFuseEntry(mnt) {
		t.Error("mounted although the metrics endpoint could not listen")
	}
}
