package segments

import (
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Observer gets the durations of appends, Syncs, deferred writes and seals. It is called on the
// write path, sometimes under locks, so it must not block.
type Observer interface {
	Append(d time.Duration)
	Sync(d time.Duration)
	Flush(n int64, d time.Duration)
	Seal(d time.Duration)
}

type partitionCounters struct {
	appends                        atomic.Int64
	appendedBytes                  atomic.Int64
	uploadErrors, remoteReadErrors atomic.Int64
}

// HealthState is a partition's condition. Stalled: deferred bytes wait for disk space. Failed: a
// write failed; the Log must be reopened.
type HealthState string

const (
	HealthOK      HealthState = "ok"
	HealthStalled HealthState = "stalled"
	HealthFailed  HealthState = "failed"
	HealthClosed  HealthState = "closed"
)

// PartitionStats is one partition's state, read without write-path locks.
type PartitionStats struct {
	Topic                  string
	Partition              int
	StartOffset, EndOffset int64
	Segments               int
	SizeBytes              int64
	UnsyncedBytes          int64
	DirtyBytes             int64 // not yet in the segment file
	PreallocatedBytes      int64 // reserved past the end
	LastAppend             time.Time
	Appends, AppendedBytes int64
	Health                 HealthState
	Err                    error
	Tier                   *TierStats
}

// TierStats is a tiered partition's upload state.
type TierStats struct {
	PendingBytes     int64     // without a verified copy
	OldestPending    time.Time // zero if none
	UploadErrors     int64     // each is retried
	RemoteReadErrors int64     // EIO
}

// Stats describes the partition now; a closed one reports HealthClosed and no segments.
func (p *Partition) Stats() PartitionStats {
	st := PartitionStats{
		Topic: p.topic, Partition: p.id,
		Appends: p.counters.appends.Load(), AppendedBytes: p.counters.appendedBytes.Load(),
		DirtyBytes: p.w.dirty.Load(),
	}
	st.Health, st.Err = p.w.healthState()
	// durable first: end only grows, so the difference is never negative.
	durable := p.w.durable.Load()
	st.EndOffset = p.w.end.Load()
	st.UnsyncedBytes = max(0, st.EndOffset-durable)
	segs, err := p.snapshot()
	if err != nil || len(segs) == 0 {
		st.StartOffset = st.EndOffset
		return st
	}
	st.StartOffset = segs[0].base
	st.Segments = len(segs)
	for _, s := range segs {
		st.SizeBytes += s.size.Load()
	}
	active := segs[len(segs)-1]
	if p.log.cfg.Remote != nil {
		st.Tier = p.tierStats(segs)
	}
	st.LastAppend = time.Unix(0, active.mtime.Load())
	st.PreallocatedBytes = active.preallocated()
	if s := p.list.beingSealed(); s != nil && s != active {
		st.PreallocatedBytes += s.preallocated()
	}
	return st
}

func (p *Partition) tierStats(segs []*segment) *TierStats {
	ts := &TierStats{UploadErrors: p.counters.uploadErrors.Load(), RemoteReadErrors: p.counters.remoteReadErrors.Load()}
	if p.log.cfg.RemoteReadOnly {
		return ts // a read-only mount uploads nothing
	}
	for _, s := range segs[:len(segs)-1] {
		if !s.sealed.Load() || s.tier.copy.Load() != nil {
			continue
		}
		ts.PendingBytes += s.size.Load()
		if t := time.Unix(0, s.mtime.Load()); ts.OldestPending.IsZero() || t.Before(ts.OldestPending) {
			ts.OldestPending = t
		}
	}
	return ts
}

func (s *segment) preallocated() int64 {
	if s.sealed.Load() {
		return 0
	}
	return max(0, s.reserved.Load()-s.size.Load())
}

func (w *writer) healthState() (HealthState, error) {
	h := w.health.Load()
	switch {
	case h != nil && h.closed != nil:
		return HealthClosed, h.closed
	case h != nil && h.failed != nil:
		return HealthFailed, h.failed
	}
	if b := w.stall.Load(); b != nil {
		return HealthStalled, b.err
	}
	return HealthOK, nil
}

// Stats describes every partition of the log, sorted by topic and partition number.
func (l *Log) Stats() []PartitionStats {
	ps := l.partitions()
	out := make([]PartitionStats, len(ps))
	for i, p := range ps {
		out[i] = p.Stats()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// Descriptors is the descriptors counted against MaxOpenFiles, and that budget.
func (l *Log) Descriptors() (open, limit int) { return l.fs.fds.usage() }

func (c *fdCache) usage() (open, limit int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open, c.limit
}

// Tiered reports whether the log has Config.Remote.
func (l *Log) Tiered() bool { return l.cfg.Remote != nil }

// DirtyMemory is the chunk memory deferred appends hold and its cap.
func (l *Log) DirtyMemory() (used, limit int64) {
	return l.budget.inUse(), l.cfg.MaxDirtyTotal
}

// observeStart reads only the monotonic clock, and only for an Observer.
func (w *writer) observeStart() int64 {
	if w.log.cfg.Observer == nil {
		return 0
	}
	return w.monoNow()
}

func (p *Partition) appended(began int64, n int, err error) {
	if err != nil || n == 0 {
		return
	}
	p.counters.appends.Add(1)
	p.counters.appendedBytes.Add(int64(n))
	if o := p.log.cfg.Observer; o != nil {
		o.Append(time.Duration(p.w.monoNow() - began))
	}
}

func (w *writer) observeSync(began int64) {
	if o := w.log.cfg.Observer; o != nil {
		o.Sync(time.Duration(w.monoNow() - began))
	}
}

func (w *writer) observeFlush(n int64, d time.Duration) {
	if o := w.log.cfg.Observer; o != nil {
		o.Flush(n, d)
	}
}

func (w *writer) observeSeal(began int64) {
	if o := w.log.cfg.Observer; o != nil {
		o.Seal(time.Duration(w.monoNow() - began))
	}
}

func (p *Partition) logger() *logrus.Entry {
	return p.log.cfg.Logger.WithFields(logrus.Fields{"topic": p.topic, "partition": p.id})
}

func (w *writer) logger() *logrus.Entry {
	topic, id, _ := strings.Cut(w.name, "/")
	n, _ := strconv.Atoi(id)
	return w.log.cfg.Logger.WithFields(logrus.Fields{"topic": topic, "partition": n})
}
