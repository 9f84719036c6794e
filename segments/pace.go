package segments

import (
	"time"
)

// Pacing spreads the wait for memory over every deferred append, as balance_dirty_pages does,
// instead of filling max_dirty and stopping for a whole flusher write. Above the floor, an append
// takes a slot of len/rate × 2(backlog−floor)/(max−floor): the backlog settles halfway. Slots are
// handed out in order (paceNext), so producers share a partition's rate.

// paceFloor is the backlog, in quarters of max_dirty, below which nothing is delayed.
const paceFloor = 1

const paceMinDelay = 20 * time.Microsecond

// paceMaxWait bounds one delay, so that a rate measured on one stalled write cannot hold producers.
const paceMaxWait = 100 * time.Millisecond

// pace delays an append by at most one flusher piece's time: by then memory is released anyway.
func (w *writer) pace(n int) {
	if n == 0 || w.writeErr() != nil || w.stall.Load() != nil {
		return // it fails, or retries the stuck write, at once
	}
	rate := w.flushRate.Load()
	if rate <= 0 {
		return
	}
	cfg := &w.log.cfg
	maxDirty := min(cfg.MaxDirty, cfg.MaxDirtyTotal)
	if chunkBound(int64(n), w.log.chunk)*w.log.chunk > maxDirty {
		return // written through, never part of the backlog
	}
	floor := maxDirty * paceFloor / 4
	backlog := w.dirty.Load()
	if backlog <= floor {
		return
	}
	nsPerByte := float64(time.Second) / float64(rate)
	f := min(float64(backlog-floor)/float64(maxDirty-floor), 1)
	slot := int64(2 * f * float64(n) * nsPerByte)
	limit := min(int64(paceMaxWait), int64(float64(cfg.flushWriteCap)*nsPerByte))
	now := w.monoNow()
	var end int64
	for {
		next := w.paceNext.Load()
		end = min(max(now, next)+slot, now+limit)
		if w.paceNext.CompareAndSwap(next, end) {
			break
		}
	}
	if wait := time.Duration(end - now); wait >= paceMinDelay {
		time.Sleep(wait)
	}
}

func (w *writer) recordFlushRate(n int64, d time.Duration) {
	if n < w.log.chunk || d <= 0 {
		return // small writes measure latency, not bandwidth
	}
	sample := int64(float64(n) / d.Seconds())
	old := w.flushRate.Load()
	if old == 0 {
		w.flushRate.Store(sample)
		return
	}
	w.flushRate.Store(old - old/8 + sample/8)
}

// monoNow is monotonic so pacing slots do not jump with the clock.
func (w *writer) monoNow() int64 { return int64(time.Since(w.epoch)) }
