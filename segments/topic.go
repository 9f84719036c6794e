package segments

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
)

// Topic is a named set of partitions, DATA/<topic>/<partition>/.
type Topic struct {
	log  *Log
	name string
	dir  string

	mu      sync.Mutex
	parts   map[int]*Partition
	deleted bool
}

// Name is the topic name.
func (t *Topic) Name() string { return t.name }

// Dir is the topic's backing directory: its times are the topic's.
func (t *Topic) Dir() string { return t.dir }

// Partitions lists the partition numbers, sorted.
func (t *Topic) Partitions() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := make([]int, 0, len(t.parts))
	for id := range t.parts {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// Partition returns partition n; ErrNotExist if there is none.
func (t *Topic) Partition(n int) (*Partition, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.parts[n]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("partition %s/%d: %w", t.name, n, ErrNotExist)
}

// CreatePartition creates partition n with an empty first segment; ErrExist if it exists,
// ErrInvalidName if n is negative or too large.
func (t *Topic) CreatePartition(n int) (*Partition, error) {
	p, err := t.createPartition(n)
	if err != nil && onlyNoSpace(err) && t.log.freeSpace(nil) {
		p, err = t.createPartition(n)
	}
	return p, err
}

func (t *Topic) createPartition(n int) (*Partition, error) {
	if !validPartition(n) {
		return nil, fmt.Errorf("partition %s/%d: %w", t.name, n, ErrInvalidName)
	}
	l := t.log
	l.nsMu.Lock()
	defer l.nsMu.Unlock()
	if err := t.usable(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	_, exists := t.parts[n]
	t.mu.Unlock()
	if exists {
		return nil, fmt.Errorf("partition %s/%d: %w", t.name, n, ErrExist)
	}
	p, err := l.openPartition(t.name, n, filepath.Join(t.dir, strconv.Itoa(n)), true)
	if err != nil {
		return nil, fmt.Errorf("create partition %s/%d: %w", t.name, n, err)
	}
	if err := l.fs.syncDir(t.dir); err != nil {
		return nil, errors.Join(fmt.Errorf("create partition %s/%d: %w", t.name, n, err), p.shutdown(ErrClosed, true))
	}
	t.mu.Lock()
	t.parts[n] = p
	t.mu.Unlock()
	return p, nil
}

// usable is nil while the topic exists and the log is open; caller holds log.nsMu.
func (t *Topic) usable() error {
	if err := t.log.usable(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.deleted {
		return fmt.Errorf("topic %s: %w", t.name, ErrNotExist)
	}
	return nil
}

// DeletePartition deletes partition n and returns once its flusher stopped and its directory is
// gone.
func (t *Topic) DeletePartition(n int) error {
	l := t.log
	l.nsMu.Lock()
	defer l.nsMu.Unlock()
	if err := t.usable(); err != nil {
		return err
	}
	t.mu.Lock()
	p, ok := t.parts[n]
	delete(t.parts, n)
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("partition %s/%d: %w", t.name, n, ErrNotExist)
	}
	err := l.tierDeleting(p)
	err = errors.Join(err, p.shutdown(fmt.Errorf("partition %s/%d was deleted: %w", t.name, n, ErrNotExist), false))
	if berr := l.fs.bury(p.dir, l.tombSeq.Add(1)); berr != nil {
		err = errors.Join(err, berr)
	}
	if err != nil {
		return fmt.Errorf("delete partition %s/%d: %w", t.name, n, err)
	}
	p.logger().Info("deleted partition")
	return nil
}
