package segments

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"segfs/directio"
)

// Persist selects when appended bytes are handed to the segment file.
type Persist int

const (
	// Inline writes every full block of an append before Append returns.
	Inline Persist = iota
	// Deferred copies appends into memory; a per-partition flusher writes them in the background.
	Deferred
	// Sync returns from Append only once the bytes are durable, like a sync mount.
	Sync
)

// ParsePersist parses the persist= option values "inline", "deferred" and "sync".
func ParsePersist(s string) (Persist, error) {
	switch s {
	case "inline":
		return Inline, nil
	case "deferred":
		return Deferred, nil
	case "sync":
		return Sync, nil
	}
	return 0, fmt.Errorf("invalid persist mode %q: want inline, deferred or sync", s)
}

// String is the inverse of ParsePersist.
func (p Persist) String() string {
	switch p {
	case Inline:
		return "inline"
	case Deferred:
		return "deferred"
	case Sync:
		return "sync"
	}
	return fmt.Sprintf("Persist(%d)", int(p))
}

// Default sizes. IO and Persist have no unset value: callers start from DefaultConfig.
const (
	DefaultSegmentSize   = 1 << 30
	DefaultMaxDirty      = 64 << 20
	DefaultMaxDirtyTotal = 1 << 30
	DefaultPartitions    = 1
)

// MinMaxOpenFiles covers one rotating partition's descriptors with room to spare.
const MinMaxOpenFiles = 16

// DefaultMaxOpenFiles is half the soft RLIMIT_NOFILE; the rest is for FUSE, sockets and readers.
func DefaultMaxOpenFiles() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return 1 << 16
	}
	return int(max(min(lim.Cur/2, 1<<30), MinMaxOpenFiles))
}

const defaultRetentionInterval = time.Second

// Config configures a Log. Zero numeric fields take the defaults above.
type Config struct {
	SegmentSize    int64
	IO             directio.Mode // DefaultConfig: DirectSync (the zero value is Buffered)
	Persist        Persist       // DefaultConfig: Deferred (the zero value is Inline)
	MaxDirty       int64         // per partition
	MaxDirtyTotal  int64         // across partitions
	RetentionBytes int64         // 0 = off
	RetentionAge   time.Duration // 0 = off
	Partitions     int           // default partitions for CreateTopic(name, 0)
	Syscalls       directio.Syscalls
	Logger         logrus.FieldLogger
	// OnRotate is called outside any lock after a rotation; deferred, the seal may still run.
	OnRotate func(topic string, partition int, sealed, active int64)
	// Observer, if set, gets timings (stats.go).
	Observer Observer

	// RotateOn says where a full segment may end (default RotateSize).
	RotateOn RotateOn
	// IdleRelease: this long without an append releases a partition's descriptors and reserved
	// space (idle.go); 0 means the default, negative never.
	IdleRelease time.Duration

	// MaxOpenFiles bounds the descriptors kept open (fdCache); 0 means DefaultMaxOpenFiles.
	MaxOpenFiles int
	// Tiered storage (remote.go), off when Remote is nil. The local retentions only evict.
	Remote              Remote
	RemoteReadOnly      bool          // ro mounts
	TierConcurrency     int           // segment uploads in flight (default 4)
	LocalRetentionBytes int64         // 0 = off
	LocalRetentionAge   time.Duration // 0 = off
	TierRetry           time.Duration // first retry delay (default 1s), doubling to 5 min

	// Tests override these.
	tierInterval      time.Duration
	retentionInterval time.Duration
	flushWriteCap     int64
	lazyKickDelay     time.Duration
}

// DefaultConfig is the configuration segfs mounts with when no option is given.
func DefaultConfig() Config {
	return Config{
		SegmentSize:   DefaultSegmentSize,
		IO:            directio.DirectSync,
		Persist:       Deferred,
		MaxDirty:      DefaultMaxDirty,
		MaxDirtyTotal: DefaultMaxDirtyTotal,
		Partitions:    DefaultPartitions,
		IdleRelease:   DefaultIdleRelease,
	}
}

