package segments

import (
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Observer receives the timings of events only this package sees. Its methods run on the write
// path, some under partition locks: they must not block, and should not allocate.
type Observer interface {
	// Append: one successful Append, from its call to its return (pacing and memory waits included).
	Append(d time.Duration)
	// Sync: one Sync that had bytes to make durable (pending writes, tail block, fdatasync).
	Sync(d time.Duration)
	// Flush: one write of n deferred bytes to a segment file.
	Flush(n int64, d time.Duration)
	// Seal: sealing one segment (tail block, truncate, fsync of the file and its directory).
	Seal(d time.Duration)
}

// partitionCounters are the partition's event counters: two atomic adds per append, no lock.
type partitionCounters struct {
	appends       atomic.Int64
	appendedBytes atomic.Int64
}

// HealthState is a partition's condition as Stats reports it.
type HealthState string

const (
	HealthOK HealthState = "ok"
	// HealthStalled: deferred bytes wait for disk space; appends fail until a retry writes them.
	HealthStalled HealthState = "stalled"
	// HealthFailed: a write failed for good; appends fail until the Log is reopened.
	HealthFailed HealthState = "failed"
	// HealthClosed: closed or deleted.
	HealthClosed HealthState = "closed"
)

// PartitionStats is one partition's state at one moment, read without any lock held across I/O.
type PartitionStats struct {
	Topic     string
	Partition int
	// StartOffset is the first retained byte; EndOffset the offset after the last appended byte.
	StartOffset, EndOffset int64
	Segments               int
	SizeBytes              int64 // sum of the retained segments' logical sizes
	// UnsyncedBytes were appended but not yet made durable by a Sync or a seal.
	UnsyncedBytes int64
	// DirtyBytes (deferred) were appended but not yet handed to the segment file.
	DirtyBytes int64
	// PreallocatedBytes is disk space reserved past the logical end of the segments being written.
	PreallocatedBytes int64
	LastAppend        time.Time // mtime of the active segment: its last append, or its creation
	// Appends and AppendedBytes count successful appends since the partition was opened.
	Appends, AppendedBytes int64
	Health                 HealthState
	Err                    error // the failure behind a health other than ok
}

// Stats describes the partition now. A closed or deleted partition reports HealthClosed and no segments.
func (p *Partition) Stats() PartitionStats {
	st := PartitionStats{
		Topic: p.topic, Partition: p.id,
		Appends: p.counters.appends.Load(), AppendedBytes: p.counters.appendedBytes.Load(),
		DirtyBytes: p.w.dirty.Load(),
	}
	st.Health, st.Err = p.w.healthState()
	// durable first: it never passes end, so the difference is never negative.
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
	st.LastAppend = time.Unix(0, active.mtime.Load())
	st.PreallocatedBytes = active.preallocated()
	if s := p.list.beingSealed(); s != nil && s != active {
		st.PreallocatedBytes += s.preallocated()
	}
	return st
}

// preallocated is the disk space reserved past s's logical end (zero once sealed).
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

// DirtyMemory reports the chunk memory deferred appends hold (dirty or kept for readers behind the
// flusher) and its cap, Config.MaxDirtyTotal.
func (l *Log) DirtyMemory() (used, limit int64) {
	return l.budget.inUse(), l.cfg.MaxDirtyTotal
}

// observeStart is when an event the Observer will be told about began (monoNow: one clock read,
// where time.Now takes two); zero without an Observer, so a mount without metrics reads no clock.
func (w *writer) observeStart() int64 {
	if w.log.cfg.Observer == nil {
		return 0
	}
	return w.monoNow()
}

// appended counts a finished Append of n bytes that began at began (observeStart).
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

// logger is the log entry every warning or error about the partition starts from: topic and
// partition as separate fields, so that log queries can filter on either.
func (p *Partition) logger() *logrus.Entry {
	return p.log.cfg.Logger.WithFields(logrus.Fields{"topic": p.topic, "partition": p.id})
}

// logger is Partition.logger for the write side, which knows its partition by name only:
// newPartition makes it "topic/id", and topic names contain no '/'.
func (w *writer) logger() *logrus.Entry {
	topic, id, _ := strings.Cut(w.name, "/")
	n, _ := strconv.Atoi(id)
	return w.log.cfg.Logger.WithFields(logrus.Fields{"topic": topic, "partition": n})
}
