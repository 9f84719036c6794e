package segments

import (
	"errors"
	"testing"
	"time"

	"segfs/directio"
)

func pacedPartition(t *testing.T) *Partition {
	t.Helper()
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.MaxDirty, cfg.MaxDirtyTotal = 64<<20, 1<<30
	return mustPartition(t, openLog(t, t.TempDir(), cfg), "pace", 0)
}

// TestPaceNotBelowFloor: a backlog below a quarter of max_dirty delays nothing, so a producer the disk
// keeps up with never waits.
func TestPaceNotBelowFloor(t *testing.T) {
	p := pacedPartition(t)
	p.w.flushRate.Store(1 << 30)
	p.w.dirty.Store(16 << 20) // exactly the floor
	p.w.pace(1 << 20)
	if next := p.w.paceNext.Load(); next != 0 {
		t.Fatalf("backlog at the floor took a slot (paceNext %d)", next)
	}
}

// TestPaceSpreadsAppends: halfway between the floor and max_dirty, each append takes one append's disk
// time at the measured rate, and slots queue up, so two appends take at least two slots. Slots are on
// the monotonic clock, so a wall clock set back cannot turn them into a stall.
func TestPaceSpreadsAppends(t *testing.T) {
	p := pacedPartition(t)
	const rate = 512 << 20 // bytes per second
	p.w.flushRate.Store(rate)
	p.w.dirty.Store(16<<20 + 24<<20) // halfway from the floor (16 MiB) to max_dirty (64 MiB)
	n := 1 << 20
	slot := time.Duration(float64(n) / rate * float64(time.Second)) // about 1.95 ms
	began, mono := time.Now(), p.w.monoNow()
	p.w.pace(n)
	p.w.pace(n)
	if took := time.Since(began); took < 2*slot-time.Millisecond/10 {
		t.Fatalf("two paced appends took %v, want at least two slots of %v", took, slot)
	}
	if reserved := time.Duration(p.w.paceNext.Load() - mono); reserved < 2*slot-time.Millisecond/10 {
		t.Fatalf("slots reserved up to %v after the start, want at least %v", reserved, 2*slot)
	}
}

// TestPaceWaitIsBounded: a rate estimate from one stalled write (here 1 MB/s) or a long queue of slots
// must not hold an append for longer than one flusher piece at that rate, and never past paceMaxWait:
// the budget is the backstop.
func TestPaceWaitIsBounded(t *testing.T) {
	p := pacedPartition(t)
	p.w.flushRate.Store(1 << 20)
	p.w.dirty.Store(63 << 20)
	p.w.paceNext.Store(p.w.monoNow() + int64(time.Hour)) // a queue far in the future
	before := p.w.monoNow()
	p.w.pace(1 << 20)
	// The margin only absorbs scheduling between the two clock reads; unbounded, the slot would end an
	// hour out.
	if end := time.Duration(p.w.paceNext.Load() - before); end > paceMaxWait+time.Second {
		t.Fatalf("slot ends %v after the call, want at most paceMaxWait %v", end, paceMaxWait)
	}
}

// TestPaceSkips: appends that never join the backlog (empty, or written through: larger than max_dirty) and
// appends of a halted partition or one whose flusher is stuck on a full disk are not delayed.
func TestPaceSkips(t *testing.T) {
	for name, setup := range map[string]func(p *Partition) int{
		"write-through": func(p *Partition) int { return 64 << 20 },
		"empty":         func(p *Partition) int { return 0 },
		"halted":        func(p *Partition) int { p.w.failLocked(ErrClosed); return 1 << 20 },
		"flush stalled": func(p *Partition) int { p.w.stall.Store(&errBox{errors.New("no space")}); return 1 << 20 },
	} {
		t.Run(name, func(t *testing.T) {
			p := pacedPartition(t)
			p.w.flushRate.Store(1 << 20)
			p.w.dirty.Store(60 << 20)
			n := setup(p)
			p.w.pace(n)
			if next := p.w.paceNext.Load(); next != 0 {
				t.Fatalf("paced (paceNext %d)", next)
			}
			p.w.stall.Store(nil)
		})
	}
}

// TestPaceUnmeasured: until the flusher has measured a rate there is nothing to pace by.
func TestPaceUnmeasured(t *testing.T) {
	p := pacedPartition(t)
	p.w.dirty.Store(60 << 20)
	p.w.pace(1 << 20)
	if next := p.w.paceNext.Load(); next != 0 {
		t.Fatalf("paced without a measured rate (paceNext %d)", next)
	}
}

// TestRecordFlushRate: writes smaller than a chunk measure syscall latency and are ignored; larger
// ones feed a moving average.
func TestRecordFlushRate(t *testing.T) {
	p := pacedPartition(t)
	p.w.recordFlushRate(4096, time.Millisecond)
	if r := p.w.flushRate.Load(); r != 0 {
		t.Fatalf("a 4 KiB write set the rate to %d", r)
	}
	const fast = 1000 << 20 // 8 MiB in 8 ms
	p.w.recordFlushRate(8<<20, 8*time.Millisecond)
	if first := p.w.flushRate.Load(); first != fast {
		t.Fatalf("first sample: rate %d, want %d", first, fast)
	}
	p.w.recordFlushRate(8<<20, 16*time.Millisecond) // half as fast
	if r := p.w.flushRate.Load(); r >= fast || r <= fast/2 {
		t.Fatalf("after a slower write the rate is %d, want between %d and %d", r, fast/2, fast)
	}
}
