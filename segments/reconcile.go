package segments

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// openTier reconciles every partition with its manifest and the store, takes up partitions only
// the store holds, and starts the uploader unless the Log is read-only.
func (l *Log) openTier() error {
	l.tier = &tierLog{parts: map[*Partition]*partTier{}, kick: make(chan struct{}, 1)}
	ctx := context.Background()
	if !l.cfg.RemoteReadOnly {
		gc, err := l.readGC()
		if err != nil {
			return err
		}
		for _, e := range gc {
			var st unix.Stat_t
			dir := filepath.Join(l.dir, e.Topic, strconv.Itoa(e.Partition))
			if unix.Stat(dir, &st) == nil && st.Ino == e.Ino {
				continue // the delete did not happen: the partition is still there
			}
			l.tier.gc = append(l.tier.gc, e)
		}
	}
	remoteOnly := map[string][]int{}
	err := l.cfg.Remote.Partitions(ctx, func(topic string, id int) {
		if !ValidTopicName(topic) || !validPartition(id) {
			return
		}
		if t, ok := l.topics[topic]; ok {
			if _, ok := t.parts[id]; ok {
				return
			}
		}
		remoteOnly[topic] = append(remoteOnly[topic], id)
	})
	if err != nil {
		return fmt.Errorf("tier: %w", err)
	}
	for topic, ids := range remoteOnly {
		for _, id := range ids {
			if l.gcPending(topic, id) {
				continue
			}
			if err := l.adoptPartition(ctx, topic, id); err != nil {
				return err
			}
		}
	}
	for _, p := range l.partitions() {
		if err := l.reconcile(ctx, p); err != nil {
			return fmt.Errorf("tier: partition %s: %w", p.name(), err)
		}
	}
	if !l.cfg.RemoteReadOnly {
		l.startTier()
	}
	return nil
}

