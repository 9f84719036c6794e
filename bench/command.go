package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"segfs/units"
)

// SeedRate is the seed's producer rate, 250 MB/s with MB = 10^6 bytes as in its table.
const SeedRate = 250_000_000

// Command is `segfs bench`: throughput and latency percentiles per IO mode through real mounts, side by
// side with plain files (raw) and fio's O_DIRECT limit, in the seed's table.
func Command(version string) *cli.Command {
	d := Defaults()
	var allModes []string
	for _, m := range d.Modes {
		allModes = append(allModes, m.Name)
	}
	return &cli.Command{
		Name:  "bench",
		Usage: "measure throughput and latency percentiles per IO mode through real mounts",
		Description: "Mounts segfs on a temp dir for each mode (or uses --mount), runs producers appending\n" +
			"checksummed messages and consumers tailing them, and prints a markdown table. Fails if any\n" +
			"consumer reads anything but exactly the bytes its producer wrote.\n\n" +
			"By default producers run closed-loop: each sends its next write() as soon as the last one\n" +
			"returned, which measures peak throughput. --rate makes them send on a fixed schedule instead\n" +
			"(open loop) and measures each write's latency from the time it was due, so a stall counts\n" +
			"against every write it delayed; the table then shows both that corrected latency and the\n" +
			"uncorrected one (from the actual send). --seed-compare runs the seed's shape at its 250 MB/s\n" +
			"for every IO mode.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "producers", Value: d.Producers, Usage: "producers, one partition each"},
			&cli.IntFlag{Name: "consumers", Value: d.Consumers, Usage: "consumers; consumer i tails partition i mod producers"},
			&cli.IntFlag{Name: "message-size", Value: d.MessageSize, Usage: "bytes per message"},
			&cli.IntFlag{Name: "batch", Value: d.Batch, Usage: "messages per write()"},
			&cli.StringFlag{Name: "fsync", Value: "never", Usage: "fsync after every write, after every N writes, or never"},
			&cli.DurationFlag{Name: "duration", Value: d.Duration, Usage: "measured window per mode"},
			&cli.StringFlag{Name: "bytes", Usage: "end the measured window after this many produced bytes instead (e.g. 4GiB)"},
			&cli.DurationFlag{Name: "warmup", Value: d.Warmup, Usage: "unmeasured run before the window"},
			&cli.StringFlag{Name: "rate", Usage: "open loop: total bytes per second, split evenly over the producers " +
				"(250000000, 250MiB or 250MiB/s; decimal units such as MB are refused as ambiguous)"},
			&cli.BoolFlag{Name: "seed-compare", Usage: fmt.Sprintf("the seed's shape at its %d bytes/s (250 MB/s), every IO mode; "+
				"flags given explicitly still apply", SeedRate)},
			&cli.StringFlag{Name: "modes", Value: strings.Join(allModes, ","), Usage: "comma list of columns (tiered: dsync-deferred uploading to --tier)"},
			&cli.StringFlag{Name: "tier", Usage: "the tiered column's object store, s3://BUCKET/PREFIX (credentials from the AWS environment)"},
			&cli.StringFlag{Name: "tier-read-rate", Value: "32MiB", Usage: "the tiered column reads each evicted segment once through the mount at this rate, as a consumer catching up (0: no reader)"},
			&cli.StringFlag{Name: "tier-options", Value: "local_retention_bytes=0", Usage: "more -o options of the tiered column, e.g. tier_endpoint=URL,local_retention_bytes=1GiB"},
			&cli.StringFlag{Name: "mount", Usage: "benchmark this existing segfs mount (one column) instead of mounting"},
			&cli.StringFlag{Name: "segment-size", Value: units.FormatSize(d.SegmentSize), Usage: "segment_size of the bench's mounts"},
			&cli.StringFlag{Name: "data", Value: os.TempDir(), Usage: "where temp data dirs go: a directory on the disk to measure"},
			&cli.StringFlag{Name: "json", Usage: "write every number and the configuration to this file"},
			&cli.StringFlag{Name: "plot", Usage: "write a latency-percentile chart (SVG) to this file"},
			progressFlag(),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress on stderr (--progress=never)"},
		},
		Action: func(c *cli.Context) error { return runBench(c, version) },
	}
}

