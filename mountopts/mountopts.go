// Package mountopts turns segfs mount options, given as mount(8)/fstab style `-o k=v,...` strings or as the
// equivalent command-line flags, into one validated Config.
//
// docs/architecture.md shows where this package sits among the others.
package mountopts

import (
	"fmt"
	"strings"

	"segfs/segments"
	"segfs/units"
)

// Config is everything a mount needs. Segments carries the storage options; the booleans are FUSE options.
type Config struct {
	DataDir, Mountpoint string
	Segments            segments.Config
	Tier                Tier

	AllowOther, DefaultPermissions, ReadOnly, Debug bool

	// Metrics is "" (MNT/.stats only), "off" (no metrics at all) or the address of the endpoint.
	Metrics       string
	MetricsDetail string // partition, topic or mount
}

// Defaults returns the configuration of a mount given no options.
func Defaults() Config {
	s := segments.DefaultConfig()
	s.TierConcurrency = segments.DefaultTierConcurrency
	return Config{Segments: s, Tier: defaultTier(), MetricsDetail: "partition"}
}

// ignored holds the generic options mount(8), mount.fuse3 and systemd pass to every helper. They describe the
// mount point or the boot order, not segfs, so accepting them is what lets one fstab line work unchanged.
var ignored = map[string]bool{
	"defaults": true, "dev": true, "nodev": true, "suid": true, "nosuid": true, "exec": true, "noexec": true,
	"auto": true, "noauto": true, "user": true, "nouser": true, "users": true, "owner": true, "group": true,
	"_netdev": true, "nofail": true, "atime": true, "noatime": true, "relatime": true, "norelatime": true,
	"strictatime": true, "nostrictatime": true, "lazytime": true, "nolazytime": true, "diratime": true,
	"nodiratime": true, "dirsync": true, "silent": true, "loud": true,
	"mand": true, "nomand": true, "iversion": true, "noiversion": true, "comment": true,
}

func isIgnored(key string) bool {
	return ignored[key] || strings.HasPrefix(key, "x-")
}

// Parse applies one mount(8)-style option string, "k=v,k2,...". Later options override earlier ones, as with
// mount(8). Boolean options accept the bare form ("ro") and key=true/false.
func (c *Config) Parse(opts string) error {
	for _, item := range strings.Split(opts, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, value, hasValue := strings.Cut(item, "=")
		if isIgnored(key) {
			continue
		}
		// mount(8) lets the last of ro/rw win, and passes rw on every ordinary mount; likewise sync/async.
		if key == "rw" && !hasValue {
			c.ReadOnly = false
			continue
		}
		if key == "async" && !hasValue {
			key, value, hasValue = "sync", "false", true
		}
		o := lookup(key)
		if o == nil {
			return fmt.Errorf("unknown option %q", key)
		}
		if !hasValue {
			if !o.boolean {
				return fmt.Errorf("option %s needs a value (%s=%s)", key, key, o.placeholder)
			}
			value = "true"
		}
		if err := o.set(c, value); err != nil {
			return fmt.Errorf("option %s: %w", redact(item), err)
		}
	}
	return nil
}

// Set applies one option by its -o key (segment_size) with an explicit value ("true"/"false" for booleans).
func (c *Config) Set(key, value string) error {
	o := lookup(key)
	if o == nil {
		return fmt.Errorf("unknown option %q", key)
	}
	if err := o.set(c, value); err != nil {
		return fmt.Errorf("option %s: %w", redact(key+"="+value), err)
	}
	return nil
}

// SetFlag applies one option by its flag name (segment-size), naming the flag in errors.
func (c *Config) SetFlag(flag, value string) error {
	o := lookup(strings.ReplaceAll(flag, "-", "_"))
	if o == nil {
		return fmt.Errorf("unknown flag --%s", flag)
	}
	if err := o.set(c, value); err != nil {
		return fmt.Errorf("--%s %s: %w", flag, redact(value), err)
	}
	return nil
}

// Validate rejects combinations that are each valid alone but make no sense together. It does not know the
// data dir's block size: CheckBlockSize does that once the data dir is known.
func (c *Config) Validate() error {
	s := c.Segments
	if s.SegmentSize <= 0 {
		return fmt.Errorf("option segment_size must be greater than 0")
	}
	if s.Partitions < 1 {
		return fmt.Errorf("option partitions must be at least 1")
	}
	if s.MaxDirty <= 0 {
		return fmt.Errorf("option max_dirty must be greater than 0")
	}
	if s.MaxDirtyTotal <= 0 {
		return fmt.Errorf("option max_dirty_total must be greater than 0")
	}
	if s.MaxDirty > s.MaxDirtyTotal {
		return fmt.Errorf("conflicting options: max_dirty=%s is larger than max_dirty_total=%s",
			units.FormatSize(s.MaxDirty), units.FormatSize(s.MaxDirtyTotal))
	}
	// Retention deletes sealed segments by itself; on a read-only mount that would be data loss nobody asked for.
	if c.ReadOnly && s.RetentionBytes > 0 {
		return fmt.Errorf("conflicting options: ro with retention_bytes (retention deletes segments)")
	}
	if c.ReadOnly && s.RetentionAge > 0 {
		return fmt.Errorf("conflicting options: ro with retention_age (retention deletes segments)")
	}
	return c.validateTier()
}

// CheckBlockSize rejects a segment smaller than one block of the data dir's filesystem: such a segment could not
// hold a single aligned write, so every append would rotate.
func (c *Config) CheckBlockSize(blockSize int) error {
	if c.Segments.SegmentSize < int64(blockSize) {
		return fmt.Errorf("option segment_size=%s is below the data dir's block size (%d bytes)",
			units.FormatSize(c.Segments.SegmentSize), blockSize)
	}
	return nil
}

// Encode renders every option of c as one canonical -o string; Parse of it on Defaults() yields c's options
// again. The daemon's parent uses it to hand the child exactly the configuration it validated.
func (c Config) Encode() string {
	parts := make([]string, 0, len(table))
	for i := range table {
		parts = append(parts, table[i].key+"="+table[i].get(&c))
	}
	return strings.Join(parts, ",")
}
