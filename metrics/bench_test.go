package metrics

import (
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"segfs/directio"
	"segfs/segments"
)

// BenchmarkFUSEWrapper is what the wrapper adds to one FUSE request (two clock reads, an atomic add
// and a histogram observe): compare wrapped with bare, a request answered at once.
func BenchmarkFUSEWrapper(b *testing.B) {
	m, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	bare := fuse.NewDefaultRawFileSystem()
	for _, c := range []struct {
		name string
		fs   fuse.RawFileSystem
	}{{"bare", bare}, {"wrapped", m.WrapFUSE(bare)}} {
		b.Run(c.name, func(b *testing.B) {
			in, out := &fuse.GetAttrIn{}, &fuse.AttrOut{}
			b.ReportAllocs()
			for b.Loop() {
				c.fs.GetAttr(nil, in, out)
			}
		})
	}
}

// BenchmarkAppend is one 1 KiB deferred append (buffered io, so the flusher keeps up with memory
// speed) without an Observer and with the metrics one.
func BenchmarkAppend(b *testing.B) {
	for _, observe := range []bool{false, true} {
		name := "observer=off"
		if observe {
			name = "observer=on"
		}
		b.Run(name, func(b *testing.B) {
			m, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			cfg := segments.DefaultConfig()
			cfg.IO, cfg.Logger = directio.Buffered, quietLogger()
			if observe {
				cfg.Observer = m.Observer()
			}
			l, err := segments.Open(b.TempDir(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			tp, err := l.CreateTopic("t", 1)
			if err != nil {
				b.Fatal(err)
			}
			p, _ := tp.Partition(0)
			buf := make([]byte, 1024)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Append(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkObserver is the Observer's own cost per append: a histogram observe.
func BenchmarkObserver(b *testing.B) {
	m, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	o := m.Observer()
	b.ReportAllocs()
	for b.Loop() {
		o.Append(time.Microsecond)
	}
}