func progressFlag() cli.Flag {
	return &cli.StringFlag{Name: "progress", Value: "auto", Usage: "auto: rewrite one status line on a terminal, " +
		"one complete line per update otherwise; always: rewrite in place even when stderr is not a terminal; never: no progress"}
}

func runBench(c *cli.Context, version string) error {
	return runReport(c, "bench", reportSteps[Config, *Report]{
		config: benchConfig,
		run:    func(ctx context.Context, cfg Config) (*Report, error) { return Run(ctx, cfg, version) },
		table:  WriteTable,
		files:  []reportFile[*Report]{{"json", WriteJSON}, {"plot", WritePlot}},
	})
}

// reportSteps are what a bench command does between parsing its flags and exiting.
type reportSteps[C, R any] struct {
	config func(*cli.Context) (C, error)
	run    func(context.Context, C) (R, error)
	table  func(io.Writer, R) error
	files  []reportFile[R]
	check  func(R) error // after every output is written; nil: none
}

// reportFile is an output written when its flag names a path.
type reportFile[R any] struct {
	flag  string
	write func(path string, r R) error
}

// runReport runs a bench command until SIGINT or SIGTERM, prints its table, writes the files asked
// for, and prefixes every error with the command's name.
func runReport[C, R any](c *cli.Context, name string, s reportSteps[C, R]) error {
	if c.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", name, c.Args().First())
	}
	cfg, err := s.config(c)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := s.run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := s.table(c.App.Writer, rep); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, f := range s.files {
		if p := c.String(f.flag); p != "" {
			if err := f.write(p, rep); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if s.check != nil {
		if err := s.check(rep); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// seedModes are the columns --seed-compare measures: every IO mode through a mount.
func seedModes() string {
	var names []string
	for _, m := range AllModes() {
		if m.Kind == KindFUSE {
			names = append(names, m.Name)
		}
	}
	return strings.Join(names, ",")
}

func benchConfig(c *cli.Context) (Config, error) {
	cfg := Defaults()
	cfg.Producers, cfg.Consumers = c.Int("producers"), c.Int("consumers")
	cfg.MessageSize, cfg.Batch = c.Int("message-size"), c.Int("batch")
	cfg.Duration, cfg.Warmup = c.Duration("duration"), c.Duration("warmup")
	cfg.Mount, cfg.DataDir = c.String("mount"), c.String("data")
	var err error
	if cfg.FsyncEvery, err = ParseFsync(c.String("fsync")); err != nil {
		return cfg, err
	}
	if s := c.String("bytes"); s != "" {
		if cfg.Bytes, err = units.ParseSize(s); err != nil {
			return cfg, fmt.Errorf("--bytes: %w", err)
		}
	}
	if cfg.SegmentSize, err = units.ParseSize(c.String("segment-size")); err != nil {
		return cfg, fmt.Errorf("--segment-size: %w", err)
	}
	modes := c.String("modes")
	if c.Bool("seed-compare") {
		cfg.Rate = SeedRate
		if !c.IsSet("modes") {
			modes = seedModes()
		}
	}
	if c.IsSet("rate") {
		if cfg.Rate, err = units.ParseRate(c.String("rate")); err != nil {
			return cfg, fmt.Errorf("--rate: %w", err)
		}
	}
	if cfg.Mount != "" && !c.IsSet("modes") {
		modes = "" // an existing mount is one column unless raw/limit are asked for
	}
	if cfg.Modes, err = ParseModes(modes, cfg.Mount); err != nil {
		return cfg, err
	}
	if t := c.String("tier"); t != "" {
		// A prefix of its own per run: the store may hold earlier runs' topics, which a mount on an
		// empty data dir would take up. The run deletes its objects at the end.
		cfg.Tier = fmt.Sprintf("tier=%s/segfs-bench-%d,%s", strings.TrimSuffix(t, "/"), time.Now().UnixNano(), c.String("tier-options"))
	}
	if s := c.String("tier-read-rate"); s != "0" {
		if cfg.TierReadRate, err = units.ParseRate(s); err != nil {
			return cfg, fmt.Errorf("--tier-read-rate: %w", err)
		}
	}
	if cfg.Binary, cfg.Progress, cfg.ProgressStyle, err = runnerOutputs(c); err != nil {
		return cfg, err
	}
	cfg.Log = c.App.ErrWriter
	return cfg, nil
}

// runnerOutputs is what both bench commands need to run: the segfs binary to mount with, and where
// progress goes and how.
func runnerOutputs(c *cli.Context) (string, io.Writer, ProgressStyle, error) {
	bin, err := os.Executable()
	if err != nil {
		return "", nil, 0, fmt.Errorf("find the segfs binary to mount with: %w", err)
	}
	w, style, err := progressOutput(c)
	return bin, w, style, err
}

// progressOutput reads --progress (and --quiet, its never) into where progress goes and how.
func progressOutput(c *cli.Context) (io.Writer, ProgressStyle, error) {
	mode := c.String("progress")
	if c.Bool("quiet") {
		if c.IsSet("progress") && mode != "never" {
			return nil, 0, fmt.Errorf("--quiet contradicts --progress=%s", mode)
		}
		mode = "never"
	}
	style, err := ParseProgress(mode, isTerminal(c.App.ErrWriter))
	if err != nil || style == ProgressNone {
		return nil, style, err
	}
	return c.App.ErrWriter, style, nil
}

// LimitsCommand is `segfs bench-limits`: how close segfs gets to the disk's and the kernel's limits, each
// target measured next to its baseline in the same run (fio and cat on the backing filesystem, the
// buffered column, fixed budgets) and printed as a ratio against the target ratio with PASS or MISS.
func LimitsCommand(version string) *cli.Command {
	d, q := DefaultLimits(), QuickLimits()
	var ids []string
	for i, t := range limitTargets() {
		ids = append(ids, fmt.Sprintf("%d %s", i+1, t.summary))
	}
	return &cli.Command{
		Name:  "bench-limits",
		Usage: "measure how close segfs gets to the disk's and the kernel's limits",
		Description: "Targets: " + strings.Join(ids, ", ") + ".\nNeeds root for the cold reads (drop_caches) " +
			"and fio for the append targets. --quick runs every target at smoke-test size.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Value: os.TempDir(), Usage: "where temp data dirs go: a directory on the disk to measure"},
			&cli.StringFlag{Name: "targets", Value: "all", Usage: fmt.Sprintf("comma list of targets to run (1-%d)", len(limitTargets()))},
			&cli.BoolFlag{Name: "quick", Usage: fmt.Sprintf("smoke-test sizes (dd %d MiB, %s loops, %s sealed segment, %d partitions)",
				q.DDCount, q.SyncDuration, units.FormatSize(q.SealedSize), q.RSSPartitions[len(q.RSSPartitions)-1])},
			&cli.IntFlag{Name: "repeat", Value: d.Repeat, Usage: "interleaved pairs (segfs side, baseline side) per target; the median counts"},
			&cli.BoolFlag{Name: "drop-caches", Value: true, Usage: "drop the page cache for the cold reads (sealed reads, start-up)"},
			&cli.IntFlag{Name: "dd-count", Value: d.DDCount, Usage: "large appends: MiB appended by dd (and written by fio)"},
			&cli.DurationFlag{Name: "sync-duration", Value: d.SyncDuration, Usage: "small durable appends: length of each write+fsync loop"},
			&cli.DurationFlag{Name: "bench-duration", Value: d.BenchDuration, Usage: "tail latency: segfs bench --duration"},
			&cli.DurationFlag{Name: "bench-warmup", Value: d.BenchWarmup, Usage: "tail latency: segfs bench --warmup"},
			&cli.StringFlag{Name: "sealed-size", Value: units.FormatSize(d.SealedSize), Usage: "sealed reads: size of the sealed segment"},
			&cli.StringFlag{Name: "rss-partitions", Value: joinCounts(d.RSSPartitions), Usage: "memory: partitions written once; a comma list measures each count (the scale curve)"},
			&cli.IntFlag{Name: "rss-write", Value: d.RSSWrite, Usage: "memory: bytes written to each partition"},
			&cli.DurationFlag{Name: "rss-idle", Value: d.RSSIdle, Usage: "memory: idle time before RSS is read"},
			&cli.StringFlag{Name: "max-dirty", Value: units.FormatSize(d.MaxDirty), Usage: "memory: the mount's max_dirty"},
			&cli.StringFlag{Name: "startup-partitions", Value: joinCounts(d.StartupParts), Usage: "start-up: partitions in the data dir; a comma list measures each count (the scale curve)"},
			&cli.IntFlag{Name: "startup-segments", Value: d.StartupSegs, Usage: "start-up: segments per partition"},
			&cli.StringFlag{Name: "startup-segment-size", Value: units.FormatSize(d.StartupSegLen), Usage: "start-up: size of each sealed (sparse) segment"},
			&cli.StringFlag{Name: "profile-dir", Usage: "every daemon writes CPU and heap profiles here at exit"},
			&cli.StringFlag{Name: "json", Usage: "write every number, the samples and the evidence to this file"},
			progressFlag(),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress on stderr (--progress=never)"},
		},
		Action: func(c *cli.Context) error { return runBenchLimits(c, version) },
	}
}

func joinCounts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func runBenchLimits(c *cli.Context, version string) error {
	return runReport(c, "bench-limits", reportSteps[LimitsConfig, *LimitsReport]{
		config: limitsConfig,
		run: func(ctx context.Context, cfg LimitsConfig) (*LimitsReport, error) {
			return RunLimits(ctx, cfg, version)
		},
		table: WriteLimitsTable,
		files: []reportFile[*LimitsReport]{{"json", WriteLimitsJSON}},
		// A MISS is a result; a measurement that failed is not, and must not look like one.
		check: (*LimitsReport).Err,
	})
}

// limitsConfig starts from the full or the quick sizes and applies the flags given explicitly.
func limitsConfig(c *cli.Context) (LimitsConfig, error) {
	cfg := DefaultLimits()
	if c.Bool("quick") {
		cfg = QuickLimits()
	}
	var err error
	if cfg.Targets, err = ParseTargets(c.String("targets")); err != nil {
		return cfg, err
	}
	cfg.DataDir, cfg.ProfileDir, cfg.DropCaches = c.String("data"), c.String("profile-dir"), c.Bool("drop-caches")
	ints := map[string]*int{"repeat": &cfg.Repeat, "dd-count": &cfg.DDCount, "rss-write": &cfg.RSSWrite,
		"startup-segments": &cfg.StartupSegs}
	for name, p := range ints {
		if c.IsSet(name) {
			*p = c.Int(name)
		}
	}
	counts := map[string]*[]int{"rss-partitions": &cfg.RSSPartitions, "startup-partitions": &cfg.StartupParts}
	for name, p := range counts {
		if c.IsSet(name) {
			if *p, err = ParseCounts(name, c.String(name)); err != nil {
				return cfg, err
			}
		}
	}
	durs := map[string]*time.Duration{"sync-duration": &cfg.SyncDuration, "bench-duration": &cfg.BenchDuration,
		"bench-warmup": &cfg.BenchWarmup, "rss-idle": &cfg.RSSIdle}
	for name, p := range durs {
		if c.IsSet(name) {
			*p = c.Duration(name)
		}
	}
	sizes := map[string]*int64{"sealed-size": &cfg.SealedSize, "max-dirty": &cfg.MaxDirty,
		"startup-segment-size": &cfg.StartupSegLen}
	for name, p := range sizes {
		if c.IsSet(name) {
			if *p, err = units.ParseSize(c.String(name)); err != nil {
				return cfg, fmt.Errorf("--%s: %w", name, err)
			}
		}
	}
	if cfg.Binary, cfg.Progress, cfg.ProgressStyle, err = runnerOutputs(c); err != nil {
		return cfg, err
	}
	cfg.Log = c.App.ErrWriter
	return cfg, nil
}
