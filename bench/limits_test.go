package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"segfs/segments"
)

func TestNewCheckJudgesTheRatioByItsDirection(t *testing.T) {
	cases := []struct {
		measured, baseline float64
		op                 string
		target             float64
		status             string
	}{
		{95, 100, ">=", 0.9, StatusPass},
		{90, 100, ">=", 0.9, StatusPass}, // the target itself is met
		{89, 100, ">=", 0.9, StatusMiss},
		{12, 1.2, "<=", 10, StatusPass}, // 10× exactly
		{13, 1.2, "<=", 10, StatusMiss},
		{5, 0, "<=", 1, StatusError}, // no baseline, no ratio: never a silent pass
	}
	for _, c := range cases {
		got := newCheck("x", "ms", c.measured, c.baseline, c.op, c.target)
		if got.Status != c.status {
			t.Errorf("%v %s %v × %v: status %s, want %s", c.measured, c.op, c.target, c.baseline, got.Status, c.status)
		}
		if c.baseline > 0 && got.Ratio != c.measured/c.baseline {
			t.Errorf("ratio %v, want %v", got.Ratio, c.measured/c.baseline)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		in := append([]float64(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("median reordered its input: %v", c.in)
			}
		}
	}
}

func TestParseTargetsAndValidate(t *testing.T) {
	if got, err := ParseTargets("all"); err != nil || len(got) != 6 {
		t.Fatalf("all: %v %v", got, err)
	}
	got, err := ParseTargets("1, 4")
	if err != nil || len(got) != 2 || got[0] != 1 || got[1] != 4 {
		t.Fatalf("1, 4: %v %v", got, err)
	}
	if _, err := ParseTargets("1,x"); err == nil {
		t.Error("1,x accepted")
	}
	cfg := QuickLimits()
	cfg.Binary = "segfs"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("quick config: %v", err)
	}
	for name, broken := range map[string]func(*LimitsConfig){
		"target 7":    func(c *LimitsConfig) { c.Targets = []int{7} },
		"repeat 0":    func(c *LimitsConfig) { c.Repeat = 0 },
		"sealed 1000": func(c *LimitsConfig) { c.SealedSize = 1000 },
		"no binary":   func(c *LimitsConfig) { c.Binary = "" },
	} {
		c := cfg
		broken(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestWriteLimitsTable(t *testing.T) {
	rep := &LimitsReport{Targets: []LimitTarget{
		{ID: 1, Title: "Large appends", Seconds: 12.3, LoadAvgStart: [3]float64{1.5}, LoadAvgEnd: [3]float64{2.25},
			Checks: []LimitCheck{newCheck("dd vs fio", "MB/s", 1200, 2400, ">=", 0.9)}},
		{ID: 4, Title: "Sealed reads", Checks: []LimitCheck{skipCheck("cold cat", "not root"),
			newCheck("warm cat", "MB/s", 5000, 5000, ">=", 0.9)}},
		{ID: 6, Title: "Start-up", Checks: []LimitCheck{newCheck("bytes read", "bytes", 21<<10, 40<<20, "<=", 0.01)}},
	}}
	var b bytes.Buffer
	if err := WriteLimitsTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"| # | Check | Measured | Baseline | Ratio | Target | Result |",
		"| --- | --- | ---: | ---: | ---: | ---: | --- |",
		"| 1 | dd vs fio | 1,200 MB/s | 2,400 MB/s | 0.50 | ≥ 0.90 | MISS |",
		"| 4 | cold cat | – | – | – | – | SKIP |",
		"| 4 | warm cat | 5,000 MB/s | 5,000 MB/s | 1.00 | ≥ 0.90 | PASS |",
		"| 6 | bytes read | 21.0 KiB | 40.0 MiB | 0.00051 | ≤ 0.01 | PASS |",
		"",
		"- 1. Large appends: 12.3 s, load average 1.50 → 2.25",
		"- 4. Sealed reads: 0.0 s, load average 0.00 → 0.00; cold cat: not root",
		"- 6. Start-up: 0.0 s, load average 0.00 → 0.00",
	}
	if got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReadProcOfSelf(t *testing.T) {
	st, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.VmRSS <= 0 || st.VmHWM < st.VmRSS || st.Threads < 1 || st.FDs < 3 || st.SysCR <= 0 {
		t.Errorf("implausible /proc of a running test: %+v", st)
	}
}

// TestStartupLayoutIsWhatSegmentsRecovers proves target 6 measures a real data dir: segments.Open
// recovers the hand-made layout with every segment at its size and the last one active.
func TestStartupLayoutIsWhatSegmentsRecovers(t *testing.T) {
	dir := t.TempDir()
	const parts, segs, segLen = 3, 4, 64 << 10
	total, err := layoutPartitions(filepath.Join(dir, limitsTopic), parts, segs, segLen)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(parts * ((segs-1)*segLen + startupActiveBytes)); total != want {
		t.Fatalf("layout reports %d bytes, want %d", total, want)
	}
	cfg := segments.DefaultConfig()
	cfg.SegmentSize = segLen
	log, err := segments.Open(dir, cfg)
	if err != nil {
		t.Fatalf("segments cannot open the layout: %v", err)
	}
	defer log.Close()
	topic, err := log.Topic(limitsTopic)
	if err != nil {
		t.Fatal(err)
	}
	if got := topic.Partitions(); len(got) != parts {
		t.Fatalf("partitions %v", got)
	}
	p, err := topic.Partition(parts - 1)
	if err != nil {
		t.Fatal(err)
	}
	infos := p.Segments()
	if len(infos) != segs {
		t.Fatalf("%d segments, want %d", len(infos), segs)
	}
	for i, s := range infos {
		want := int64(segLen)
		if i == segs-1 {
			want = startupActiveBytes
		}
		if s.Base != int64(i)*segLen || s.Size != want || s.Sealed != (i < segs-1) {
			t.Errorf("segment %d: %+v", i, s)
		}
	}
	if p.Size() != total/parts {
		t.Errorf("partition size %d, want %d", p.Size(), total/parts)
	}
}

func TestQuickLimitsIsSmallerThanDefault(t *testing.T) {
	d, q := DefaultLimits(), QuickLimits()
	if q.DDCount >= d.DDCount || q.SealedSize >= d.SealedSize || slices.Max(q.RSSPartitions) >= slices.Min(d.RSSPartitions) ||
		slices.Max(q.StartupParts) >= slices.Min(d.StartupParts) ||
		q.BenchDuration > 2*time.Second || q.Repeat != 1 {
		t.Errorf("quick mode is not quick: %+v", q)
	}
}

func TestLimitsTablePrintsSpreadAndCommands(t *testing.T) {
	c := newCheck("dd vs fio", "MB/s", 900, 1000, ">=", 0.9)
	c.MeasuredSamples, c.BaselineSamples = []float64{850, 900, 990}, []float64{1000, 1010, 980}
	c.Commands = []string{"dd if=/dev/zero bs=1M count=8 oflag=append conv=notrunc of=X", "fio --name=seqwrite"}
	rep := &LimitsReport{Targets: []LimitTarget{{ID: 1, Title: "Large appends", Checks: []LimitCheck{c}}}}
	var b strings.Builder
	if err := WriteLimitsTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"3 samples, measured 850 MB/s – 990 MB/s, baseline 980 MB/s – 1,010 MB/s",
		"  - `dd if=/dev/zero bs=1M count=8 oflag=append conv=notrunc of=X`\n", "  - `fio --name=seqwrite`\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestScaleGrowth(t *testing.T) {
	pts := []scalePoint{{Partitions: 1000}, {Partitions: 10000}, {Partitions: 20000, Error: "too many open files"}}
	pts[0].Idle.VmRSS, pts[1].Idle.VmRSS = 30<<20, 30<<20+9000*20<<10
	rss := func(p scalePoint) (float64, bool) { return float64(p.Idle.VmRSS) / 1024, p.Error == "" }
	g := growth(pts, rss)
	if len(g) != 1 || g[0].From != 1000 || g[0].To != 10000 || g[0].PerPartition != 20 {
		t.Errorf("growth = %+v; want 20 KiB per partition from 1000 to 10000 and nothing to the failed count", g)
	}
	if got := describeGrowth(g, "KiB"); got != "20 KiB per partition from 1000 to 10000" {
		t.Errorf("describeGrowth = %q", got)
	}
}

func TestLimitsTableCountSegfsFailedAt(t *testing.T) {
	c := LimitCheck{Name: "idle VmRSS with 10000 partitions", Status: StatusMiss, Reason: "segfs failed at this count: EMFILE"}
	rep := &LimitsReport{Targets: []LimitTarget{{ID: 5, Title: "Memory", Checks: []LimitCheck{c}}}}
	var b strings.Builder
	if err := WriteLimitsTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "| 5 | idle VmRSS with 10000 partitions | – | – | – | – | MISS |") ||
		!strings.Contains(out, "segfs failed at this count: EMFILE") {
		t.Errorf("a count segfs failed at must show as a MISS with its reason, no numbers:\n%s", out)
	}
}

func TestParseCounts(t *testing.T) {
	if got, err := ParseCounts("rss-partitions", "1000, 10000"); err != nil || !slices.Equal(got, []int{1000, 10000}) {
		t.Errorf("ParseCounts = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "-5", "1000,x"} {
		if _, err := ParseCounts("rss-partitions", bad); err == nil || !strings.Contains(err.Error(), "--rss-partitions") {
			t.Errorf("ParseCounts(%q) = %v; want an error naming the flag", bad, err)
		}
	}
}
