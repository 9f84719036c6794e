package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// `segfs bench-limits` measures how close segfs gets to the machine's limits: each target is a segfs number next to its baseline (fio
// on the backing filesystem, cat of the backing file, the buffered column, a fixed budget) measured in
// the same run, as a ratio against the target ratio. Ratios, not absolute numbers, because the machine
// is whatever the user has; and the baseline runs right next to the measurement so that load on a shared
// machine hits both sides alike.

// Check results.
const (
	StatusPass  = "PASS"
	StatusMiss  = "MISS"
	StatusSkip  = "SKIP"  // could not be measured here (no fio, no drop_caches), with the reason
	StatusError = "ERROR" // the measurement itself failed
)

// LimitsConfig sizes every target. DefaultLimits is the full run; QuickLimits is a smoke run.
type LimitsConfig struct {
	DataDir string `json:"data_dir"`
	Binary  string `json:"binary,omitempty"`
	Targets []int  `json:"targets"`
	// Repeat is how many times targets 1, 2, 4 and 6 measure each side, alternating which side goes
	// first; the median is reported, which keeps one disturbed run on a shared machine from deciding.
	// Target 4's cold reads, short and the noisiest, run 2×Repeat+1 times.
	Repeat int `json:"repeat"`
	// DropCaches allows echo 3 > /proc/sys/vm/drop_caches for the cold reads of targets 4 and 6. It
	// slows down everything else on the machine for a while, so tests turn it off.
	DropCaches bool `json:"drop_caches"`

	DDCount       int           `json:"dd_count_mib"`         // 1: dd count of 1 MiB blocks
	SyncDuration  time.Duration `json:"-"`                    // 2: length of each write+fsync loop
	BenchDuration time.Duration `json:"-"`                    // 3: segfs bench --duration
	BenchWarmup   time.Duration `json:"-"`                    // 3: segfs bench --warmup
	SealedSize    int64         `json:"sealed_size"`          // 4: size of the sealed segment read
	RSSPartitions []int         `json:"rss_partitions"`       // 5: one measurement per count (the scale curve)
	RSSWrite      int           `json:"rss_write_bytes"`      // 5: bytes written once to each partition
	RSSIdle       time.Duration `json:"-"`                    // 5: idle time before RSS is read
	MaxDirty      int64         `json:"max_dirty"`            // 5: the mount's max_dirty, part of the bound
	StartupParts  []int         `json:"startup_partitions"`   // 6: one measurement per count (the scale curve)
	StartupSegs   int           `json:"startup_segments"`     // 6: segments per partition
	StartupSegLen int64         `json:"startup_segment_size"` // 6: size of each (sparse) sealed segment

	// ProfileDir, if set, makes every daemon write a CPU and a heap profile there at exit.
	ProfileDir    string        `json:"profile_dir,omitempty"`
	Progress      io.Writer     `json:"-"`
	ProgressStyle ProgressStyle `json:"-"`
	Log           io.Writer     `json:"-"`
}

// DefaultLimits is the full-size run.
func DefaultLimits() LimitsConfig {
	return LimitsConfig{
		Targets: []int{1, 2, 3, 4, 5, 6}, Repeat: 3, DropCaches: true,
		DDCount: 2048, SyncDuration: 10 * time.Second,
		BenchDuration: 30 * time.Second, BenchWarmup: time.Second,
		SealedSize:    1 << 30,
		RSSPartitions: []int{1000, 10000}, RSSWrite: 1000 * 1000, RSSIdle: 5 * time.Second, MaxDirty: 64 << 20,
		StartupParts: []int{1000, 10000}, StartupSegs: 10, StartupSegLen: 1 << 20,
	}
}

// QuickLimits keeps the shape of every target at a size that runs in seconds: a smoke test of the
// tool, whose ratios mean little.
func QuickLimits() LimitsConfig {
	c := DefaultLimits()
	c.Repeat, c.DDCount, c.SyncDuration = 1, 64, time.Second
	c.BenchDuration, c.BenchWarmup = time.Second, 0
	c.SealedSize = 32 << 20
	c.RSSPartitions, c.RSSIdle = []int{10, 20}, 500*time.Millisecond
	c.StartupParts, c.StartupSegs = []int{10, 20}, 3
	return c
}

