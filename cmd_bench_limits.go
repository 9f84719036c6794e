package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"segfs/bench"
)

// benchLimitsCommand is `segfs bench-limits`: issue 7's targets, each measured next to its baseline in
// the same run (fio and cat on the backing filesystem, the buffered column, fixed budgets), printed as
// ratios against the target ratios with PASS or MISS.
func benchLimitsCommand() *cli.Command {
	d, q := bench.DefaultLimits(), bench.QuickLimits()
	return &cli.Command{
		Name:  "bench-limits",
		Usage: "measure how close segfs gets to the disk's and the kernel's limits (issue 7's targets)",
		Description: "Targets: 1 dd appends vs fio O_DIRECT writes, 2 write+fsync loop vs fio O_SYNC IOPS,\n" +
			"3 segfs bench tail latency, 4 cat of a sealed segment vs the backing file (cold and warm),\n" +
			"5 RSS with many idle partitions, 6 start-up time of a big data dir. Needs root for the cold\n" +
			"reads (drop_caches) and fio for targets 1 and 2. --quick runs every target at smoke-test size.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Value: os.TempDir(), Usage: "where temp data dirs go: a directory on the disk to measure"},
			&cli.StringFlag{Name: "targets", Value: "all", Usage: "comma list of targets to run (1-6)"},
			&cli.BoolFlag{Name: "quick", Usage: fmt.Sprintf("smoke-test sizes (dd %d MiB, %s loops, %s sealed segment, %d partitions)",
				q.DDCount, q.SyncDuration, bench.FormatSize(q.SealedSize), q.RSSPartitions)},
			&cli.IntFlag{Name: "repeat", Value: d.Repeat, Usage: "repetitions per side for targets 1, 2, 4, 6; the median counts"},
			&cli.BoolFlag{Name: "drop-caches", Value: true, Usage: "drop the page cache for the cold reads of targets 4 and 6"},
			&cli.IntFlag{Name: "dd-count", Value: d.DDCount, Usage: "target 1: MiB appended by dd"},
			&cli.DurationFlag{Name: "sync-duration", Value: d.SyncDuration, Usage: "target 2: length of each write+fsync loop"},
			&cli.DurationFlag{Name: "bench-duration", Value: d.BenchDuration, Usage: "target 3: segfs bench --duration"},
			&cli.DurationFlag{Name: "bench-warmup", Value: d.BenchWarmup, Usage: "target 3: segfs bench --warmup"},
			&cli.StringFlag{Name: "sealed-size", Value: bench.FormatSize(d.SealedSize), Usage: "target 4: size of the sealed segment"},
			&cli.IntFlag{Name: "rss-partitions", Value: d.RSSPartitions, Usage: "target 5: partitions written once"},
			&cli.IntFlag{Name: "rss-write", Value: d.RSSWrite, Usage: "target 5: bytes written to each partition"},
			&cli.DurationFlag{Name: "rss-idle", Value: d.RSSIdle, Usage: "target 5: idle time before RSS is read"},
			&cli.StringFlag{Name: "max-dirty", Value: bench.FormatSize(d.MaxDirty), Usage: "target 5: the mount's max_dirty"},
			&cli.IntFlag{Name: "startup-partitions", Value: d.StartupParts, Usage: "target 6: partitions in the data dir"},
			&cli.IntFlag{Name: "startup-segments", Value: d.StartupSegs, Usage: "target 6: segments per partition"},
			&cli.StringFlag{Name: "startup-segment-size", Value: bench.FormatSize(d.StartupSegLen), Usage: "target 6: size of each sealed (sparse) segment"},
			&cli.StringFlag{Name: "profile-dir", Usage: "every daemon writes CPU and heap profiles here at exit"},
			&cli.StringFlag{Name: "json", Usage: "write every number, the samples and the evidence to this file"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress line on stderr"},
		},
		Action: runBenchLimits,
	}
}

func runBenchLimits(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("bench-limits: unexpected argument %q", c.Args().First())
	}
	cfg, err := benchLimitsConfig(c)
	if err != nil {
		return fmt.Errorf("bench-limits: %w", err)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.RunLimits(ctx, cfg, version)
	if err != nil {
		return fmt.Errorf("bench-limits: %w", err)
	}
	if err := bench.WriteLimitsTable(c.App.Writer, rep); err != nil {
		return fmt.Errorf("bench-limits: %w", err)
	}
	if p := c.String("json"); p != "" {
		if err := bench.WriteLimitsJSON(p, rep); err != nil {
			return fmt.Errorf("bench-limits: %w", err)
		}
	}
	// A MISS is a result; a measurement that failed is not, and must not look like one.
	if err := rep.Err(); err != nil {
		return fmt.Errorf("bench-limits: %w", err)
	}
	return nil
}

// benchLimitsConfig starts from the full or the quick sizes and applies the flags given explicitly.
func benchLimitsConfig(c *cli.Context) (bench.LimitsConfig, error) {
	cfg := bench.DefaultLimits()
	if c.Bool("quick") {
		cfg = bench.QuickLimits()
	}
	var err error
	if cfg.Targets, err = bench.ParseTargets(c.String("targets")); err != nil {
		return cfg, err
	}
	cfg.DataDir, cfg.ProfileDir, cfg.DropCaches = c.String("data"), c.String("profile-dir"), c.Bool("drop-caches")
	ints := map[string]*int{"repeat": &cfg.Repeat, "dd-count": &cfg.DDCount, "rss-partitions": &cfg.RSSPartitions,
		"rss-write": &cfg.RSSWrite, "startup-partitions": &cfg.StartupParts, "startup-segments": &cfg.StartupSegs}
	for name, p := range ints {
		if c.IsSet(name) {
			*p = c.Int(name)
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
			if *p, err = bench.ParseSize(c.String(name)); err != nil {
				return cfg, fmt.Errorf("--%s: %w", name, err)
			}
		}
	}
	if cfg.Binary, err = os.Executable(); err != nil {
		return cfg, fmt.Errorf("find the segfs binary to mount with: %w", err)
	}
	if !c.Bool("quiet") {
		cfg.Progress = c.App.ErrWriter
	}
	cfg.Log = c.App.ErrWriter
	return cfg, nil
}
