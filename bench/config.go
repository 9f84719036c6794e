// Package bench is `segfs bench`: producers append checksummed, sequence-numbered messages to partitions
// while consumers tail them, through a real segfs mount per IO mode, on plain files (raw) and against fio's
// O_DIRECT limit, and report throughput and HdrHistogram latency percentiles as the seed's table, JSON and SVG.
//
// A run fails if any consumer reads anything other than exactly the bytes its producer wrote: a benchmark
// that cannot see lost bytes would happily report the speed of losing them.
//
// docs/architecture.md shows where this package sits among the others.
package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Column kinds: how a mode's column is produced.
const (
	KindFUSE  = "fuse"  // segfs mounted by the bench with the mode's options
	KindMount = "mount" // an existing mount given with --mount
	KindRaw   = "raw"   // same workload on plain files, no FUSE
	KindLimit = "limit" // fio, the physical limit
)

// Mode is one column of the table.
type Mode struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	IO      string `json:"io,omitempty"`
	Persist string `json:"persist,omitempty"`
	Tiered  bool   `json:"tiered,omitempty"` // mounted with Config.Tier: segments upload during the run
}

// AllModes lists every column in table order. The FUSE modes are the seed's columns plus the product
// default (dsync-deferred); raw and limit are the baselines that say what FUSE and the disk cost.
func AllModes() []Mode {
	return []Mode{
		{Name: "buffered", Kind: KindFUSE, IO: "buffered", Persist: "inline"},
		{Name: "direct", Kind: KindFUSE, IO: "direct", Persist: "inline"},
		{Name: "dsync-inline", Kind: KindFUSE, IO: "dsync", Persist: "inline"},
		{Name: "dsync-deferred", Kind: KindFUSE, IO: "dsync", Persist: "deferred"},
		{Name: "raw", Kind: KindRaw},
		{Name: "limit", Kind: KindLimit},
	}
}

// ParseModes turns a comma list into modes in the order given. With an existing mount (mount != ""), the
// FUSE modes cannot be chosen (the mount's options are fixed), so the list may only add raw and limit
// after the single "mount" column.
func ParseModes(list, mount string) ([]Mode, error) {
	known := map[string]Mode{TieredMode().Name: TieredMode()}
	for _, m := range AllModes() {
		known[m.Name] = m
	}
	var out []Mode
	if mount != "" {
		out = append(out, Mode{Name: "mount", Kind: KindMount})
	}
	seen := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		m, ok := known[name]
		if !ok {
			return nil, fmt.Errorf("--modes: unknown mode %q (want buffered, direct, dsync-inline, dsync-deferred, tiered, raw, limit)", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("--modes: %q given twice", name)
		}
		seen[name] = true
		if mount != "" && m.Kind == KindFUSE {
			return nil, fmt.Errorf("--modes: %q needs its own mount; with --mount only raw and limit can be added", name)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--modes: no mode selected")
	}
	return out, nil
}

// Config is everything a run needs. Durations and sizes are already parsed.
type Config struct {
	Producers   int           `json:"producers"`
	Consumers   int           `json:"consumers"`
	MessageSize int           `json:"message_size"`
	Batch       int           `json:"batch"`
	FsyncEvery  int           `json:"fsync_every"` // 0 never, 1 every write, N every N writes
	Duration    time.Duration `json:"-"`
	Bytes       int64         `json:"bytes"` // >0: the measured window ends after this many produced bytes
	Warmup      time.Duration `json:"-"`
	SegmentSize int64         `json:"segment_size"`
	Modes       []Mode        `json:"modes"`
	Mount       string        `json:"mount,omitempty"`
	DataDir     string        `json:"data_dir"`
	// Binary is the segfs executable the FUSE modes mount with (normally os.Executable()).
	Binary string `json:"binary,omitempty"`
	// DaemonEnv, if set, adds environment variables to the daemon of each FUSE mode (bench-limits asks
	// for a profile per mode with it).
	DaemonEnv func(Mode) []string `json:"-"`
	// Tier holds the -o options of the tiered column (tier=s3://..., tier_endpoint, local retention);
	// credentials come from the environment, as for any mount.
	Tier string `json:"tier,omitempty"`
	// TierReadRate paces the tiered column's reader of evicted segments (0: no reader).
	TierReadRate int64 `json:"tier_read_rate,omitempty"`
	// Rate, if positive, runs the producers open-loop: together they send this many bytes per second on a
	// fixed schedule, and producer latency is measured from each write's scheduled time.
	Rate int64 `json:"rate_bytes_per_s,omitempty"`
	// Progress receives the per-mode progress; nil means quiet. ProgressStyle says how.
	Progress      io.Writer     `json:"-"`
	ProgressStyle ProgressStyle `json:"-"`
	// Log receives notes (skipped columns, cleanup trouble); nil discards them.
	Log io.Writer `json:"-"`
}

// Defaults returns the seed's workload shape (4×4, 1000-byte messages, 1000 per batch).
func Defaults() Config {
	return Config{
		Producers: 4, Consumers: 4, MessageSize: 1000, Batch: 1000,
		Duration: 10 * time.Second, Warmup: time.Second, SegmentSize: 1 << 30,
		Modes: AllModes(),
	}
}

// BatchBytes is the size of one producer write().
func (c *Config) BatchBytes() int { return c.MessageSize * c.Batch }

// Validate rejects configurations the workload cannot run, naming the flag.
func (c *Config) Validate() error {
	switch {
	case c.Producers < 1:
		return fmt.Errorf("--producers must be at least 1, got %d", c.Producers)
	case c.Consumers < 0:
		return fmt.Errorf("--consumers must not be negative, got %d", c.Consumers)
	case c.MessageSize < HeaderSize:
		return fmt.Errorf("--message-size must be at least %d (the message header), got %d", HeaderSize, c.MessageSize)
	case c.Batch < 1:
		return fmt.Errorf("--batch must be at least 1, got %d", c.Batch)
	case int64(c.MessageSize)*int64(c.Batch) > 1<<30:
		return fmt.Errorf("--message-size × --batch is %d bytes; one write() of more than 1GiB is not a batch", int64(c.MessageSize)*int64(c.Batch))
	case c.FsyncEvery < 0:
		return fmt.Errorf("--fsync must be every, never or a positive count")
	case c.Duration <= 0 && c.Bytes <= 0:
		return fmt.Errorf("--duration must be positive (or set --bytes)")
	case c.Warmup < 0:
		return fmt.Errorf("--warmup must not be negative")
	case c.Rate < 0:
		return fmt.Errorf("--rate must be positive")
	case c.SegmentSize <= 0:
		return fmt.Errorf("--segment-size must be positive")
	case len(c.Modes) == 0:
		return fmt.Errorf("--modes: no mode selected")
	}
	for _, m := range c.Modes {
		if m.Tiered && c.Tier == "" {
			return fmt.Errorf("--modes: tiered needs --tier s3://BUCKET/PREFIX")
		}
	}
	return nil
}

// ParseFsync reads --fsync: "every" (1), "never" (0) or a positive count of writes between fsyncs.
func ParseFsync(s string) (int, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "every", "always":
		return 1, nil
	case "never", "", "0":
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("--fsync: %q is not every, never or a positive count", s)
	}
	return n, nil
}