// catchUpReadOnly moves a read-only tiered Log's lone empty active segment (from a bucket taken up
// earlier) to the stored log's end, so a remount sees what was uploaded since.
func (l *Log) catchUpReadOnly() error {
	topics, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("tier: %w", err)
	}
	for _, te := range topics {
		if !te.IsDir() || !ValidTopicName(te.Name()) {
			continue
		}
		parts, err := os.ReadDir(filepath.Join(l.dir, te.Name()))
		if err != nil {
			return fmt.Errorf("tier: %w", err)
		}
		for _, pe := range parts {
			id, ok := ParsePartitionName(pe.Name())
			if !ok || !pe.IsDir() {
				continue
			}
			if err := l.catchUpPartition(te.Name(), id, filepath.Join(l.dir, te.Name(), pe.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *Log) catchUpPartition(topic string, id int, dir string) error {
	bases, err := l.listSegments(dir)
	if err != nil || len(bases) != 1 {
		return err
	}
	old := filepath.Join(dir, SegmentName(bases[0]))
	var st unix.Stat_t
	if err := unix.Stat(old, &st); err != nil || st.Size != 0 {
		return err
	}
	var end int64
	if err := l.cfg.Remote.List(context.Background(), topic, id, func(base, size int64, _ string, _ time.Time) { end = max(end, base+size) }); err != nil {
		return fmt.Errorf("tier: %w", err)
	}
	if end <= bases[0] {
		return nil
	}
	if err := l.fs.dirs.Rename(old, filepath.Join(dir, SegmentName(end))); err != nil {
		return fmt.Errorf("tier: %w", err)
	}
	if err := l.fs.syncDir(dir); err != nil {
		return err
	}
	l.cfg.Logger.WithFields(map[string]any{"topic": topic, "partition": id, "from": bases[0], "end": end}).Info("tier: the store's log grew since the last mount")
	return nil
}

func (l *Log) adoptPartition(ctx context.Context, topic string, id int) error {
	var end int64
	if err := l.cfg.Remote.List(ctx, topic, id, func(base, size int64, _ string, _ time.Time) { end = max(end, base+size) }); err != nil {
		return fmt.Errorf("tier: %w", err)
	}
	t, ok := l.topics[topic]
	if !ok {
		t = &Topic{log: l, name: topic, dir: filepath.Join(l.dir, topic), parts: map[int]*Partition{}}
		if err := l.fs.mkdir(t.dir); err != nil {
			return err
		}
		l.topics[topic] = t
	}
	dir := filepath.Join(t.dir, strconv.Itoa(id))
	if err := l.fs.mkdir(dir); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, SegmentName(end)), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("tier: take up %s/%d: %w", topic, id, err)
	}
	f.Close()
	for _, d := range []string{dir, t.dir, l.dir} {
		if err := l.fs.syncDir(d); err != nil {
			return err
		}
	}
	p, err := l.openPartition(topic, id, dir, false)
	if err != nil {
		return err
	}
	t.parts[id] = p
	l.cfg.Logger.WithFields(map[string]any{"partition": p.name(), "end": end}).Info("tier: took up a partition from the object store")
	return nil
}

// reconcile makes the segment list, manifest and store agree after a crash or on another machine
// (doc.go, "Tiered storage").
func (l *Log) reconcile(ctx context.Context, p *Partition) error {
	man, _, err := readManifest(p.dir)
	if err != nil {
		return err
	}
	type obj struct {
		size int64
		etag string
		mod  time.Time
	}
	stored := map[int64]obj{}
	if err := l.cfg.Remote.List(ctx, p.topic, p.id, func(base, size int64, etag string, mod time.Time) {
		stored[base] = obj{size, etag, mod}
	}); err != nil {
		return err
	}
	ro := l.cfg.RemoteReadOnly
	if !ro {
		if _, err := l.cfg.Remote.AbortUploads(ctx, p.topic, p.id); err != nil {
			return err
		}
	}
	local := map[int64]*segment{}
	for _, s := range p.list.segs {
		local[s.base] = s
	}
	active := p.list.segs[len(p.list.segs)-1]
	var remote []*segment
	next := manifest{Version: manifestVersion, Start: man.Start}
	for _, e := range man.Segments {
		o, inStore := stored[e.Base]
		s := local[e.Base]
		switch {
		case e.State == stateDeleting:
			next.Segments = append(next.Segments, e)
		case e.State == stateUploading:
			// Not verified: the uploader starts over.
		case s != nil && s != active:
			if !inStore || o.size != e.Size {
				l.cfg.Logger.WithField("partition", p.name()).WithField("segment", e.Base).Warn("tier: a verified segment is missing from the store; uploading it again")
				continue
			}
			s.tier.copy.Store(&remoteCopy{etag: e.ETag})
			e.State = stateVerified // an eviction a crash interrupted keeps the local copy
			next.Segments = append(next.Segments, e)
		case s == nil && (e.State == stateEvicted || e.State == stateVerified):
			if !inStore || o.size != e.Size {
				l.cfg.Logger.WithFields(map[string]any{"partition": p.name(), "segment": e.Base, "size": e.Size}).
					Error("tier: a segment that only the store held is missing there or has another size; reads of it fail")
			}
			e.State = stateEvicted
			remote = append(remote, newRemoteSegment(p, e.Base, e.Size, e.ETag, time.Unix(0, e.Sealed)))
			next.Segments = append(next.Segments, e)
		}
	}
	known := func(base int64) bool { return next.find(base) != nil || local[base] != nil }
	var garbage []int64
	bases := make([]int64, 0, len(stored))
	for b := range stored {
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	for _, b := range bases {
		if known(b) {
			continue
		}
		o := stored[b]
		if b < man.Start {
			garbage = append(garbage, b)
			continue
		}
		if b+o.size > active.base {
			continue // past the local log's end: not this log's
		}
		s := newRemoteSegment(p, b, o.size, o.etag, o.mod)
		if !fits(append(append([]*segment(nil), p.list.segs...), remote...), s) {
			l.cfg.Logger.WithFields(map[string]any{"partition": p.name(), "segment": b}).Warn("tier: ignoring a stored object that overlaps the log")
			continue
		}
		remote = append(remote, s)
		next.set(manifestEntry{Base: b, Size: o.size, State: stateEvicted, ETag: o.etag, Sealed: o.mod.UnixNano()})
	}
	if len(garbage) > 0 && !ro {
		if err := l.cfg.Remote.Delete(ctx, p.topic, p.id, garbage); err != nil {
			return err
		}
		l.cfg.Logger.WithFields(map[string]any{"partition": p.name(), "objects": len(garbage)}).Info("tier: deleted objects left over by retention")
	}
	all := append(remote, p.list.segs...)
	sort.Slice(all, func(i, j int) bool { return all[i].base < all[j].base })
	for i := 0; i+1 < len(all); i++ {
		if all[i].base+all[i].size.Load() > all[i+1].base {
			return fmt.Errorf("segment %d (%d bytes) overlaps segment %d: the store and the data directory disagree", all[i].base, all[i].size.Load(), all[i+1].base)
		}
	}
	p.list.mu.Lock()
	p.list.segs = all
	p.list.mu.Unlock()
	if len(next.Segments) > 0 || next.Start > 0 {
		if err := p.fs.writeManifest(p.dir, next); err != nil {
			return err
		}
	}
	l.tier.mu.Lock()
	l.tier.parts[p] = &partTier{man: next}
	l.tier.mu.Unlock()
	return nil
}

func fits(segs []*segment, s *segment) bool {
	for _, o := range segs {
		if s.base < o.base+max(o.size.Load(), 1) && o.base < s.base+s.size.Load() {
			return false
		}
	}
	return true
}
