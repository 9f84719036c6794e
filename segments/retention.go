package segments

import (
	"errors"
	"time"

	"segfs/internal/logfields"
)

// retentionLoop applies RetentionBytes and RetentionAge to every partition until stop is closed.
func (l *Log) retentionLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(l.cfg.retentionInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			for _, p := range l.partitions() {
				select {
				case <-stop:
					return
				default:
				}
				p.applyRetention(now)
			}
		}
	}
}

// applyRetention purges the oldest sealed segments, Kafka style: while the rest still holds
// RetentionBytes, or while the segment is older than RetentionAge.
func (p *Partition) applyRetention(now time.Time) {
	cfg := &p.log.cfg
	segs, err := p.snapshot()
	if err != nil || len(segs) < 2 {
		return
	}
	var total int64
	for _, s := range segs {
		total += s.size.Load()
	}
	for _, s := range segs[:len(segs)-1] {
		size := s.size.Load()
		byBytes := cfg.RetentionBytes > 0 && total-size >= cfg.RetentionBytes
		byAge := cfg.RetentionAge > 0 && now.Sub(time.Unix(0, s.mtime.Load())) > cfg.RetentionAge
		if !byBytes && !byAge {
			return
		}
		if err := p.Purge(s.base); err != nil {
			if !errors.Is(err, ErrNotExist) {
				logfields.Err(p.logger(), err).WithField("segment", s.base).Warn("retention could not purge a segment")
			}
			return
		}
		p.logger().WithFields(map[string]any{"segment": s.base, "size": size}).Info("retention purged segment")
		total -= size
	}
}
