package segments

import (
	"fmt"
	"testing"

	"segfs/directio"
)

// BenchmarkAppend measures one producer's Append on the default direct-sync I/O, in both persistence
// policies, for a small and a large append. Deferred includes the flusher's share of the disk.
func BenchmarkAppend(b *testing.B) {
	for _, persist := range []Persist{Inline, Deferred} {
		for _, n := range []int{4 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/%dKiB", persist, n>>10), func(b *testing.B) {
				cfg := testConfig(mode{directio.DirectSync, persist})
				cfg.SegmentSize = 64 << 20
				l := openLog(b, b.TempDir(), cfg)
				p := mustPartition(b, l, "t", 0)
				buf := pattern(1, 0, n)
				b.SetBytes(int64(n))
				b.ResetTimer()
				for range b.N {
					if _, err := p.Append(buf); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Sync(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
