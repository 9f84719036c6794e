package tier

import (
	"context"
	"io"
	"testing"
	"time"
)

// BenchmarkColdRead reads a 64 MiB segment from versitygw in 128 KiB reads, as cat through the
// mount does, with an empty cache each time: first-byte latency and throughput of the read path.
func BenchmarkColdRead(b *testing.B) {
	_, st := startStore(b, func(c *Config) { c.Timeout = 10 * time.Second; c.CacheSize = 1 << 30 })
	path, data := segmentFile(b, 64<<20, 9)
	up, err := st.uploadObject(context.Background(), Object{Topic: "t", Size: int64(len(data))}, path)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 128<<10)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	var first time.Duration
	for i := 0; i < b.N; i++ {
		st.cache.dropKey(st.Key("t", 0, 0))
		start := time.Now()
		for off := int64(0); ; off += int64(len(buf)) {
			n, err := st.readObject(up, buf, off)
			if off == 0 {
				first += time.Since(start)
			}
			if err == io.EOF || n == 0 {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "ms/first-byte")
}
