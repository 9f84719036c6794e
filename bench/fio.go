package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// FioInfo records how the limit column was measured.
type FioInfo struct {
	BlockSize int      `json:"block_size"`
	Jobs      int      `json:"jobs"`
	Args      []string `json:"args"`
}

// fioArgs builds a sequential O_DIRECT write with one job per producer at the producer's write size, so the
// column is the disk's answer to the same request stream without FUSE, Go or the page cache. O_DIRECT needs
// block-aligned sizes, so the batch size is rounded up to 4 KiB.
func fioArgs(cfg *Config, dir, out string) ([]string, int) {
	bs := (cfg.BatchBytes() + 4095) &^ 4095
	args := []string{"--name=limit", "--directory=" + dir, "--rw=write", "--ioengine=psync", "--direct=1",
		"--bs=" + strconv.Itoa(bs), "--numjobs=" + strconv.Itoa(cfg.Producers), "--group_reporting",
		"--output-format=json", "--output=" + out, "--percentile_list=50:90:99:99.9:99.99"}
	if cfg.FsyncEvery > 0 {
		args = append(args, "--fsync="+strconv.Itoa(cfg.FsyncEvery))
	}
	if cfg.Rate > 0 {
		// fio's own rate limit, evenly spaced; its latency is from the actual submission (uncorrected).
		args = append(args, "--rate="+strconv.FormatInt(max(cfg.Rate/int64(cfg.Producers), 1), 10))
	}
	if cfg.Bytes > 0 {
		per := (cfg.Bytes/int64(cfg.Producers) + int64(bs) - 1) / int64(bs) * int64(bs)
		return append(args, "--size="+strconv.FormatInt(per, 10)), bs
	}
	// Time based: each job's file is sized so it rarely wraps, without taking more than a quarter of the
	// free space between all jobs.
	size := int64(4 << 30)
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil {
		size = min(size, int64(st.Bavail)*st.Bsize/4/int64(cfg.Producers))
	}
	size = max(size/int64(bs), 1) * int64(bs)
	args = append(args, "--size="+strconv.FormatInt(size, 10), "--time_based",
		fmt.Sprintf("--runtime=%dms", max(cfg.Duration.Milliseconds(), 1)))
	if cfg.Warmup > 0 {
		args = append(args, fmt.Sprintf("--ramp_time=%dms", cfg.Warmup.Milliseconds()))
	}
	return args, bs
}

// runFio measures the limit column in dir (on the data filesystem) and removes its files.
func runFio(ctx context.Context, cfg *Config, dir string, pr *progress) (*ModeResult, error) {
	out := filepath.Join(dir, "fio.json")
	args, bs := fioArgs(cfg, dir, out)
	pr.note(fmt.Sprintf("fio: %d jobs, sequential O_DIRECT writes of %d bytes", cfg.Producers, bs))
	defer pr.done()
	start := time.Now()
	res, err := execFio(ctx, args, out)
	if err != nil {
		return nil, err
	}
	res.Fio = &FioInfo{BlockSize: bs, Jobs: cfg.Producers, Args: args}
	pr.update("done", time.Since(start), time.Since(start), res.Producer.MBps, -1)
	return res, nil
}

// execFio runs fio with args, which must write its JSON report to out, and parses that report.
func execFio(ctx context.Context, args []string, out string) (*ModeResult, error) {
	cmd := exec.CommandContext(ctx, "fio", args...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("fio %v: %w: %s", args, err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("read fio output: %w", err)
	}
	return parseFio(raw)
}

// fioOutput is the part of `fio --output-format=json` the limit column uses.
type fioOutput struct {
	Jobs []struct {
		Write struct {
			IOBytes int64   `json:"io_bytes"`
			BW      float64 `json:"bw_bytes"` // bytes per second
			Runtime int64   `json:"runtime"`  // ms
			Clat    struct {
				N          int64              `json:"N"`
				Max        float64            `json:"max"`
				Mean       float64            `json:"mean"`
				StdDev     float64            `json:"stddev"`
				Percentile map[string]float64 `json:"percentile"`
			} `json:"clat_ns"`
		} `json:"write"`
	} `json:"jobs"`
}

// parseFio turns fio's group-reported JSON into a column: throughput and completion-latency percentiles.
func parseFio(raw []byte) (*ModeResult, error) {
	var out fioOutput
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("parse fio JSON: %w", err)
	}
	if len(out.Jobs) != 1 {
		return nil, fmt.Errorf("fio JSON: want 1 group-reported job, got %d", len(out.Jobs))
	}
	w := out.Jobs[0].Write
	pct := func(p float64) (float64, error) {
		v, ok := w.Clat.Percentile[strconv.FormatFloat(p, 'f', 6, 64)]
		if !ok {
			return 0, fmt.Errorf("fio JSON: no clat_ns percentile %v", p)
		}
		return nsToMs(v), nil
	}
	lat := &Latency{Count: w.Clat.N, Max: nsToMs(w.Clat.Max), Mean: nsToMs(w.Clat.Mean), StdDev: nsToMs(w.Clat.StdDev)}
	dst := []*float64{&lat.P50, &lat.P90, &lat.P99, &lat.P999, &lat.P9999}
	for i, p := range []float64{50, 90, 99, 99.9, 99.99} { // as asked for with --percentile_list
		v, err := pct(p)
		if err != nil {
			return nil, err
		}
		*dst[i] = v
		lat.Curve = append(lat.Curve, CurvePoint{Percentile: p, Ms: v})
	}
	return &ModeResult{
		WindowSeconds:   float64(w.Runtime) / 1e3,
		Producer:        &Throughput{Bytes: w.IOBytes, MBps: w.BW / 1e6},
		ProducerLatency: lat,
	}, nil
}
