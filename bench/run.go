package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"segfs/units"
)

// Run measures every configured mode in turn and returns the report. It fails on the first column whose
// consumers did not read exactly what the producers wrote, or whose mount did not work; a missing fio only
// skips the limit column.
func Run(ctx context.Context, cfg Config, version string) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	if t := fsType(cfg.DataDir); t == "tmpfs" || t == "ramfs" {
		fmt.Fprintf(logw, "note: --data %s is on %s: every column will measure memory, not a disk\n", cfg.DataDir, t)
	}
	rep := &Report{Tool: "segfs bench", Version: version, StartedAt: time.Now().UTC(), Command: os.Args,
		Machine: describeMachine(cfg.DataDir), Config: reportConfig(cfg)}
	for _, m := range cfg.Modes {
		if m.Kind == KindLimit {
			if _, err := exec.LookPath("fio"); err != nil {
				rep.Skipped = append(rep.Skipped, Skipped{Mode: m.Name, Reason: "fio is not installed"})
				fmt.Fprintln(logw, "note: fio is not on PATH; skipping the limit column")
				continue
			}
		}
		res, err := runMode(ctx, &cfg, m, logw)
		if err != nil {
			return nil, fmt.Errorf("mode %s: %w", m.Name, err)
		}
		rep.Results = append(rep.Results, *res)
	}
	return rep, nil
}

func runMode(ctx context.Context, cfg *Config, m Mode, logw io.Writer) (*ModeResult, error) {
	pr := newProgress(cfg.Progress, cfg.ProgressStyle, m.Name)
	if m.Kind == KindMount {
		topic := filepath.Join(cfg.Mount, fmt.Sprintf("bench-%d-%d", os.Getpid(), time.Now().UnixNano()))
		defer func() {
			if err := os.RemoveAll(topic); err != nil {
				fmt.Fprintf(logw, "note: remove bench topic %s: %v\n", topic, err)
			}
		}()
		return runWorkload(ctx, cfg, m, topic, pr)
	}
	dir, err := os.MkdirTemp(cfg.DataDir, "segfs-bench-"+m.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("temp dir under --data: %w", err)
	}
	defer os.RemoveAll(dir)
	switch m.Kind {
	case KindRaw:
		return runWorkload(ctx, cfg, m, filepath.Join(dir, "bench"), pr)
	case KindLimit:
		res, err := runFio(ctx, cfg, dir, pr)
		if res != nil {
			res.Mode = m
		}
		return res, err
	}
	return runMounted(ctx, cfg, m, dir, pr)
}

// runMounted mounts segfs with the mode's options on a fresh data dir, runs the workload and unmounts. An
// unmount failure fails the column too: the daemon must end cleanly for its numbers to count.
func runMounted(ctx context.Context, cfg *Config, m Mode, dir string, pr *progress) (res *ModeResult, err error) {
	if cfg.Binary == "" {
		return nil, errors.New("no segfs binary to mount with")
	}
	data, mnt := filepath.Join(dir, "data"), filepath.Join(dir, "mnt")
	for _, d := range []string{data, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("io=%s,persist=%s,segment_size=%s,partitions=%d", m.IO, m.Persist,
		units.FormatSize(cfg.SegmentSize), cfg.Producers)
	pr.note("mounting segfs -o " + opts)
	var env []string
	if cfg.DaemonEnv != nil {
		env = cfg.DaemonEnv(m)
	}
	if m.Tiered {
		opts += "," + cfg.Tier
		// Runs after the unmount below: the cold reads need a fresh daemon.
		defer func() {
			if err == nil {
				res.Tier, err = coldReads(ctx, cfg, data, mnt, opts, res.Tier, pr)
			}
		}()
	}
	mo, err := mountSegfs(ctx, cfg.Binary, data, mnt, opts, env...)
	if err != nil {
		pr.done()
		return nil, err
	}
	defer func() {
		if uerr := mo.unmount(); uerr != nil && err == nil {
			res, err = nil, uerr
		}
	}()
	var reader *remoteReader
	if m.Tiered && cfg.TierReadRate > 0 {
		reader = startRemoteReader(data, filepath.Join(mnt, "bench"), cfg.TierReadRate)
	}
	// The daemon's /proc is evidence, not a measurement: a column without it is still a column.
	before, perr := readProc(mo.cmd.Process.Pid)
	res, err = runWorkload(ctx, cfg, m, filepath.Join(mnt, "bench"), pr)
	if reader != nil {
		if t := reader.stop(); res != nil {
			res.Tier = t
		}
	}
	if res != nil {
		res.MountOptions = opts
		if after, aerr := readProc(mo.cmd.Process.Pid); perr == nil && aerr == nil {
			d := before.delta(after)
			res.Daemon = &d
		}
	}
	return res, err
}

// runWorkload creates the topic's partitions under topicDir and runs producers and consumers on them.
func runWorkload(ctx context.Context, cfg *Config, m Mode, topicDir string, pr *progress) (*ModeResult, error) {
	if err := prepareTopic(topicDir, cfg.Producers, m.Kind == KindRaw); err != nil {
		pr.done()
		return nil, err
	}
	r, err := newWorkload(cfg, topicDir, pr).run(ctx)
	if err != nil {
		return nil, err
	}
	return toResult(cfg, m, r), nil
}

// prepareTopic makes topicDir/0..n-1. On segfs, mkdir of the topic may already create partitions (the
// partitions option), so existing ones are fine; each must then have its `current`. Raw mode creates the
// `current` files itself.
func prepareTopic(topicDir string, n int, raw bool) error {
	if err := os.Mkdir(topicDir, 0o755); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	for p := range n {
		dir := filepath.Join(topicDir, strconv.Itoa(p))
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create partition %d: %w", p, err)
		}
		current := filepath.Join(dir, "current")
		if raw {
			if err := os.WriteFile(current, nil, 0o644); err != nil {
				return fmt.Errorf("create %s: %w", current, err)
			}
		} else if _, err := os.Stat(current); err != nil {
			return fmt.Errorf("partition %d has no current file: %w", p, err)
		}
	}
	return nil
}

func toResult(cfg *Config, m Mode, r *runResult) *ModeResult {
	res := &ModeResult{Mode: m, WindowSeconds: r.window.Seconds(),
		Producer:                   &Throughput{Bytes: r.prodBytes, MBps: mbps(r.prodBytes, r.window)},
		ProducerLatency:            summarize(r.prodHist),
		ProducerLatencyUncorrected: summarize(r.prodRaw),
		SendLag:                    summarize(r.sendLag),
		ConsumerLatency:            summarize(r.consHist),
		EndToEnd:                   summarize(r.e2e),
		EmptyPolls:                 r.emptyPolls,
	}
	agg := res.Producer.MBps
	if cfg.Consumers > 0 {
		res.Consumer = &Throughput{Bytes: r.consBytes, MBps: mbps(r.consBytes, r.window)}
		agg += res.Consumer.MBps
		res.Verification = &Verification{Exact: true, Bytes: r.verifiedBytes, Messages: r.verifiedMsgs,
			ExpectedBytes: r.expectedBytes}
	}
	res.AggregateMBps = &agg
	return res
}
