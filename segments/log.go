package segments

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"segfs/directio"
)

// Log is a data directory: topics of partitions of segments.
type Log struct {
	dir    string
	cfg    Config
	fs     diskCalls
	lockFD int

	align   directio.Alignment // discovered once
	block   int
	chunk   int64
	chunks  *directio.Pool
	scratch *directio.Pool
	budget  *budget

	nsMu    sync.Mutex // namespace changes and Close; held across I/O
	mu      sync.Mutex
	topics  map[string]*Topic
	closed  bool
	tombSeq atomic.Uint64

	tier *tierLog

	stopRetention chan struct{}
	retentionDone chan struct{}

	epoch      time.Time
	shortUntil atomic.Int64 // space.go
}

// maxChunk keeps iovecs large while letting small memory caps use smaller chunks.
const maxChunk = 256 << 10

const maxReadWindow = 32 << 20

const scratchBlock = 64 << 10

// Open opens or creates the data directory dir, locks it (ErrLocked if another segfs holds it) and
// recovers every partition.
func Open(dir string, cfg Config) (_ *Log, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	lockFD, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, cfg: cfg, fs: newFS(cfg.Syscalls, cfg.MaxOpenFiles), lockFD: lockFD, topics: map[string]*Topic{}, epoch: time.Now()}
	defer func() {
		if err != nil {
			l.stopTier()
			l.closeAll()
			if l.budget != nil {
				l.budget.trim.Stop()
			}
			_ = unlockDir(lockFD)
		}
	}()
	if l.align, err = directio.WriteAlignment(dir); err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	l.block = max(l.align.Offset, l.align.Memory)
	l.chunk = maxChunk
	for l.chunk > int64(l.block) && (l.chunk > cfg.MaxDirty/4 || l.chunk > cfg.MaxDirtyTotal/4) {
		l.chunk /= 2
	}
	memAlign := max(l.block, 4096)
	l.chunks = directio.NewPool(int(l.chunk), memAlign)
	// What one busy partition cycles through, so a producer at max_dirty does not allocate.
	l.chunks.SetRetain(int(min(cfg.MaxDirty, cfg.MaxDirtyTotal) / l.chunk))
	l.scratch = directio.NewPool(max(scratchBlock, l.block), memAlign)
	// Read-behind: half of max_dirty per partition, half of max_dirty_total in all.
	l.budget = newBudget(l.chunks, cfg.MaxDirtyTotal, min(maxReadWindow, cfg.MaxDirty/2), cfg.MaxDirtyTotal/2)
	if cfg.Remote != nil && cfg.RemoteReadOnly {
		if err := l.catchUpReadOnly(); err != nil {
			return nil, fmt.Errorf("open %s: %w", dir, err)
		}
	}
	if err := l.recover(); err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if cfg.Remote != nil {
		if err := l.openTier(); err != nil {
			return nil, fmt.Errorf("open %s: %w", dir, err)
		}
	}
	if cfg.RetentionBytes > 0 || cfg.RetentionAge > 0 {
		l.stopRetention, l.retentionDone = make(chan struct{}), make(chan struct{})
		go l.retentionLoop(l.stopRetention, l.retentionDone)
	}
	return l, nil
}

func (l *Log) recover() error {
	entries, err := l.sweepTombstones(l.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if name == lockName || name == gcName || name == gcName+".tmp" || name == tierCacheDir {
			continue
		}
		if !e.IsDir() || !ValidTopicName(name) {
			l.cfg.Logger.WithField("path", filepath.Join(l.dir, name)).Warn("ignoring unexpected entry in data directory")
			continue
		}
		t := &Topic{log: l, name: name, dir: filepath.Join(l.dir, name), parts: map[int]*Partition{}}
		l.topics[name] = t
		parts, err := l.sweepTombstones(t.dir)
		if err != nil {
			return err
		}
		for _, pe := range parts {
			id, ok := ParsePartitionName(pe.Name())
			if !ok || !pe.IsDir() {
				l.cfg.Logger.WithFields(map[string]any{"path": filepath.Join(t.dir, pe.Name()), "topic": name}).
					Warn("ignoring unexpected entry in topic directory")
				continue
			}
			p, err := l.openPartition(name, id, filepath.Join(t.dir, pe.Name()), false)
			if err != nil {
				return err
			}
			t.parts[id] = p
		}
	}
	return nil
}

