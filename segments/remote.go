package segments

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Remote is the object store under a tiered Log (package tier implements it).
type Remote interface {
	// Upload returns the ETag once the store verified the checksum.
	Upload(ctx context.Context, topic string, partition int, base, size int64, sealed time.Time, path string) (etag string, err error)
	// ReadAt is io.ReaderAt, bounded in time, never returning unverified bytes.
	ReadAt(topic string, partition int, base, size int64, etag string, b []byte, off int64) (int, error)
	// List calls each for the partition's stored segments in base order.
	List(ctx context.Context, topic string, partition int, each func(base, size int64, etag string, modTime time.Time)) error
	// Partitions calls each for every partition in the store.
	Partitions(ctx context.Context, each func(topic string, partition int)) error
	// Delete removes segments; a missing one is not an error.
	Delete(ctx context.Context, topic string, partition int, bases []int64) error
	// AbortUploads aborts the partition's unfinished multipart uploads.
	AbortUploads(ctx context.Context, topic string, partition int) (int, error)
}

// ErrRemote wraps every failed read from the object store; it carries no errno, so the mount
// answers EIO.
var ErrRemote = errors.New("object store")

// segmentTier: copy is set once an upload is verified, evicted once reads go to the store; both
// only go from unset to set.
type segmentTier struct {
	copy    atomic.Pointer[remoteCopy]
	evicted atomic.Bool
}

type remoteCopy struct{ etag string }

func newRemoteSegment(p *Partition, base, size int64, etag string, sealed time.Time) *segment {
	s := newSegment(base, p.dir+"/"+SegmentName(base))
	s.ino = remoteIno(p.topic, p.id, base)
	s.size.Store(size)
	s.mtime.Store(sealed.UnixNano())
	s.sealed.Store(true)
	s.tier.copy.Store(&remoteCopy{etag: etag})
	s.tier.evicted.Store(true)
	return s
}

// remoteIno numbers a segment without a local file; the top bit keeps it apart from ext4 and xfs inodes.
func remoteIno(topic string, partition int, base int64) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(topic + "/" + strconv.Itoa(partition) + "/" + strconv.FormatInt(base, 10)))
	return h.Sum64() | 1<<63
}

func (p *Partition) readSeg(s *segment, b []byte, off int64) (int, error) {
	if !s.tier.evicted.Load() {
		n, err := s.readAt(p.fs, b, off)
		if err == nil || err == io.EOF || !s.tier.evicted.Load() {
			return n, err
		}
		// Evicted under this read: the store has the same bytes.
	}
	return p.readRemote(s, b, off)
}

func (p *Partition) readRemote(s *segment, b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read segment %s at %d: negative offset", s.path, off)
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return 0, fmt.Errorf("read segment %s: %w", s.path, ErrNotExist)
	}
	c := s.tier.copy.Load()
	n, err := p.log.cfg.Remote.ReadAt(p.topic, p.id, s.base, s.size.Load(), c.etag, b, off)
	if err != nil && err != io.EOF {
		p.counters.remoteReadErrors.Add(1)
		// %v, not %w: an errno inside the SDK's error (ECONNREFUSED) must not become the read's.
		return n, fmt.Errorf("read segment %d of %s: %w: %v", s.base, p.name(), ErrRemote, err)
	}
	return n, err
}

type tierLog struct {
	mu    sync.Mutex
	parts map[*Partition]*partTier
	gc    []gcEntry // deleted partitions with objects left; persisted in .tier-gc

	kick     chan struct{} // buffered 1: a segment was sealed or purged
	stop     chan struct{}
	done     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	inflight sync.WaitGroup
	sem      chan struct{}
}

// partTier is one partition's tier state; mu guards the manifest and is held across its writes.
type partTier struct {
	mu       sync.Mutex
	man      manifest
	busy     bool // an upload or delete is in flight
	done     chan struct{}
	cancel   context.CancelFunc
	retryAt  time.Time
	failures int
	gone     bool
	stale    bool // the manifest on disk is behind man (a full disk): written again every round
}

// tierSealed wakes the uploader; it never blocks.
func (l *Log) tierSealed() {
	if l.tier == nil {
		return
	}
	select {
	case l.tier.kick <- struct{}{}:
	default:
	}
}

func (l *Log) partTierFor(p *Partition) *partTier {
	l.tier.mu.Lock()
	defer l.tier.mu.Unlock()
	pt := l.tier.parts[p]
	if pt == nil && p.w.closedErr() == nil {
		pt = &partTier{man: manifest{Version: manifestVersion}}
		l.tier.parts[p] = pt
	}
	return pt
}

func (l *Log) partTier(p *Partition) *partTier {
	if l.tier == nil {
		return nil
	}
	l.tier.mu.Lock()
	defer l.tier.mu.Unlock()
	return l.tier.parts[p]
}

const tierCacheDir = ".tier-cache"

// TierCacheDir is the read cache's directory for the data directory dir.
func TierCacheDir(dir string) string { return dir + "/" + tierCacheDir }
