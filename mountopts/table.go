package mountopts

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"segfs/directio"
	"segfs/segments"
	"segfs/units"
)

// option is one entry of the option table. The table is the single source of both the -o keys and the flags,
// so the two spellings cannot drift apart.
type option struct {
	key         string
	usage       string
	placeholder string // what the value looks like, for help and errors
	boolean     bool
	set         func(c *Config, v string) error
	get         func(c *Config) string
}

// Option describes one mount option for building command-line flags and help.
type Option struct {
	Key     string // -o key: segment_size
	Flag    string // flag name: segment-size
	Usage   string
	Default string // value in Defaults(), as the option would be written
	Bool    bool
}

// Options lists every mount option in a stable order.
func Options() []Option {
	d := Defaults()
	out := make([]Option, 0, len(table))
	for i := range table {
		o := &table[i]
		out = append(out, Option{
			Key:     o.key,
			Flag:    strings.ReplaceAll(o.key, "_", "-"),
			Usage:   o.usage,
			Default: o.get(&d),
			Bool:    o.boolean,
		})
	}
	return out
}

func lookup(key string) *option {
	for i := range table {
		if table[i].key == key {
			return &table[i]
		}
	}
	return nil
}

func sizeOption(key, usage string, field func(c *Config) *int64) option {
	return option{
		key: key, usage: usage, placeholder: "SIZE",
		set: func(c *Config, v string) error {
			n, err := units.ParseSize(v)
			if err != nil {
				return err
			}
			*field(c) = n
			return nil
		},
		get: func(c *Config) string { return units.FormatSize(*field(c)) },
	}
}

func boolOption(key, usage string, field func(c *Config) *bool) option {
	return option{
		key: key, usage: usage, placeholder: "true|false", boolean: true,
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("invalid boolean %q: want true or false", v)
			}
			*field(c) = b
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*field(c)) },
	}
}

