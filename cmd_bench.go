package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"segfs/bench"
)

// benchCommand is `segfs bench`: the seed's table (throughput and latency percentiles per IO mode) measured
// through real mounts, side by side with plain files (raw) and fio's O_DIRECT limit.
func benchCommand() *cli.Command {
	d := bench.Defaults()
	var allModes []string
	for _, m := range d.Modes {
		allModes = append(allModes, m.Name)
	}
	return &cli.Command{
		Name:  "bench",
		Usage: "measure throughput and latency percentiles per IO mode through real mounts",
		Description: "Mounts segfs on a temp dir for each mode (or uses --mount), runs producers appending\n" +
			"checksummed messages and consumers tailing them, and prints a markdown table. Fails if any\n" +
			"consumer reads anything but exactly the bytes its producer wrote.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "producers", Value: d.Producers, Usage: "producers, one partition each"},
			&cli.IntFlag{Name: "consumers", Value: d.Consumers, Usage: "consumers; consumer i tails partition i mod producers"},
			&cli.IntFlag{Name: "message-size", Value: d.MessageSize, Usage: "bytes per message"},
			&cli.IntFlag{Name: "batch", Value: d.Batch, Usage: "messages per write()"},
			&cli.StringFlag{Name: "fsync", Value: "never", Usage: "fsync after every write, after every N writes, or never"},
			&cli.DurationFlag{Name: "duration", Value: d.Duration, Usage: "measured window per mode"},
			&cli.StringFlag{Name: "bytes", Usage: "end the measured window after this many produced bytes instead (e.g. 4GiB)"},
			&cli.DurationFlag{Name: "warmup", Value: d.Warmup, Usage: "unmeasured run before the window"},
			&cli.StringFlag{Name: "modes", Value: strings.Join(allModes, ","), Usage: "comma list of columns"},
			&cli.StringFlag{Name: "mount", Usage: "benchmark this existing segfs mount (one column) instead of mounting"},
			&cli.StringFlag{Name: "segment-size", Value: bench.FormatSize(d.SegmentSize), Usage: "segment_size of the bench's mounts"},
			&cli.StringFlag{Name: "data", Value: os.TempDir(), Usage: "where temp data dirs go: a directory on the disk to measure"},
			&cli.StringFlag{Name: "json", Usage: "write every number and the configuration to this file"},
			&cli.StringFlag{Name: "plot", Usage: "write a latency-percentile chart (SVG) to this file"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress line on stderr"},
		},
		Action: runBench,
	}
}

func runBench(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", c.Args().First())
	}
	cfg, err := benchConfig(c)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg, version)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := bench.WriteTable(c.App.Writer, rep); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if p := c.String("json"); p != "" {
		if err := bench.WriteJSON(p, rep); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	if p := c.String("plot"); p != "" {
		if err := bench.WritePlot(p, rep); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}

func benchConfig(c *cli.Context) (bench.Config, error) {
	cfg := bench.Defaults()
	cfg.Producers, cfg.Consumers = c.Int("producers"), c.Int("consumers")
	cfg.MessageSize, cfg.Batch = c.Int("message-size"), c.Int("batch")
	cfg.Duration, cfg.Warmup = c.Duration("duration"), c.Duration("warmup")
	cfg.Mount, cfg.DataDir = c.String("mount"), c.String("data")
	var err error
	if cfg.FsyncEvery, err = bench.ParseFsync(c.String("fsync")); err != nil {
		return cfg, err
	}
	if s := c.String("bytes"); s != "" {
		if cfg.Bytes, err = bench.ParseSize(s); err != nil {
			return cfg, fmt.Errorf("--bytes: %w", err)
		}
	}
	if cfg.SegmentSize, err = bench.ParseSize(c.String("segment-size")); err != nil {
		return cfg, fmt.Errorf("--segment-size: %w", err)
	}
	modes := c.String("modes")
	if cfg.Mount != "" && !c.IsSet("modes") {
		modes = "" // an existing mount is one column unless raw/limit are asked for
	}
	if cfg.Modes, err = bench.ParseModes(modes, cfg.Mount); err != nil {
		return cfg, err
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
