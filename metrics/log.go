package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"segfs/segments"
)

// logCollector reads a segments.Log at scrape time. Per-partition values are summed into one series
// per topic or per mount when the detail asks for it; offsets then are sums too, so rate() of the
// end offset is still the write throughput.
type logCollector struct {
	log    *segments.Log
	detail Detail

	startOffset, endOffset, segments, size, unsynced, dirty *prometheus.Desc
	appends, appendedBytes, lastAppend, failed, stalled     *prometheus.Desc
	topics, partitions, preallocated, dirtyMem, dirtyLimit  *prometheus.Desc
}

func newLogCollector(l *segments.Log, detail Detail) *logCollector {
	var labels []string
	switch detail {
	case PerPartition:
		labels = []string{"topic", "partition"}
	case PerTopic:
		labels = []string{"topic"}
	}
	desc := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, labels, nil) }
	mount := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &logCollector{
		log: l, detail: detail,
		startOffset: desc("segfs_log_start_offset_bytes", "Partition offset of the first retained byte (Kafka's LogStartOffset, in bytes)."),
		endOffset:   desc("segfs_log_end_offset_bytes", "Partition offset after the last appended byte (Kafka's LogEndOffset, in bytes); the size of .stream."),
		segments:    desc("segfs_log_segments", "Retained segments, the active one included."),
		size:        desc("segfs_log_size_bytes", "Bytes held by the retained segments."),
		unsynced:    desc("segfs_log_unsynced_bytes", "Bytes appended but not yet made durable by fsync, close or a seal."),
		dirty:       desc("segfs_log_dirty_bytes", "Bytes appended but not yet written to the segment file (persist=deferred)."),
		appends:     desc("segfs_log_appends_total", "Appends (FUSE WRITE requests to current) accepted since the mount."),
		appendedBytes: desc("segfs_log_appended_bytes_total",
			"Bytes appended since the mount."),
		lastAppend: desc("segfs_log_last_append_timestamp_seconds",
			"Time of the last append: the active segment's mtime (the latest over the partitions summed)."),
		failed: desc("segfs_log_partitions_failed",
			"Partitions whose writes failed for good (EIO, failed fsync): appends fail until the next mount."),
		stalled: desc("segfs_log_partitions_stalled",
			"Partitions whose deferred bytes wait for disk space: appends fail with ENOSPC until a retry writes them."),
		topics:       mount("segfs_topics", "Topics in the mount."),
		partitions:   mount("segfs_partitions", "Partitions in the mount."),
		preallocated: mount("segfs_preallocated_bytes", "Disk space reserved (fallocate) ahead of the appends of active segments."),
		dirtyMem: mount("segfs_dirty_memory_bytes",
			"Memory holding deferred bytes not yet written, or kept for readers just behind the flusher."),
		dirtyLimit: mount("segfs_dirty_memory_limit_bytes", "The cap on deferred memory (max_dirty_total)."),
	}
}

func (c *logCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.startOffset, c.endOffset, c.segments, c.size, c.unsynced, c.dirty, c.appends, c.appendedBytes,
		c.lastAppend, c.failed, c.stalled, c.topics, c.partitions, c.preallocated, c.dirtyMem, c.dirtyLimit,
	} {
		ch <- d
	}
}

// sums is what one series adds up: a partition, a topic or the mount.
type sums struct {
	labels                                      []string
	start, end, segments, size, unsynced, dirty int64
	appends, appended, failed, stalled          int64
	lastAppend                                  float64
}

func (s *sums) add(st segments.PartitionStats) {
	s.start += st.StartOffset
	s.end += st.EndOffset
	s.segments += int64(st.Segments)
	s.size += st.SizeBytes
	s.unsynced += st.UnsyncedBytes
	s.dirty += st.DirtyBytes
	s.appends += st.Appends
	s.appended += st.AppendedBytes
	switch st.Health {
	case segments.HealthFailed:
		s.failed++
	case segments.HealthStalled:
		s.stalled++
	}
	if !st.LastAppend.IsZero() {
		s.lastAppend = max(s.lastAppend, float64(st.LastAppend.UnixNano())/1e9)
	}
}

func (c *logCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.log.Stats()
	var groups []*sums
	topics, partitions := 0, 0
	var prealloc int64
	for i, st := range stats {
		if st.Health == segments.HealthClosed {
			continue // deleted while this scrape ran
		}
		partitions++
		prealloc += st.PreallocatedBytes
		newTopic := i == 0 || stats[i-1].Topic != st.Topic
		if newTopic {
			topics++
		}
		switch {
		case c.detail == PerPartition:
			groups = append(groups, &sums{labels: []string{st.Topic, strconv.Itoa(st.Partition)}})
		case c.detail == PerTopic && newTopic:
			groups = append(groups, &sums{labels: []string{st.Topic}})
		case len(groups) == 0:
			groups = append(groups, &sums{})
		}
		groups[len(groups)-1].add(st)
	}
	if c.detail == PerMount && len(groups) == 0 {
		groups = append(groups, &sums{}) // the mount's series exist before its first topic
	}
	gauge := func(d *prometheus.Desc, v float64, labels []string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels []string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, g := range groups {
		gauge(c.startOffset, float64(g.start), g.labels)
		gauge(c.endOffset, float64(g.end), g.labels)
		gauge(c.segments, float64(g.segments), g.labels)
		gauge(c.size, float64(g.size), g.labels)
		gauge(c.unsynced, float64(g.unsynced), g.labels)
		gauge(c.dirty, float64(g.dirty), g.labels)
		counter(c.appends, float64(g.appends), g.labels)
		counter(c.appendedBytes, float64(g.appended), g.labels)
		gauge(c.lastAppend, g.lastAppend, g.labels)
		gauge(c.failed, float64(g.failed), g.labels)
		gauge(c.stalled, float64(g.stalled), g.labels)
	}
	used, limit := c.log.DirtyMemory()
	gauge(c.topics, float64(topics), nil)
	gauge(c.partitions, float64(partitions), nil)
	gauge(c.preallocated, float64(prealloc), nil)
	gauge(c.dirtyMem, float64(used), nil)
	gauge(c.dirtyLimit, float64(limit), nil)
}