var table = []option{
	sizeOption("segment_size", "rotate a partition's active segment once it holds this many bytes",
		func(c *Config) *int64 { return &c.Segments.SegmentSize }),
	{
		key: "io", usage: "how segments are written: buffered, direct (O_DIRECT) or dsync (O_DIRECT|O_DSYNC)",
		placeholder: "buffered|direct|dsync",
		set: func(c *Config, v string) error {
			m, err := directio.ParseMode(v)
			if err != nil {
				return err
			}
			c.Segments.IO = m
			return nil
		},
		get: func(c *Config) string { return c.Segments.IO.String() },
	},
	{
		key: "persist", usage: "inline: write() returns once the bytes are written; deferred: a flusher writes them behind; " +
			"sync: write() returns once the bytes are durable (as -o sync)",
		placeholder: "inline|deferred|sync",
		set: func(c *Config, v string) error {
			p, err := segments.ParsePersist(v)
			if err != nil {
				return err
			}
			c.Segments.Persist = p
			return nil
		},
		get: func(c *Config) string { return c.Segments.Persist.String() },
	},
	{
		key: "partitions", usage: "partitions of a topic created with mkdir", placeholder: "N",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("invalid count %q: want an integer", v)
			}
			if n < 1 {
				return fmt.Errorf("must be at least 1")
			}
			c.Segments.Partitions = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(c.Segments.Partitions) },
	},
	sizeOption("max_dirty", "per-partition cap on appended bytes not yet written (persist=deferred)",
		func(c *Config) *int64 { return &c.Segments.MaxDirty }),
	sizeOption("max_dirty_total", "cap on unwritten bytes across all partitions (persist=deferred)",
		func(c *Config) *int64 { return &c.Segments.MaxDirtyTotal }),
	sizeOption("retention_bytes", "purge a partition's oldest sealed segments beyond this size (0 = keep all)",
		func(c *Config) *int64 { return &c.Segments.RetentionBytes }),
	{
		key: "retention_age", usage: "purge sealed segments older than this Go duration, e.g. 168h (0 = keep all)",
		placeholder: "DURATION",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("invalid duration %q: want a Go duration such as 90m or 168h", v)
			}
			if d < 0 {
				return fmt.Errorf("must not be negative")
			}
			c.Segments.RetentionAge = d
			return nil
		},
		get: func(c *Config) string { return c.Segments.RetentionAge.String() },
	},
	// Kafka's name for the same limit: both set it, and the last one given wins.
	msOption("retention_ms", "retention_age in milliseconds (0 = keep all); with a tier, it deletes the objects too",
		func(c *Config) *time.Duration { return &c.Segments.RetentionAge }),
	{
		key: "tier", usage: "upload sealed segments to this S3 bucket and prefix; credentials come from the AWS environment or profile",
		placeholder: "s3://BUCKET/PREFIX", set: setTierURL, get: func(c *Config) string { return c.Tier.URL },
	},
	{
		key: "tier_endpoint", usage: "S3 endpoint for engines other than AWS (Ceph RGW, versitygw, SeaweedFS)",
		placeholder: "URL", set: setTierEndpoint, get: func(c *Config) string { return c.Tier.Endpoint },
	},
	{
		key: "tier_region", usage: "S3 region (default: AWS_REGION or the profile's; us-east-1 with tier_endpoint)",
		placeholder: "REGION", set: func(c *Config, v string) error { c.Tier.Region = v; return nil },
		get: func(c *Config) string { return c.Tier.Region },
	},
	{
		key: "tier_path_style", usage: "address the bucket as ENDPOINT/BUCKET (auto: when tier_endpoint is an IP address or localhost)",
		placeholder: "auto|true|false", set: setPathStyle, get: func(c *Config) string { return c.Tier.PathStyle },
	},
	{
		key: "tier_concurrency", usage: "segment uploads in flight", placeholder: "N",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("invalid count %q: want an integer of at least 1", v)
			}
			c.Segments.TierConcurrency = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(c.Segments.TierConcurrency) },
	},
	sizeOption("tier_cache", "disk cache of blocks read from the object store, in DATA/.tier-cache",
		func(c *Config) *int64 { return &c.Tier.Cache }),
	{
		key: "tier_timeout", usage: "bound of every object-store request: a read of an evicted segment fails with EIO after it",
		placeholder: "DURATION",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("invalid duration %q: want a Go duration above 0 such as 10s", v)
			}
			c.Tier.Timeout = d
			return nil
		},
		get: func(c *Config) string { return c.Tier.Timeout.String() },
	},
	sizeOption("local_retention_bytes", "evict a partition's oldest uploaded segments from the local disk beyond this size (0 = keep all)",
		func(c *Config) *int64 { return &c.Segments.LocalRetentionBytes }),
	msOption("local_retention_ms", "evict uploaded segments from the local disk this many milliseconds after their seal (0 = keep all)",
		func(c *Config) *time.Duration { return &c.Segments.LocalRetentionAge }),
	{
		key: "rotate_on", usage: "size: rotate before the write that would pass segment_size (writes stay whole, " +
			"lines written in pieces may be split); newline: a full segment ends after a newline, so each " +
			"sealed segment holds whole lines (it may grow to twice segment_size waiting for one)",
		placeholder: "size|newline",
		set: func(c *Config, v string) error {
			r, err := segments.ParseRotateOn(v)
			if err != nil {
				return err
			}
			c.Segments.RotateOn = r
			return nil
		},
		get: func(c *Config) string { return c.Segments.RotateOn.String() },
	},
	{
		key: "idle_release", usage: "a partition without appends for this Go duration syncs, closes its files and " +
			"gives back the disk space reserved ahead of its appends (0 = only when descriptors or space run short)",
		placeholder: "DURATION",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("invalid duration %q: want a Go duration such as 5s or 1m", v)
			}
			if d < 0 {
				return fmt.Errorf("must not be negative")
			}
			if d == 0 {
				d = -1 // segments: never by time
			}
			c.Segments.IdleRelease = d
			return nil
		},
		get: func(c *Config) string {
			switch d := c.Segments.IdleRelease; {
			case d < 0:
				return "0s"
			case d == 0:
				return segments.DefaultIdleRelease.String()
			default:
				return d.String()
			}
		},
	},
	{
		key: "max_open_files", usage: "descriptors segfs keeps open for partitions and sealed segments; past it, " +
			"idle ones are closed (least recently used first) and reopened on demand; auto: half the " +
			"daemon's descriptor limit", placeholder: "N|auto",
		set: func(c *Config, v string) error {
			if v == "auto" {
				c.Segments.MaxOpenFiles = 0
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("invalid count %q: want an integer or auto", v)
			}
			if n < segments.MinMaxOpenFiles {
				return fmt.Errorf("must be at least %d", segments.MinMaxOpenFiles)
			}
			c.Segments.MaxOpenFiles = n
			return nil
		},
		get: func(c *Config) string {
			if c.Segments.MaxOpenFiles == 0 {
				return "auto"
			}
			return strconv.Itoa(c.Segments.MaxOpenFiles)
		},
	},
	{
		// mount(8)'s sync flag, for fstab: the same as persist=sync. sync=false (or async) undoes it.
		key: "sync", usage: "every write() returns only once its bytes are durable; fsync has nothing left to do",
		placeholder: "true|false", boolean: true,
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("invalid boolean %q: want true or false", v)
			}
			switch {
			case b:
				c.Segments.Persist = segments.Sync
			case c.Segments.Persist == segments.Sync:
				c.Segments.Persist = segments.DefaultConfig().Persist
			}
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(c.Segments.Persist == segments.Sync) },
	},
	boolOption("allow_other", "let users other than the mounting one access the mount",
		func(c *Config) *bool { return &c.AllowOther }),
	boolOption("default_permissions", "let the kernel check permissions from the file modes",
		func(c *Config) *bool { return &c.DefaultPermissions }),
	boolOption("ro", "mount read-only", func(c *Config) *bool { return &c.ReadOnly }),
	boolOption("debug", "log every FUSE request (go-fuse debug) and set the log level to debug",
		func(c *Config) *bool { return &c.Debug }),
	{
		key: "metrics", usage: "serve Prometheus metrics at http://ADDR/metrics (a bare port listens on 127.0.0.1); " +
			"off also removes MNT/.stats and every recorder",
		placeholder: "ADDR|off",
		set: func(c *Config, v string) error {
			addr, err := parseMetricsAddr(v)
			if err != nil {
				return err
			}
			c.Metrics = addr
			return nil
		},
		get: func(c *Config) string { return c.Metrics },
	},
	{
		key: "metrics_detail", usage: "labels of per-partition metrics: partition (topic and partition), " +
			"topic (summed per topic) or mount (summed over the mount), to bound series with many partitions",
		placeholder: "partition|topic|mount",
		set: func(c *Config, v string) error {
			switch v {
			case "partition", "topic", "mount":
				c.MetricsDetail = v
				return nil
			}
			return fmt.Errorf("invalid detail %q: want partition, topic or mount", v)
		},
		get: func(c *Config) string { return c.MetricsDetail },
	},
}

// parseMetricsAddr accepts "" (no endpoint), "off", HOST:PORT, :PORT and PORT, and returns the
// address to listen on: loopback unless the user names a host.
func parseMetricsAddr(v string) (string, error) {
	if v == "" || v == "off" {
		return v, nil
	}
	addr := v
	if _, err := strconv.ParseUint(v, 10, 16); err == nil {
		addr = ":" + v
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("invalid address %q: want HOST:PORT, :PORT or PORT, e.g. 127.0.0.1:9464", v)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("invalid port %q: want a number from 0 to 65535", port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}