// Validate rejects sizes the targets cannot run with, naming the flag.
func (c *LimitsConfig) Validate() error {
	for _, id := range c.Targets {
		if id < 1 || id > len(limitTargets()) {
			return fmt.Errorf("--targets: no target %d (want 1-%d)", id, len(limitTargets()))
		}
	}
	switch {
	case len(c.Targets) == 0:
		return errors.New("--targets: no target selected")
	case c.Repeat < 1:
		return errors.New("--repeat must be at least 1")
	case c.DDCount < 1:
		return errors.New("--dd-count must be at least 1")
	case c.SyncDuration <= 0 || c.BenchDuration <= 0:
		return errors.New("--sync-duration and --bench-duration must be positive")
	case c.BenchWarmup < 0 || c.RSSIdle < 0:
		return errors.New("--bench-warmup and --rss-idle must not be negative")
	case c.SealedSize < 1<<20 || c.SealedSize%(1<<20) != 0:
		return errors.New("--sealed-size must be a positive multiple of 1MiB")
	case !allPositive(c.RSSPartitions) || c.RSSWrite < 1 || c.MaxDirty < 1:
		return errors.New("--rss-partitions, --rss-write and --max-dirty must be positive")
	case !allPositive(c.StartupParts) || c.StartupSegs < 1 || c.StartupSegLen < 1:
		return errors.New("--startup-partitions, --startup-segments and --startup-segment-size must be positive")
	case c.Binary == "":
		return errors.New("no segfs binary to mount with")
	}
	return nil
}

func allPositive(ns []int) bool {
	for _, n := range ns {
		if n < 1 {
			return false
		}
	}
	return len(ns) > 0
}

