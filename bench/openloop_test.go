package bench

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func TestScheduleInterval(t *testing.T) {
	cfg := Defaults() // 4 producers, 1 MB writes
	if got := scheduleInterval(&cfg); got != 0 {
		t.Errorf("closed loop interval = %v; want 0", got)
	}
	cfg.Rate = SeedRate // 250 MB/s over 4 producers: 62.5 MB/s each, one 1 MB write every 16 ms
	if got := scheduleInterval(&cfg); got != 16*time.Millisecond {
		t.Errorf("interval at 250 MB/s = %v; want 16ms", got)
	}
}

// TestOpenLoopRunSendsAtTheRate runs a raw workload at a rate far below what plain files take, and checks
// that the producers held the schedule and that latency from the scheduled send is never below the latency
// from the actual send.
func TestOpenLoopRunSendsAtTheRate(t *testing.T) {
	cfg := smallConfig(t) // 2 producers, 10,000-byte writes
	cfg.Rate = 2_000_000  // 100 writes per second per producer
	rep, err := Run(context.Background(), cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.ProducerLatencyUncorrected == nil || r.ProducerLatency == nil {
		t.Fatalf("open loop must report both latencies: %+v", r)
	}
	if r.SendLag == nil || r.SendLag.Count == 0 || r.SendLag.Count > r.ProducerLatency.Count {
		t.Errorf("open loop must report the send lag of the writes that fell due while idle: %+v", r.SendLag)
	}
	if r.ProducerLatency.Count != r.ProducerLatencyUncorrected.Count {
		t.Errorf("corrected %d and uncorrected %d latencies for the same writes", r.ProducerLatency.Count, r.ProducerLatencyUncorrected.Count)
	}
	c, u := r.ProducerLatency, r.ProducerLatencyUncorrected
	for _, pair := range [][2]float64{{c.P50, u.P50}, {c.P99, u.P99}, {c.Max, u.Max}} {
		if pair[0] < pair[1] {
			t.Errorf("corrected %v ms < uncorrected %v ms", pair[0], pair[1])
		}
	}
	// Closed loop, plain files take hundreds of MB/s here: a rate run far above 2 MB/s did not follow its
	// schedule. The bound is loose on purpose: this checks the schedule exists, not its precision.
	if got := r.Producer.MBps; got < 1 || got > 3 {
		t.Errorf("producers sent %.2f MB/s on a 2 MB/s schedule", got)
	}
	if v := r.Verification; v == nil || !v.Exact || v.Bytes != v.ExpectedBytes {
		t.Errorf("verification %+v", v)
	}
	var b strings.Builder
	if err := WriteTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(corrected)") || !strings.Contains(b.String(), "(uncorrected)") {
		t.Errorf("table lacks the corrected and uncorrected groups:\n%s", b.String())
	}
}

// TestSleepUntil: the open loop's clock never wakes a producer before the write is due, and a closed
// stop channel ends the wait at once.
func TestSleepUntil(t *testing.T) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for _, d := range []time.Duration{0, 300 * time.Microsecond, 5 * time.Millisecond} {
		due := monoNow() + int64(d)
		if !sleepUntil(due, nil, timer) {
			t.Fatalf("sleepUntil(+%v) reported a stop", d)
		}
		if now := monoNow(); now < due {
			t.Errorf("sleepUntil(+%v) returned %v early", d, time.Duration(due-now))
		}
	}
	stop := make(chan struct{})
	close(stop)
	if sleepUntil(monoNow()+int64(time.Hour), stop, timer) {
		t.Error("sleepUntil ignored a closed stop channel")
	}
}

// parseBench parses args as `segfs bench` would and returns the Config it builds.
func parseBench(t *testing.T, args ...string) (Config, error) {
	t.Helper()
	cmd := Command("test")
	set := flag.NewFlagSet("bench", flag.ContinueOnError)
	for _, f := range cmd.Flags {
		if err := f.Apply(set); err != nil {
			t.Fatal(err)
		}
	}
	if err := set.Parse(args); err != nil {
		return Config{}, err
	}
	app := cli.NewApp()
	app.ErrWriter = &strings.Builder{}
	return benchConfig(cli.NewContext(app, set, nil))
}

func TestBenchRateFlag(t *testing.T) {
	for in, want := range map[string]int64{"250000000": 250e6, "250MiB": 250 << 20, "250MiB/s": 250 << 20} {
		cfg, err := parseBench(t, "--rate", in)
		if err != nil || cfg.Rate != want {
			t.Errorf("--rate %s: %d, %v; want %d", in, cfg.Rate, err, want)
		}
	}
	for in, msg := range map[string]string{"0": "greater than 0", "-1M": "negative", "fast": "want an integer",
		"250MB/s": "ambiguous", "1.5G": "fractions"} {
		_, err := parseBench(t, "--rate", in)
		if err == nil || !strings.Contains(err.Error(), "--rate") || !strings.Contains(err.Error(), msg) {
			t.Errorf("--rate %s: %v; want an error naming --rate and saying %q", in, err, msg)
		}
	}
	cfg, err := parseBench(t)
	if err != nil || cfg.Rate != 0 || len(cfg.Modes) != len(AllModes()) {
		t.Errorf("default run changed: rate %d, %d modes, %v", cfg.Rate, len(cfg.Modes), err)
	}
}

func TestSeedCompare(t *testing.T) {
	cfg, err := parseBench(t, "--seed-compare")
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	if cfg.Rate != SeedRate || cfg.Producers != d.Producers || cfg.Consumers != d.Consumers ||
		cfg.MessageSize != d.MessageSize || cfg.Batch != d.Batch {
		t.Errorf("--seed-compare: %+v", cfg)
	}
	var names []string
	for _, m := range cfg.Modes {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, ","); got != "buffered,direct,dsync-inline,dsync-deferred" {
		t.Errorf("--seed-compare modes = %s; want every IO mode", got)
	}
	if cfg, err := parseBench(t, "--seed-compare", "--rate", "100MiB", "--modes", "direct"); err != nil ||
		cfg.Rate != 100<<20 || len(cfg.Modes) != 1 {
		t.Errorf("explicit flags must override the preset: %+v, %v", cfg, err)
	}
}

func TestBenchSizeFlagsUseTheSharedParser(t *testing.T) {
	if _, err := parseBench(t, "--segment-size", "64MB"); err == nil || !strings.Contains(err.Error(), "--segment-size") ||
		!strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("--segment-size 64MB: %v", err)
	}
	if cfg, err := parseBench(t, "--bytes", "4k"); err != nil || cfg.Bytes != 4096 {
		t.Errorf("--bytes 4k = %d, %v; want 4096 (k is 1024 everywhere)", cfg.Bytes, err)
	}
}

func TestProgressFlag(t *testing.T) {
	cfg, err := parseBench(t, "--progress", "never")
	if err != nil || cfg.Progress != nil {
		t.Errorf("--progress never: progress %v, %v", cfg.Progress, err)
	}
	cfg, err = parseBench(t) // stderr is a strings.Builder: not a terminal
	if err != nil || cfg.Progress == nil || cfg.ProgressStyle != ProgressLines {
		t.Errorf("--progress auto off a terminal: style %v, %v", cfg.ProgressStyle, err)
	}
	if _, err := parseBench(t, "--quiet", "--progress", "always"); err == nil {
		t.Error("--quiet --progress always accepted")
	}
}
