package segments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"segfs/directio"
)

// mode is one io × persist combination; every behaviour test runs in all six.
type mode struct {
	io      directio.Mode
	persist Persist
}

func (m mode) String() string { return m.io.String() + "-" + m.persist.String() }

func allModes() []mode {
	var ms []mode
	for _, io := range []directio.Mode{directio.Buffered, directio.Direct, directio.DirectSync} {
		for _, p := range []Persist{Inline, Deferred, Sync} {
			ms = append(ms, mode{io, p})
		}
	}
	return ms
}

func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.Out = io.Discard
	return l
}

func testConfig(m mode) Config {
	cfg := DefaultConfig()
	cfg.IO, cfg.Persist = m.io, m.persist
	cfg.Logger = quietLogger()
	return cfg
}

func openLog(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func mustPartition(t testing.TB, l *Log, topic string, n int) *Partition {
	t.Helper()
	tp, err := l.Topic(topic)
	if errors.Is(err, ErrNotExist) {
		tp, err = l.CreateTopic(topic, n+1)
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := tp.Partition(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pattern is the content the tests append: byte off of stream seed, never zero, so zero padding
// or zero-filled holes can never pass for data.
func pattern(seed uint64, off int64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = patternByte(seed, off+int64(i))
	}
	return b
}

func patternByte(seed uint64, off int64) byte {
	x := seed*0x9e3779b97f4a7c15 + uint64(off)*0xbf58476d1ce4e5b9
	x ^= x >> 31
	x *= 0x94d049bb133111eb
	x ^= x >> 29
	return byte(x%255) + 1
}

// appendPattern appends n bytes of stream seed at the partition's end and checks the offset.
func appendPattern(t testing.TB, p *Partition, seed uint64, n int) int64 {
	t.Helper()
	want := p.Size()
	off, err := p.Append(pattern(seed, want, n))
	if err != nil {
		t.Fatalf("Append(%d bytes): %v", n, err)
	}
	if off != want {
		t.Fatalf("Append offset = %d, want %d", off, want)
	}
	return off
}

// diskContent concatenates the segment files of a partition directory as they are on disk.
func diskContent(t testing.TB, dir string) (data []byte, first int64) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	first = -1
	for _, e := range entries {
		base, ok := ParseSegmentName(e.Name())
		if !ok {
			continue
		}
		if first < 0 {
			first = base
		}
		if want := first + int64(len(data)); base != want {
			t.Fatalf("%s: segment %d does not start at %d", dir, base, want)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	return data, first
}

// checkPattern fails unless b is stream seed at off.
func checkPattern(t testing.TB, what string, seed uint64, off int64, b []byte) {
	t.Helper()
	want := pattern(seed, off, len(b))
	if i := firstDiff(b, want); i >= 0 {
		t.Fatalf("%s: byte at %d = %#x, want %#x", what, off+int64(i), b[i], want[i])
	}
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// waitGoroutines waits for the goroutine count to drop to at most want (leak check without goleak).
func waitGoroutines(t testing.TB, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutine leak: %d running, want <= %d\n%s", runtime.NumGoroutine(), want, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flusherGoroutines counts goroutines running a partition flusher.
func flusherGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "segments.(*Partition).flushLoop")
}

func segInfoString(segs []SegmentInfo) string {
	var sb strings.Builder
	for _, s := range segs {
		fmt.Fprintf(&sb, "[%d+%d sealed=%v] ", s.Base, s.Size, s.Sealed)
	}
	return sb.String()
}
