package bench

import (
	"context"
	"fmt"
)

// The seed's deferred O_DIRECT+O_DSYNC column at its 250 MB/s, in ms: the tail to beat.
const (
	seedProdP99, seedProdP9999, seedProdStdDev = 5.41, 25.79, 0.39
	seedConsP99, seedConsP9999                 = 7.83, 31.92
)

// measureTailLatency runs `segfs bench --seed-compare --modes dsync-deferred,limit`: the seed's shape
// open-loop at its 250 MB/s, latencies from the scheduled send (coordinated omission corrected), and
// judges them against the seed's deferred column, then the producer's p99.99 against its own median.
func measureTailLatency(ctx context.Context, r *limitsRun, t *LimitTarget) error {
	cfg := Defaults()
	cfg.DataDir, cfg.Binary = r.cfg.DataDir, r.cfg.Binary
	cfg.Duration, cfg.Warmup = r.cfg.BenchDuration, r.cfg.BenchWarmup
	cfg.Rate = SeedRate
	// The limit column (fio's O_DIRECT writes, when installed) is the disk's own tail: a target that
	// fio misses on this machine cannot be met by anything on top of the same disk.
	cfg.Modes = nil
	for _, m := range AllModes() {
		if m.Name == "dsync-deferred" || m.Name == "limit" {
			cfg.Modes = append(cfg.Modes, m)
		}
	}
	cfg.Progress, cfg.ProgressStyle, cfg.Log = r.cfg.Progress, r.cfg.ProgressStyle, r.logw
	if r.cfg.ProfileDir != "" {
		cfg.DaemonEnv = func(m Mode) []string { return r.profileEnv("target3-" + m.Name) }
	}
	r.pr.note(fmt.Sprintf("segfs bench --seed-compare --modes dsync-deferred,limit --duration %s --warmup %s", cfg.Duration, cfg.Warmup))
	r.pr.done()
	rep, err := Run(ctx, cfg, "")
	if err != nil {
		return err
	}
	byName := map[string]*ModeResult{}
	for i := range rep.Results {
		byName[rep.Results[i].Mode.Name] = &rep.Results[i]
	}
	def := byName["dsync-deferred"]
	if def == nil || def.ProducerLatency == nil || def.ConsumerLatency == nil {
		return fmt.Errorf("segfs bench did not measure dsync-deferred: %+v", rep.Results)
	}
	p, c := def.ProducerLatency, def.ConsumerLatency
	t.Checks = append(t.Checks,
		newCheck("producer p99 at 250 MB/s (corrected) vs the seed's", "ms", p.P99, seedProdP99, "<=", 1),
		newCheck("producer p99.99 at 250 MB/s (corrected) vs the seed's", "ms", p.P9999, seedProdP9999, "<=", 1),
		newCheck("producer std dev at 250 MB/s (corrected) vs the seed's", "ms", p.StdDev, seedProdStdDev, "<=", 1),
		newCheck("consumer p99 at 250 MB/s vs the seed's", "ms", c.P99, seedConsP99, "<=", 1),
		newCheck("consumer p99.99 at 250 MB/s vs the seed's", "ms", c.P9999, seedConsP9999, "<=", 1),
		newCheck("producer p99.99 vs producer p50 at 250 MB/s (corrected)", "ms", p.P9999, p.P50, "<=", 10))
	for i := range t.Checks {
		t.Checks[i].Commands = []string{fmt.Sprintf("segfs bench --seed-compare --modes dsync-deferred,limit --duration %s --warmup %s",
			cfg.Duration, cfg.Warmup)}
	}
	if lag := def.SendLag; lag != nil {
		t.Checks[2].Note = fmt.Sprintf("the load generator's own send lag: p50 %s, p99 %s, max %s", formatMs(lag.P50), formatMs(lag.P99), formatMs(lag.Max))
	}
	if u := def.ProducerLatencyUncorrected; u != nil {
		t.Checks[1].Note = fmt.Sprintf("uncorrected (from the actual send): p99 %s, p99.99 %s, std dev %s", formatMs(u.P99), formatMs(u.P9999), formatMs(u.StdDev))
	}
	if lim := byName["limit"]; lim != nil && lim.ProducerLatency != nil && lim.ProducerLatency.P50 > 0 {
		l := lim.ProducerLatency
		t.Details["limit_p9999_over_p50"] = l.P9999 / l.P50
		t.Checks[5].Note = fmt.Sprintf("fio on the same disk: p99.99 = %.1f × p50", l.P9999/l.P50)
	}
	if def.Daemon != nil && def.Consumer != nil && def.Consumer.Bytes > 0 {
		// Consumers of `current` are served by the daemon: how much of what they read came from disk.
		t.Details["daemon_disk_read_per_consumed_byte"] = float64(def.Daemon.ReadBytes) / float64(def.Consumer.Bytes)
	}
	t.Details["bench_config"] = rep.Config
	t.Details["bench_results"] = rep.Results
	return nil
}
