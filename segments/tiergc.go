package segments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// gcName lists deleted partitions whose objects are still in the store.
const gcName = ".tier-gc"

type gcEntry struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Ino       uint64 `json:"ino"` // a partition recreated under the name has another
	busy      bool
}

func (l *Log) readGC() ([]gcEntry, error) {
	b, err := os.ReadFile(filepath.Join(l.dir, gcName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var gc []gcEntry
	if err := json.Unmarshal(b, &gc); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %w", filepath.Join(l.dir, gcName), err)
	}
	return gc, nil
}

func (l *Log) writeGCLocked() error {
	m := l.tier.gc
	if m == nil {
		m = []gcEntry{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.dir, gcName+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		err = l.fs.dirs.Rename(tmp, filepath.Join(l.dir, gcName))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return l.fs.syncDir(l.dir)
}

// gcPending: a new partition of a deleted one's name uploads nothing until its objects are gone.
func (l *Log) gcPending(topic string, id int) bool {
	l.tier.mu.Lock()
	defer l.tier.mu.Unlock()
	for _, e := range l.tier.gc {
		if e.Topic == topic && e.Partition == id {
			return true
		}
	}
	return false
}

// tierDeleting stops the partition's transfers and durably records the deletion of its objects
// before its directory goes. A read-only Log leaves the store alone.
func (l *Log) tierDeleting(p *Partition) error {
	if l.tier == nil {
		return nil
	}
	l.tierForget(p)
	if l.cfg.RemoteReadOnly {
		return nil
	}
	l.tier.mu.Lock()
	defer l.tier.mu.Unlock()
	var st unix.Stat_t
	if err := unix.Stat(p.dir, &st); err != nil {
		return fmt.Errorf("delete partition %s: %w", p.name(), err)
	}
	l.tier.gc = append(l.tier.gc, gcEntry{Topic: p.topic, Partition: p.id, Ino: st.Ino})
	return l.writeGCLocked()
}

func (l *Log) runGC() {
	t := l.tier
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.gc {
		e := &t.gc[i]
		if e.busy {
			continue
		}
		select {
		case t.sem <- struct{}{}:
		default:
			return
		}
		e.busy = true
		topic, id := e.Topic, e.Partition
		t.inflight.Add(1)
		go func() {
			defer t.inflight.Done()
			defer func() { <-t.sem }()
			err := l.deletePartitionObjects(t.ctx, topic, id)
			t.mu.Lock()
			defer t.mu.Unlock()
			for j := range t.gc {
				if t.gc[j].Topic != topic || t.gc[j].Partition != id {
					continue
				}
				if err != nil {
					t.gc[j].busy = false
					if !errors.Is(err, context.Canceled) {
						l.cfg.Logger.WithError(err).WithField("partition", topic+"/"+strconv.Itoa(id)).Warn("tier: could not delete a deleted partition's objects; retrying")
					}
					return
				}
				t.gc = append(t.gc[:j], t.gc[j+1:]...)
				if werr := l.writeGCLocked(); werr != nil {
					l.cfg.Logger.WithError(werr).Warn("tier: could not record a finished delete")
				}
				l.cfg.Logger.WithField("partition", topic+"/"+strconv.Itoa(id)).Info("tier: deleted the objects of a deleted partition")
				return
			}
		}()
	}
}

func (l *Log) deletePartitionObjects(ctx context.Context, topic string, id int) error {
	if _, err := l.cfg.Remote.AbortUploads(ctx, topic, id); err != nil {
		return err
	}
	var bases []int64
	if err := l.cfg.Remote.List(ctx, topic, id, func(base, _ int64, _ string, _ time.Time) { bases = append(bases, base) }); err != nil {
		return err
	}
	return l.cfg.Remote.Delete(ctx, topic, id, bases)
}
