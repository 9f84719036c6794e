package directio

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchRotateAt bounds the benchmark file so a long run does not fill the disk.
const benchRotateAt = 256 << 20

// writePath is one way of appending that the benchmarks and the allocation test exercise.
type writePath struct {
	name  string
	bufs  func() [][]byte
	write func(f File, bufs [][]byte) error
}

func writePaths() []writePath {
	one := func(f File, bufs [][]byte) error { return second(f.Write(bufs[0])) }
	vec := func(f File, bufs [][]byte) error { return second(f.WriteV(bufs)) }
	return []writePath{
		// 64 KiB from an aligned buffer at an aligned position: straight to pwritev, no copy.
		{"aligned", func() [][]byte { return [][]byte{AlignedAlloc(64<<10, 4096)} }, one},
		// 100-byte appends: mostly memory copies into the tail, a block write every few calls.
		{"unaligned-small", func() [][]byte { return [][]byte{AlignedAlloc(101, 4096)[1:]} }, one},
		// 64 KiB + 100 from an unaligned address: tail completion, scratch copy, new tail.
		{"split", func() [][]byte { return [][]byte{AlignedAlloc(64<<10+101, 4096)[1:]} }, one},
		// A 1000-byte header and eight aligned 8 KiB payloads in one pwritev.
		{"vectored", func() [][]byte {
			bufs := [][]byte{AlignedAlloc(1001, 4096)[1:]}
			for range 8 {
				bufs = append(bufs, AlignedAlloc(8<<10, 4096))
			}
			return bufs
		}, vec},
	}
}

func benchOpen(b *testing.B, path string, mode Mode) File {
	f, err := Open(path, Options{Mode: mode})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func BenchmarkWrite(b *testing.B) {
	for _, mode := range allModes {
		for _, wp := range writePaths() {
			b.Run(fmt.Sprintf("%v/%s", mode, wp.name), func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "seg")
				f := benchOpen(b, path, mode)
				bufs := wp.bufs()
				n := 0
				for _, p := range bufs {
					n += len(p)
				}
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if err := wp.write(f, bufs); err != nil {
						b.Fatal(err)
					}
					if f.Size() > benchRotateAt {
						b.StopTimer()
						if err := f.Close(); err != nil {
							b.Fatal(err)
						}
						if err := os.Remove(path); err != nil {
							b.Fatal(err)
						}
						f = benchOpen(b, path, mode)
						b.StartTimer()
					}
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// TestWritePathsDoNotAllocate: once a File's scratch slices and pool are warm, no write path
// allocates; the aligned hot path in particular must stay at zero.
func TestWritePathsDoNotAllocate(t *testing.T) {
	for _, mode := range allModes {
		for _, wp := range writePaths() {
			t.Run(fmt.Sprintf("%v/%s", mode, wp.name), func(t *testing.T) {
				f, err := Open(filepath.Join(t.TempDir(), "seg"), Options{Mode: mode})
				mustOK(t, err)
				bufs := wp.bufs()
				for range 4 {
					mustOK(t, wp.write(f, bufs))
				}
				allocs := testing.AllocsPerRun(200, func() {
					if err := wp.write(f, bufs); err != nil {
						t.Fatal(err)
					}
				})
				if allocs != 0 {
					t.Fatalf("%.2f allocations per write, want 0", allocs)
				}
				mustOK(t, f.Close())
			})
		}
	}
}
