package segments

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"segfs/directio"
)

// Persist selects when appended bytes are handed to the segment file.
type Persist int

const (
	// Inline writes every full block of an append before Append returns.
	Inline Persist = iota
	// Deferred copies appends into memory; a per-partition flusher writes them in the background.
	Deferred
	// Sync returns from Append only once the appended bytes are durable, as a filesystem mounted
	// with sync does: fsync after an append has nothing left to do.
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

const defaultRetentionInterval = time.Second

// Config configures a Log. Zero numeric fields take the defaults above.
type Config struct {
	SegmentSize    int64         // default 1 GiB
	IO             directio.Mode // DefaultConfig: DirectSync (the zero value is Buffered)
	Persist        Persist       // DefaultConfig: Deferred (the zero value is Inline)
	MaxDirty       int64         // per-partition deferred-memory cap (default 64 MiB)
	MaxDirtyTotal  int64         // global cap across partitions (default 1 GiB)
	RetentionBytes int64         // 0 = off
	RetentionAge   time.Duration // 0 = off
	Partitions     int           // default partitions for CreateTopic(name, 0)
	Syscalls       directio.Syscalls
	Logger         logrus.FieldLogger
	// OnRotate is called, outside any lock, once a rotation made `active` follow `sealed`. Deferred,
	// the seal may still be running (Partition.WaitSealed waits for it).
	OnRotate func(topic string, partition int, sealed, active int64)
	// Observer, if set, is told the timings of appends, syncs, flushes and seals (see stats.go).
	Observer Observer

	// Tests override these.
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
	switch {
	case c.SegmentSize < 0:
		return c, fmt.Errorf("segment size %d is negative", c.SegmentSize)
	case c.MaxDirty < 0 || c.MaxDirtyTotal < 0:
		return c, fmt.Errorf("max dirty %d / %d is negative", c.MaxDirty, c.MaxDirtyTotal)
	case c.RetentionBytes < 0 || c.RetentionAge < 0:
		return c, fmt.Errorf("retention %d bytes / %v is negative", c.RetentionBytes, c.RetentionAge)
	case c.Partitions < 0:
		return c, fmt.Errorf("default partition count %d is negative", c.Partitions)
	case c.Persist != Inline && c.Persist != Deferred && c.Persist != Sync:
		return c, fmt.Errorf("unknown persist mode %v", c.Persist)
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

// maxPartition keeps partition numbers in an int32.
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
