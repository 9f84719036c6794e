package segments

import (
	"fmt"
	"slices"
	"testing"

	"segfs/directio"
)

// TestCrashFlushAndTruncateSteps (issue 3.3) crashes at every step of a Sync's flush_and_truncate and
// of a rotation's seal, in both direct modes, and asserts the exact recovered length at each: in
// particular, a crash after the padded write and before the truncate recovers the logical length,
// not the zeros.
func TestCrashFlushAndTruncateSteps(t *testing.T) {
	for _, io := range []directio.Mode{directio.Direct, directio.DirectSync} {
		t.Run(io.String(), func(t *testing.T) {
			m := mode{io, Inline}
			dir := t.TempDir()
			rec := newCrashRecorder(dir)
			cfg := recordingConfig(m, rec)
			b := testBlock(t)
			a1 := b + b/2        // Sync: one full block on disk, half a block in the tail
			t2 := a1 + b/2 + b/4 // then two full blocks on disk, a quarter block in the tail
			cfg.SegmentSize = t2 + b/2
			l, err := Open(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			const key = "s/0"
			spec := crashSpec{mode: m, block: b, seeds: map[string]uint64{key: 5}}
			p := mustPartition(t, l, "s", 0)
			rec.mark(key, "created", 0)
			appendPattern(t, p, 5, int(a1))
			rec.mark(key, "append", a1)

			syncStart := len(rec.ops)
			if err := p.Sync(); err != nil {
				t.Fatal(err)
			}
			rec.mark(key, "durable", a1)
			syncEnd := len(rec.ops)

			appendPattern(t, p, 5, int(t2-a1))
			rec.mark(key, "append", t2)
			rotStart := len(rec.ops)
			appendPattern(t, p, 5, int(b/2+b/4)) // does not fit: seal at t2, then into the new tail
			rec.mark(key, "append", t2+b/2+b/4)
			rotEnd := len(rec.ops)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			ops, marks := rec.snapshot()

			kinds := func(from, to int) []string {
				var ks []string
				for _, op := range ops[from:to] {
					ks = append(ks, op.kind.String()+" "+op.path)
				}
				return ks
			}
			seg0, seg1 := "s/0/"+SegmentName(0), "s/0/"+SegmentName(t2)
			wantSync := []string{"pwritev s/0/.commit", "fsync s/0/.commit", "pwritev " + seg0, "ftruncate " + seg0, "fsync " + seg0}
			wantRot := []string{"pwritev s/0/.commit", "fsync s/0/.commit", "pwritev " + seg0, "ftruncate " + seg0, "fsync " + seg0, "dirsync s/0", "create " + seg1, "dirsync s/0"}
			if got := kinds(syncStart, syncEnd); !slices.Equal(got, wantSync) {
				t.Fatalf("Sync calls:\n got %q\nwant %q", got, wantSync)
			}
			if got := kinds(rotStart, rotEnd); !slices.Equal(got, wantRot) {
				t.Fatalf("rotation calls:\n got %q\nwant %q", got, wantRot)
			}

			// Recovered length after a crash following step j (0 = before the first call).
			type want struct{ process, power []int64 }
			var sync, rot want
			n := func(v int64, k int) []int64 { return slices.Repeat([]int64{v}, k) }
			if io == directio.DirectSync {
				// Every completed write is durable; the truncate only with the final fsync.
				sync = want{append(n(b, 3), n(a1, 3)...), append(n(b, 3), n(a1, 3)...)}
				rot = want{append(n(2*b, 3), n(t2, 6)...), append(n(2*b, 3), n(t2, 6)...)}
			} else {
				// Nothing of the segment is durable before its fsync.
				sync = want{append(n(b, 3), n(a1, 3)...), append(n(0, 5), a1)}
				rot = want{append(n(2*b, 3), n(t2, 6)...), append(n(a1, 5), n(t2, 4)...)}
			}
			c := newCrashChecker(t, spec)
			run := func(name string, start int, steps []string, w want) {
				for j := 0; j <= len(steps); j++ {
					k := start + j
					step := "before " + name
					if j > 0 {
						step = fmt.Sprintf("%s step %d (%s)", name, j, steps[j-1])
					}
					for _, power := range []bool{false, true} {
						keep, exp, label := func(i int) bool { return i < k }, w.process[j], "process crash"
						if power {
							dur := durability(ops, k)
							keep, exp, label = func(i int) bool { return i < k && dur[i] }, w.power[j], "power loss"
						}
						c.seen = map[string]bool{} // check every step, even repeated states
						sizes := c.check(step+", "+label, rebuild(ops, keep), spec.expectations(marks, k, !power))
						if sizes[key] != exp {
							t.Errorf("%s, %s: recovered %d bytes, want exactly %d", step, label, sizes[key], exp)
						}
					}
				}
			}
			run("flush_and_truncate", syncStart, wantSync, sync)
			run("rotation", rotStart, wantRot, rot)
		})
	}
}
