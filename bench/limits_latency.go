package bench

import (
	"context"
	"fmt"
)

// measureTailLatency runs `segfs bench` with its defaults on the buffered and dsync-deferred columns only, and
// judges the tail of the default mode against its own median and its consumers against buffered's.
func measureTailLatency(ctx context.Context, r *limitsRun, t *LimitTarget) error {
	cfg := Defaults()
	cfg.DataDir, cfg.Binary = r.cfg.DataDir, r.cfg.Binary
	cfg.Duration, cfg.Warmup = r.cfg.BenchDuration, r.cfg.BenchWarmup
	// The limit column (fio's O_DIRECT writes, when installed) is the disk's own tail: a target that
	// fio misses on this machine cannot be met by anything on top of the same disk.
	cfg.Modes = nil
	for _, m := range AllModes() {
		if m.Name == "buffered" || m.Name == "dsync-deferred" || m.Name == "limit" {
			cfg.Modes = append(cfg.Modes, m)
		}
	}
	cfg.Progress, cfg.ProgressStyle, cfg.Log = r.cfg.Progress, r.cfg.ProgressStyle, r.logw
	if r.cfg.ProfileDir != "" {
		cfg.DaemonEnv = func(m Mode) []string { return r.profileEnv("target3-" + m.Name) }
	}
	r.pr.note(fmt.Sprintf("segfs bench --modes buffered,dsync-deferred,limit --duration %s --warmup %s", cfg.Duration, cfg.Warmup))
	r.pr.done()
	rep, err := Run(ctx, cfg, "")
	if err != nil {
		return err
	}
	byName := map[string]*ModeResult{}
	for i := range rep.Results {
		byName[rep.Results[i].Mode.Name] = &rep.Results[i]
	}
	def, buf := byName["dsync-deferred"], byName["buffered"]
	if def == nil || buf == nil || def.ProducerLatency == nil || def.ConsumerLatency == nil || buf.ConsumerLatency == nil {
		return fmt.Errorf("segfs bench did not measure both columns: %+v", rep.Results)
	}
	p := def.ProducerLatency
	t.Checks = append(t.Checks,
		newCheck("producer p99.99 vs producer p50 (dsync-deferred)", "ms", p.P9999, p.P50, "<=", 10),
		newCheck("producer std dev vs producer p50 (dsync-deferred)", "ms", p.StdDev, p.P50, "<=", 1),
		newCheck("consumer p99, dsync-deferred vs buffered", "ms", def.ConsumerLatency.P99, buf.ConsumerLatency.P99, "<=", 1.2))
	// Consumers of `current` are served by the daemon; this says how much of what they read it had to
	// fetch from the disk rather than from memory or the page cache.
	diskPerRead := map[string]float64{}
	for _, r := range []*ModeResult{buf, def} {
		if r.Daemon != nil && r.Consumer != nil && r.Consumer.Bytes > 0 {
			diskPerRead[r.Mode.Name] = float64(r.Daemon.ReadBytes) / float64(r.Consumer.Bytes)
		}
	}
	t.Details["daemon_disk_read_per_consumed_byte"] = diskPerRead
	if lim := byName["limit"]; lim != nil && lim.ProducerLatency != nil && lim.ProducerLatency.P50 > 0 {
		l := lim.ProducerLatency
		t.Details["limit_p9999_over_p50"], t.Details["limit_stddev_over_p50"] = l.P9999/l.P50, l.StdDev/l.P50
		t.Checks[0].Note = fmt.Sprintf("fio on the same disk: p99.99 = %.1f × p50", l.P9999/l.P50)
		t.Checks[1].Note = fmt.Sprintf("fio on the same disk: std dev = %.2f × p50", l.StdDev/l.P50)
	}
	t.Details["bench_config"] = rep.Config
	t.Details["bench_results"] = rep.Results
	return nil
}