func (c Config) withDefaults() (Config, error) {
	if c.SegmentSize == 0 {
		c.SegmentSize = DefaultSegmentSize
	}
	if c.MaxDirty == 0 {
		c.MaxDirty = DefaultMaxDirty
	}
	if c.MaxDirtyTotal == 0 {
		c.MaxDirtyTotal = DefaultMaxDirtyTotal
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Syscalls == nil {
		c.Syscalls = directio.OS{}
	}
	if c.Logger == nil {
		c.Logger = logrus.StandardLogger()
	}
	if c.flushWriteCap == 0 {
		c.flushWriteCap = maxFlushWrite
	}
	if c.lazyKickDelay == 0 {
		c.lazyKickDelay = defaultLazyKickDelay
	}
	if c.retentionInterval == 0 {
		c.retentionInterval = defaultRetentionInterval
	}
	if c.IdleRelease == 0 {
		c.IdleRelease = DefaultIdleRelease
	}
	if c.MaxOpenFiles == 0 {
		c.MaxOpenFiles = DefaultMaxOpenFiles()
	}
	if c.TierConcurrency == 0 {
		c.TierConcurrency = DefaultTierConcurrency
	}
	if c.TierRetry == 0 {
		c.TierRetry = defaultTierRetry
	}
	if c.tierInterval == 0 {
		c.tierInterval = defaultTierInterval
	}
	switch {
	case c.SegmentSize < 0:
		return c, fmt.Errorf("segment size %d is negative", c.SegmentSize)
	case c.MaxDirty < 0 || c.MaxDirtyTotal < 0:
		return c, fmt.Errorf("max dirty %d / %d is negative", c.MaxDirty, c.MaxDirtyTotal)
	case c.RetentionBytes < 0 || c.RetentionAge < 0:
		return c, fmt.Errorf("retention %d bytes / %v is negative", c.RetentionBytes, c.RetentionAge)
	case c.MaxOpenFiles < MinMaxOpenFiles:
		return c, fmt.Errorf("max open files %d is below %d", c.MaxOpenFiles, MinMaxOpenFiles)
	case c.LocalRetentionBytes < 0 || c.LocalRetentionAge < 0 || c.TierConcurrency < 0:
		return c, fmt.Errorf("local retention %d bytes / %v or tier concurrency %d is negative", c.LocalRetentionBytes, c.LocalRetentionAge, c.TierConcurrency)
	case c.Remote == nil && (c.LocalRetentionBytes > 0 || c.LocalRetentionAge > 0):
		return c, errors.New("a local retention needs tiered storage: without it every segment is local")
	case c.Partitions < 0:
		return c, fmt.Errorf("default partition count %d is negative", c.Partitions)
	case c.Persist != Inline && c.Persist != Deferred && c.Persist != Sync:
		return c, fmt.Errorf("unknown persist mode %v", c.Persist)
	case c.RotateOn != RotateSize && c.RotateOn != RotateNewline:
		return c, fmt.Errorf("unknown rotation rule %v", c.RotateOn)
	case c.IO != directio.Buffered && c.IO != directio.Direct && c.IO != directio.DirectSync:
		return c, fmt.Errorf("unknown io mode %v", c.IO)
	}
	return c, nil
}

// Sentinel errors; errors.Is works on every error this package returns for these conditions.
var (
	ErrExist         = errors.New("already exists")
	ErrNotExist      = errors.New("does not exist")
	ErrInvalidName   = errors.New("invalid name")
	ErrActiveSegment = errors.New("segment is active")
	ErrClosed        = errors.New("log is closed")
	ErrLocked        = errors.New("data directory is locked")
)

const maxTopicName = 255

// ValidTopicName reports whether name matches [A-Za-z0-9][A-Za-z0-9._-]{0,254}: never the lock file
// or a tombstone.
func ValidTopicName(name string) bool {
	if len(name) == 0 || len(name) > maxTopicName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

const maxPartition = 1<<31 - 1

// ParsePartitionName parses a partition directory name: decimal, no sign, no leading zeros.
func ParsePartitionName(s string) (int, bool) {
	if s == "" || len(s) > 10 || s[0] == '0' && len(s) > 1 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxPartition {
		return 0, false
	}
	return int(n), true
}

func validPartition(n int) bool { return n >= 0 && n <= maxPartition }

// SegmentName is the file name of the segment at base: Kafka's naming, 20 digits and ".log".
func SegmentName(base int64) string { return fmt.Sprintf("%020d.log", base) }

// ParseSegmentName accepts exactly the names SegmentName makes.
func ParseSegmentName(name string) (int64, bool) {
	if len(name) != 24 || name[20:] != ".log" {
		return 0, false
	}
	for i := 0; i < 20; i++ {
		if name[i] < '0' || name[i] > '9' {
			return 0, false
		}
	}
	base, err := strconv.ParseInt(name[:20], 10, 64)
	return base, err == nil
}
