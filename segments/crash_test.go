package segments

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"segfs/directio"
)

// crashSpec tells the checker what a workload promised: the stream seed of each partition ("topic/n").
type crashSpec struct {
	mode  mode
	block int64 // direct-I/O block of the test filesystem
	seeds map[string]uint64
}

func testBlock(t testing.TB) int64 {
	a, err := directio.WriteAlignment(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return int64(max(a.Offset, a.Memory))
}

// crashExpect is what must hold for one partition after a crash at a given point.
type crashExpect struct {
	created bool  // CreateTopic returned: the partition must exist
	minEnd  int64 // bytes that must have survived (3.2a, and 3.2d for inline process crashes)
}

// expectations derives, from the marks before crash point k, what recovery must deliver.
func (s crashSpec) expectations(marks []recMark, k int, processCrash bool) map[string]crashExpect {
	exp := map[string]crashExpect{}
	acked := map[string]int64{}
	for _, mk := range marks {
		if mk.at > k {
			break
		}
		e := exp[mk.key]
		switch mk.kind {
		case "created":
			e.created = true
		case "durable":
			e.minEnd = max(e.minEnd, mk.value)
		case "append":
			acked[mk.key] = max(acked[mk.key], mk.value)
		}
		exp[mk.key] = e
	}
	if s.mode.persist == Sync {
		// Every acknowledged append was durable when Append returned, under both failure models.
		for key, a := range acked {
			e := exp[key]
			e.minEnd = max(e.minEnd, a)
			exp[key] = e
		}
	} else if s.mode.persist == Inline && (processCrash && s.mode.io == directio.Direct || s.mode.io == directio.DirectSync) {
		// 3.2d: a killed process loses at most the in-memory tail, alignment-1 bytes; with O_DSYNC
		// every full block is durable, so a power loss loses no more.
		for key, a := range acked {
			e := exp[key]
			e.minEnd = max(e.minEnd, a-(s.block-1))
			exp[key] = e
		}
	} else if processCrash && s.mode.persist == Inline {
		for key, a := range acked {
			e := exp[key]
			e.minEnd = max(e.minEnd, a) // buffered inline: every byte is in the page cache
			exp[key] = e
		}
	}
	return exp
}

// crashChecker opens rebuilt states and checks 3.2 a-d on each.
type crashChecker struct {
	t       *testing.T
	spec    crashSpec
	scratch string
	seen    map[string]bool
	checked int
}

func newCrashChecker(t *testing.T, spec crashSpec) *crashChecker {
	return &crashChecker{t: t, spec: spec, scratch: t.TempDir(), seen: map[string]bool{}}
}

// check rebuilds the state, opens it (recovery), and verifies every partition: it exists if its
// creation was acknowledged, holds a prefix of its stream starting at its first segment (no padding,
// no zeros, no reordering: 3.2b and c), at least exp.minEnd bytes (3.2a and d), and takes appends
// again. It returns the recovered sizes.
func (c *crashChecker) check(what string, st crashState, exp map[string]crashExpect) map[string]int64 {
	c.t.Helper()
	d := st.digest()
	key := fmt.Sprintf("%x %v", d, exp)
	if c.seen[key] {
		return nil
	}
	c.seen[key] = true
	c.checked++
	dir := filepath.Join(c.scratch, fmt.Sprint(c.checked))
	if err := os.Mkdir(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := st.materialize(dir); err != nil {
		c.t.Fatal(err)
	}
	cfg := testConfig(c.spec.mode)
	cfg.Syscalls = noSyncSyscalls{}
	l, err := Open(dir, cfg)
	if err != nil {
		c.t.Fatalf("%s: recovery failed: %v", what, err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			c.t.Fatalf("%s: close: %v", what, err)
		}
	}()
	sizes := map[string]int64{}
	for key, seed := range c.spec.seeds {
		e := exp[key]
		topic, n, _ := strings.Cut(key, "/")
		var id int
		fmt.Sscan(n, &id)
		tp, err := l.Topic(topic)
		var p *Partition
		if err == nil {
			p, err = tp.Partition(id)
		}
		if err != nil {
			if e.created {
				c.t.Fatalf("%s: partition %s was created but is gone: %v", what, key, err)
			}
			continue
		}
		segs := p.Segments()
		first, end := segs[0].Base, p.Size()
		data := make([]byte, end-first)
		if n, err := p.ReadAt(data, first); n != len(data) {
			c.t.Fatalf("%s: %s: ReadAt = %d, %v", what, key, n, err)
		}
		if i := firstDiff(data, pattern(seed, first, len(data))); i >= 0 {
			c.t.Fatalf("%s: %s: recovered byte at %d is %#x, want %#x (segments %s)", what, key, first+int64(i), data[i], patternByte(seed, first+int64(i)), segInfoString(segs))
		}
		if end < e.minEnd {
			c.t.Fatalf("%s: %s: recovered %d bytes, but %d were acknowledged as durable (segments %s)", what, key, end, e.minEnd, segInfoString(segs))
		}
		sizes[key] = end
		if _, err := p.Append(pattern(seed, end, 700)); err != nil {
			c.t.Fatalf("%s: %s: append after recovery: %v", what, key, err)
		}
		if err := p.Sync(); err != nil {
			c.t.Fatalf("%s: %s: sync after recovery: %v", what, key, err)
		}
		tail := make([]byte, 700)
		if _, err := p.ReadAt(tail, end); err != nil {
			c.t.Fatal(err)
		}
		checkPattern(c.t, what+": append after recovery", seed, end, tail)
	}
	return sizes
}

// enumerate checks every crash point of a recorded workload under both failure models: a process
// crash (every completed call persists) and a power loss (only what a barrier made durable), plus the
// power-loss states in which one file or directory got a prefix of its unsynced calls persisted,
// with every other one at its barrier or fully persisted.
func (c *crashChecker) enumerate(ops []recOp, marks []recMark) {
	for k := 0; k <= len(ops); k++ {
		at := fmt.Sprintf("crash after %d/%d ops", k, len(ops))
		if k > 0 {
			at += fmt.Sprintf(" (last: %s %s)", ops[k-1].kind, ops[k-1].path)
		}
		c.check(at+", process crash", rebuild(ops, func(i int) bool { return i < k }), c.spec.expectations(marks, k, true))
		power := c.spec.expectations(marks, k, false)
		dur := durability(ops, k)
		c.check(at+", power loss", rebuild(ops, func(i int) bool { return i < k && dur[i] }), power)
		pending := map[string][]int{}
		for i := 0; i < k; i++ {
			if !dur[i] {
				pending[ops[i].stream()] = append(pending[ops[i].stream()], i)
			}
		}
		for stream, idx := range pending {
			for j := range idx {
				last := idx[j]
				partial := func(i int) bool { return ops[i].stream() == stream && i <= last }
				c.check(fmt.Sprintf("%s, power loss, %s persisted up to op %d", at, stream, last),
					rebuild(ops, func(i int) bool { return i < k && (dur[i] || partial(i)) }), power)
				c.check(fmt.Sprintf("%s, power loss, all persisted but %s after op %d", at, stream, last),
					rebuild(ops, func(i int) bool { return i < k && (ops[i].stream() != stream || dur[i] || i <= last) }), power)
			}
		}
	}
}

// recordingConfig wires a recorder and the rotation marks into a test config. An inline (or sync)
// rotation seals before it lists the successor, so OnRotate marks the sealed segment durable; a deferred one
// seals in the background, and only WaitSealed (see sealMark) says when that is done.
func recordingConfig(m mode, rec *crashRecorder) Config {
	cfg := testConfig(m)
	cfg.Syscalls = rec
	if m.persist != Deferred {
		cfg.OnRotate = func(topic string, partition int, sealed, active int64) {
			rec.mark(fmt.Sprintf("%s/%d", topic, partition), "durable", active)
		}
	}
	return cfg
}

// sealMark waits for the seal of the segment at base, as a reader of a segment being sealed does, and
// marks its end durable.
func sealMark(t *testing.T, rec *crashRecorder, key string, p *Partition, base int64) {
	t.Helper()
	if err := p.WaitSealed(base); err != nil {
		t.Fatal(err)
	}
	info, err := p.Segment(base)
	if err != nil {
		t.Fatal(err)
	}
	rec.mark(key, "durable", info.Base+info.Size)
}

// TestCrashEveryPoint (issue 3.4): a scripted workload of odd-sized appends, syncs, rotations and a
// purge on two partitions, recorded call by call, then crashed at every point in every mode.
func TestCrashEveryPoint(t *testing.T) {
	for _, m := range allModes() {
		t.Run(m.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			rec := newCrashRecorder(dir)
			cfg := recordingConfig(m, rec)
			cfg.SegmentSize = 3000
			l, err := Open(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			spec := crashSpec{mode: m, block: testBlock(t), seeds: map[string]uint64{"c/0": 100, "c/1": 101}}
			tp, err := l.CreateTopic("c", 2)
			if err != nil {
				t.Fatal(err)
			}
			rec.mark("c/0", "created", 0)
			rec.mark("c/1", "created", 0)
			rng := rand.New(rand.NewPCG(uint64(m.io), uint64(m.persist)))
			sizes := []int{1, 100, 511, 512, 513, 700, 1500, 2900, 3500}
			// persist=sync makes every append durable, so each step records more calls and crash
			// states; fewer steps keep its enumeration as long as the other modes'.
			steps, purgeAt := 36, 24
			if m.persist == Sync {
				steps, purgeAt = 24, 20
			}
			for step := 0; step < steps; step++ {
				key := fmt.Sprintf("c/%d", step%2)
				p, _ := tp.Partition(step % 2)
				before := p.Active()
				appendPattern(t, p, spec.seeds[key], sizes[rng.IntN(len(sizes))])
				rec.mark(key, "append", p.Size())
				if p.Active().Base != before.Base && rng.IntN(2) == 0 {
					// Half the deferred seals are waited for here; the flusher does the others.
					sealMark(t, rec, key, p, before.Base)
				}
				if rng.IntN(4) == 0 {
					end := p.Size()
					if err := p.Sync(); err != nil {
						t.Fatal(err)
					}
					rec.mark(key, "durable", end)
				}
				if step == purgeAt {
					if segs := p.Segments(); len(segs) > 1 {
						if err := p.Purge(segs[0].Base); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			ends := map[string]int64{}
			for key := range spec.seeds {
				var id int
				fmt.Sscan(key[2:], &id)
				p, _ := tp.Partition(id)
				ends[key] = p.Size()
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for key, end := range ends {
				rec.mark(key, "durable", end)
			}
			ops, marks := rec.snapshot()
			c := newCrashChecker(t, spec)
			c.enumerate(ops, marks)
			t.Logf("%d recorded calls, %d distinct crash states checked", len(ops), c.checked)
		})
	}
}