// ParseCounts reads a comma list of counts (the scale curve's points), e.g. "1000,10000".
func ParseCounts(flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--%s: %q is not a positive count", flag, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseTargets reads --targets: "all" or a comma list of target numbers.
func ParseTargets(s string) ([]int, error) {
	if strings.TrimSpace(s) == "all" {
		return DefaultLimits().Targets, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--targets: %q is not a target number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// LimitCheck is one measured ratio against its target: Ratio = Measured / Baseline, and the check
// passes when Ratio Op Target holds.
type LimitCheck struct {
	Name     string  `json:"name"`
	Unit     string  `json:"unit"` // of Measured and Baseline
	Measured float64 `json:"measured"`
	Baseline float64 `json:"baseline"`
	Ratio    float64 `json:"ratio"`
	Op       string  `json:"op"` // ">=" or "<="
	Target   float64 `json:"target"`
	Status   string  `json:"status"`
	Reason   string  `json:"reason,omitempty"` // why it was skipped or failed
	Note     string  `json:"note,omitempty"`   // context for reading the result (the disk's own tail)
	// Commands are the exact commands of the two sides, for a reader to rerun them by hand.
	Commands []string `json:"commands,omitempty"`
	// Samples are the per-repetition values the medians were taken from.
	MeasuredSamples []float64 `json:"measured_samples,omitempty"`
	BaselineSamples []float64 `json:"baseline_samples,omitempty"`
}

// LimitTarget is one target with its checks and the evidence gathered on the way.
type LimitTarget struct {
	ID           int            `json:"id"`
	Title        string         `json:"title"`
	Checks       []LimitCheck   `json:"checks"`
	Details      map[string]any `json:"details,omitempty"`
	LoadAvgStart [3]float64     `json:"load_avg_start"`
	LoadAvgEnd   [3]float64     `json:"load_avg_end"`
	Seconds      float64        `json:"seconds"`
	Error        string         `json:"error,omitempty"`
}

// LimitsReport is the whole run, as written by --json.
type LimitsReport struct {
	Tool      string        `json:"tool"`
	Version   string        `json:"segfs_version"`
	StartedAt time.Time     `json:"started_at"`
	Command   []string      `json:"command,omitempty"`
	Machine   Machine       `json:"machine"`
	Config    limitsJSONCfg `json:"config"`
	Targets   []LimitTarget `json:"targets"`
}

type limitsJSONCfg struct {
	LimitsConfig
	SyncDurationS  float64 `json:"sync_duration_s"`
	BenchDurationS float64 `json:"bench_duration_s"`
	BenchWarmupS   float64 `json:"bench_warmup_s"`
	RSSIdleS       float64 `json:"rss_idle_s"`
}

// Err is non-nil when a measurement failed (not when a target was missed).
func (r *LimitsReport) Err() error {
	var errs []error
	for _, t := range r.Targets {
		if t.Error != "" {
			errs = append(errs, fmt.Errorf("target %d: %s", t.ID, t.Error))
		}
	}
	return errors.Join(errs...)
}

// limitTarget is how one target is measured. run fills t's checks and details.
type limitTarget struct {
	title   string
	summary string // for the help text
	run     func(ctx context.Context, r *limitsRun, t *LimitTarget) error
}

// limitTargets is indexed by target number - 1.
func limitTargets() []limitTarget {
	return []limitTarget{
		{"Large appends: dd bs=1M oflag=append (incl. close) vs fio sequential O_DIRECT write bs=1M",
			"dd appends vs fio O_DIRECT writes", measureLargeAppends},
		{"Small durable appends: 4 KiB write(+fsync) loops, -o sync and default, vs fio --direct=1 --sync=1 --bs=4k",
			"write(+fsync) loops vs fio O_SYNC IOPS, and a clean fsync's I/O", measureSmallDurableAppends},
		{"Predictable latency: dsync-deferred at the seed's 250 MB/s, open loop, vs the seed's tail",
			"segfs bench --seed-compare tail latency", measureTailLatency},
		{"Sealed segment reads: cat and dd bs=1M through the mount vs of the backing file",
			"cat and dd of a sealed segment vs the backing file (cold and warm)", measureSealedReads},
		{"Memory: RSS with many partitions written once, now idle",
			"RSS with many idle partitions", measureIdleMemory},
		{"Start-up: mount a data dir of many partitions and segments, no data scanned",
			"start-up time of a big data dir", measureStartup},
	}
}

// limitsRun is the state shared by the targets of one run.
type limitsRun struct {
	cfg  *LimitsConfig
	logw io.Writer
	pr   *progress
}

// RunLimits measures the configured targets in turn. A target whose measurement fails is reported with
// its error and the run goes on; the caller turns LimitsReport.Err into the exit status.
func RunLimits(ctx context.Context, cfg LimitsConfig, version string) (*LimitsReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	if cfg.ProfileDir != "" {
		abs, err := filepath.Abs(cfg.ProfileDir)
		if err != nil {
			return nil, fmt.Errorf("--profile-dir: %w", err)
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("--profile-dir: %w", err)
		}
		cfg.ProfileDir = abs // daemons run in /
	}
	rep := &LimitsReport{Tool: "segfs bench-limits", Version: version, StartedAt: time.Now().UTC(),
		Command: os.Args, Machine: describeMachine(cfg.DataDir), Config: limitsJSONCfg{LimitsConfig: cfg,
			SyncDurationS: cfg.SyncDuration.Seconds(), BenchDurationS: cfg.BenchDuration.Seconds(),
			BenchWarmupS: cfg.BenchWarmup.Seconds(), RSSIdleS: cfg.RSSIdle.Seconds()}}
	for _, id := range cfg.Targets {
		spec := limitTargets()[id-1]
		t := LimitTarget{ID: id, Title: spec.title, Details: map[string]any{}, LoadAvgStart: loadAvg()}
		r := &limitsRun{cfg: &cfg, logw: logw, pr: newProgress(cfg.Progress, cfg.ProgressStyle, fmt.Sprintf("target %d", id))}
		start := time.Now()
		err := spec.run(ctx, r, &t)
		r.pr.done()
		t.Seconds, t.LoadAvgEnd = time.Since(start).Seconds(), loadAvg()
		if err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			t.Error = oneLineErr(err)
			t.Checks = append(t.Checks, LimitCheck{Name: "measurement", Status: StatusError, Reason: t.Error})
		}
		rep.Targets = append(rep.Targets, t)
	}
	return rep, nil
}

// newCheck evaluates measured against baseline. A missing baseline (0) cannot give a ratio: the
// check is an error rather than a silent pass.
func newCheck(name, unit string, measured, baseline float64, op string, target float64) LimitCheck {
	c := LimitCheck{Name: name, Unit: unit, Measured: measured, Baseline: baseline, Op: op, Target: target}
	if baseline <= 0 {
		c.Status, c.Reason = StatusError, "baseline is zero"
		return c
	}
	c.Ratio = measured / baseline
	pass := c.Ratio >= target
	if op == "<=" {
		pass = c.Ratio <= target
	}
	c.Status = StatusMiss
	if pass {
		c.Status = StatusPass
	}
	return c
}

func skipCheck(name, reason string) LimitCheck {
	return LimitCheck{Name: name, Status: StatusSkip, Reason: reason}
}

// median of a non-empty sample; the mean of the middle two for an even count.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func loadAvg() [3]float64 {
	var out [3]float64
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		for i, l := range si.Loads {
			out[i] = float64(l) / (1 << unix.SI_LOAD_SHIFT)
		}
	}
	return out
}

func oneLineErr(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// profileEnv asks a daemon for CPU and heap profiles named after the target and what it serves; %p
// (the daemon's pid) keeps several daemons of one target apart.
func (r *limitsRun) profileEnv(label string) []string {
	if r.cfg.ProfileDir == "" {
		return nil
	}
	base := filepath.Join(r.cfg.ProfileDir, label+"-%p")
	return []string{"SEGFS_CPUPROFILE=" + base + ".cpu.pprof", "SEGFS_MEMPROFILE=" + base + ".heap.pprof"}
}