func (l *Log) closeAll() error {
	var errs []error
	for _, p := range l.partitions() {
		if err := p.shutdown(fmt.Errorf("partition %s: %w", p.name(), ErrClosed), true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops background work, makes every partition durable and exact, and releases the lock.
func (l *Log) Close() error {
	l.nsMu.Lock()
	defer l.nsMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("close %s: %w", l.dir, ErrClosed)
	}
	l.closed = true
	l.mu.Unlock()
	if l.stopRetention != nil {
		close(l.stopRetention)
		<-l.retentionDone
	}
	l.stopTier() // no transfer runs while the partitions close
	err := l.closeAll()
	l.budget.trim.Stop()
	if uerr := unlockDir(l.lockFD); uerr != nil {
		err = errors.Join(err, uerr)
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", l.dir, err)
	}
	return nil
}

func (l *Log) usable() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("%s: %w", l.dir, ErrClosed)
	}
	return nil
}

// Dir is the data directory.
func (l *Log) Dir() string { return l.dir }

// Config is the configuration in effect, defaults applied.
func (l *Log) Config() Config { return l.cfg }

// Topics lists the topic names, sorted.
func (l *Log) Topics() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.topics))
	for n := range l.topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Topic returns the topic name; ErrNotExist if there is none.
func (l *Log) Topic(name string) (*Topic, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("%s: %w", l.dir, ErrClosed)
	}
	if t, ok := l.topics[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("topic %s: %w", name, ErrNotExist)
}

func (l *Log) partitions() []*Partition {
	l.mu.Lock()
	topics := make([]*Topic, 0, len(l.topics))
	for _, t := range l.topics {
		topics = append(topics, t)
	}
	l.mu.Unlock()
	var ps []*Partition
	for _, t := range topics {
		t.mu.Lock()
		for _, p := range t.parts {
			ps = append(ps, p)
		}
		t.mu.Unlock()
	}
	return ps
}

// CreateTopic creates a topic with partitions 0..partitions-1 (cfg.Partitions if partitions <= 0).
// ErrInvalidName unless ValidTopicName(name); ErrExist if it exists.
func (l *Log) CreateTopic(name string, partitions int) (*Topic, error) {
	t, err := l.createTopic(name, partitions)
	if err != nil && onlyNoSpace(err) && l.freeSpace(nil) {
		// The disk was full: other partitions' reservations came back; retry once.
		t, err = l.createTopic(name, partitions)
	}
	return t, err
}

func (l *Log) createTopic(name string, partitions int) (_ *Topic, err error) {
	if !ValidTopicName(name) {
		return nil, fmt.Errorf("topic %q: %w", name, ErrInvalidName)
	}
	if partitions <= 0 {
		partitions = l.cfg.Partitions
	}
	l.nsMu.Lock()
	defer l.nsMu.Unlock()
	if err := l.usable(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	_, exists := l.topics[name]
	l.mu.Unlock()
	if exists {
		return nil, fmt.Errorf("topic %s: %w", name, ErrExist)
	}
	t := &Topic{log: l, name: name, dir: filepath.Join(l.dir, name), parts: map[int]*Partition{}}
	defer func() {
		if err != nil {
			for _, p := range t.parts {
				_ = p.shutdown(ErrClosed, false)
			}
			_ = l.fs.bury(t.dir, l.tombSeq.Add(1))
			err = fmt.Errorf("create topic %s: %w", name, err)
		}
	}()
	if err := l.fs.mkdir(t.dir); err != nil {
		return nil, err
	}
	for i := 0; i < partitions; i++ {
		p, err := l.openPartition(name, i, filepath.Join(t.dir, strconv.Itoa(i)), true)
		if err != nil {
			return nil, err
		}
		t.parts[i] = p
	}
	if err := l.fs.syncDir(t.dir); err != nil {
		return nil, err
	}
	if err := l.fs.syncDir(l.dir); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.topics[name] = t
	l.mu.Unlock()
	l.cfg.Logger.WithFields(map[string]any{"topic": name, "partitions": partitions}).Info("created topic")
	return t, nil
}

// DeleteTopic deletes a topic and returns once its flushers stopped and its directory is gone.
func (l *Log) DeleteTopic(name string) error {
	l.nsMu.Lock()
	defer l.nsMu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	l.mu.Lock()
	t, ok := l.topics[name]
	delete(l.topics, name)
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("topic %s: %w", name, ErrNotExist)
	}
	t.mu.Lock()
	t.deleted = true
	parts := t.parts
	t.parts = map[int]*Partition{}
	t.mu.Unlock()
	var errs []error
	for _, p := range parts {
		if err := l.tierDeleting(p); err != nil {
			errs = append(errs, err)
		}
		if err := p.shutdown(fmt.Errorf("topic %s was deleted: %w", name, ErrNotExist), false); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.fs.bury(t.dir, l.tombSeq.Add(1)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete topic %s: %w", name, err)
	}
	l.cfg.Logger.WithField("topic", name).Info("deleted topic")
	return nil
}
