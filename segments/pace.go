package segments

import (
	"time"
)

// Deferred appends are paced once a partition's backlog grows, instead of running at memory speed
// until max_dirty and then stopping dead for a whole flusher write: pacing spreads that wait over
// every append, as Linux's balance_dirty_pages throttles writers of dirty page cache.
//
// Below paceFloor of max_dirty in the backlog nothing is delayed. Above it, each append takes a time
// slot of len/rate × 2(backlog−floor)/(max−floor), where rate is what the flusher's recent writes
// achieved: one append's disk time when the backlog is halfway to max_dirty, so the backlog settles
// there, and twice that near max_dirty, which then remains only the backstop. Slots are handed out in
// order (paceNext), so producers sharing a partition share its rate. The delay is taken before
// appendMu, so a paced append never holds up the partition's other appends, Syncs or rotations.

// paceFloor is the fraction of max_dirty (in quarters) below which appends are never delayed.
const paceFloor = 1

// paceMinDelay is the shortest delay worth a sleep; below it, the timer's own cost dominates.
const paceMinDelay = 20 * time.Microsecond

// paceMaxWait bounds one append's delay whatever the rate estimate says: pacing only spreads the wait
// for memory, and the budget is the backstop, so a rate measured on one stalled write must not hold
// producers for seconds.
const paceMaxWait = 100 * time.Millisecond

// pace delays an append of n bytes according to the partition's backlog; see above. No append waits
// longer than one flusher piece takes at the measured rate (at most paceMaxWait): beyond that the
// queue of slots is dropped, since the budget would have released memory by then anyway.
func (w *writer) pace(n int) {
	if n == 0 || w.writeErr() != nil || w.stall.Load() != nil {
		return // the append fails, or retries the stuck write itself, at once: delaying it helps nothing
	}
	rate := w.flushRate.Load() // bytes per second
	if rate <= 0 {
		return
	}
	cfg := &w.log.cfg
	maxDirty := min(cfg.MaxDirty, cfg.MaxDirtyTotal)
	if chunkBound(int64(n), w.log.chunk)*w.log.chunk > maxDirty {
		return // written through (see appendLocked): it never joins the backlog it would be paced by
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
	now := w.log.monoNow()
	var end int64
	for {
		next := w.paceNext.Load()
		end = min(max(now, next)+slot, now+limit)
		if w.paceNext.CompareAndSwap(next, end) {
			break
		}
	}
	// The append goes ahead at the end of its slot: its own share of the disk's time.
	if wait := time.Duration(end - now); wait >= paceMinDelay {
		time.Sleep(wait)
	}
}

// recordFlushRate folds one successful flusher write of n bytes that took d into the partition's rate
// estimate, a moving average over the last few writes.
func (w *writer) recordFlushRate(n int64, d time.Duration) {
	if n < w.log.chunk || d <= 0 {
		return // small writes measure the syscall's latency, not the disk's bandwidth
	}
	sample := int64(float64(n) / d.Seconds())
	old := w.flushRate.Load()
	if old == 0 {
		w.flushRate.Store(sample)
		return
	}
	w.flushRate.Store(old - old/8 + sample/8)
}
