package directio

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"
)

// The scenarios use the seed design's 4096-byte blocks; ext4 accepts them whatever its finer alignment.
const scenarioBlock = 4096

// scenario is one direct File under test with a model of its logical content and a record of every
// pwritev that reached the kernel.
type scenario struct {
	t     *testing.T
	mode  Mode
	path  string
	sys   *faultSyscalls
	f     File
	model []byte
	r     *rand.Rand
}

func newScenario(t *testing.T, mode Mode) *scenario {
	s := &scenario{t: t, mode: mode, path: filepath.Join(t.TempDir(), "seg"), sys: newFaultSyscalls(scenarioBlock),
		r: rand.New(rand.NewPCG(1, 2))}
	s.sys.record = true
	s.open()
	return s
}

func (s *scenario) open() {
	s.t.Helper()
	f, err := Open(s.path, Options{Mode: s.mode, Syscalls: s.sys, Alignment: Alignment{scenarioBlock, scenarioBlock}})
	if err != nil {
		s.t.Fatal(err)
	}
	s.f = f
}

// write appends n fresh bytes whose address is shift bytes past an aligned boundary.
func (s *scenario) write(n, shift int) []byte {
	s.t.Helper()
	p := payload(s.r, n, shift)
	s.writeV(p)
	return p
}

func (s *scenario) writeV(bufs ...[]byte) {
	s.t.Helper()
	want := 0
	for _, b := range bufs {
		want += len(b)
	}
	if n, err := s.f.WriteV(bufs); err != nil || n != want {
		s.t.Fatalf("WriteV = %d, %v; want %d, nil", n, err, want)
	}
	for _, b := range bufs {
		s.model = append(s.model, b...)
	}
}

// takeWrites returns the pwritev calls since the last call.
func (s *scenario) takeWrites() []pwritevCall {
	s.sys.mu.Lock()
	defer s.sys.mu.Unlock()
	w := s.sys.writes
	s.sys.writes = nil
	return w
}

// expectWrites asserts the pwritev calls since the last check: their offsets and iovec lengths.
func (s *scenario) expectWrites(want ...pwritevCall) []pwritevCall {
	s.t.Helper()
	got := s.takeWrites()
	if len(got) != len(want) {
		s.t.Fatalf("%d pwritev calls %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].off != want[i].off || !slices.Equal(got[i].lens, want[i].lens) {
			s.t.Fatalf("pwritev %d at %d with iovecs %v, want at %d with %v", i, got[i].off, got[i].lens, want[i].off, want[i].lens)
		}
	}
	return got
}

func call(off int64, lens ...int) pwritevCall { return pwritevCall{off: off, lens: lens} }

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

var directScenarios = []struct {
	name string
	run  func(s *scenario)
}{
	{"aligned fast path", func(s *scenario) {
		p := s.write(2*scenarioBlock, 0)
		got := s.expectWrites(call(0, 2*scenarioBlock))
		if got[0].ptrs[0] != addr(p) {
			s.t.Fatalf("pwritev got buffer %#x, want the caller's own %#x (no copy)", got[0].ptrs[0], addr(p))
		}
		checkDisk(s.t, s.path, s.model)
		checkRead(s.t, s.f, s.model)
	}},
	{"sub-alignment write stays in tail", func(s *scenario) {
		s.write(2048, 0)
		s.expectWrites()
		checkDisk(s.t, s.path, nil)
		checkRead(s.t, s.f, s.model)
	}},
	{"write completing the tail writes that block", func(s *scenario) {
		s.write(2048, 0)
		s.write(2048, 0)
		s.expectWrites(call(0, scenarioBlock))
		checkDisk(s.t, s.path, s.model)
		checkRead(s.t, s.f, s.model)
	}},
	{"split write copies an unaligned head", func(s *scenario) {
		s.write(2048, 0)
		p := s.write(10000, 0) // p[2048:] is not block aligned, so it is copied
		got := s.expectWrites(call(0, scenarioBlock, scenarioBlock))
		if slices.Contains(got[0].ptrs, addr(p[2048:])) {
			s.t.Fatal("unaligned caller memory was passed to O_DIRECT")
		}
		checkDisk(s.t, s.path, s.model[:2*scenarioBlock])
		checkRead(s.t, s.f, s.model) // 12048 bytes: 2 blocks on disk, 3856 in the tail
	}},
	{"split write passes an aligned head without copy", func(s *scenario) {
		s.write(2048, 0)
		p := s.write(10000, 2048) // p[2048:] lands on a block boundary at an aligned address
		got := s.expectWrites(call(0, scenarioBlock, scenarioBlock))
		if got[0].ptrs[1] != addr(p[2048:]) {
			s.t.Fatalf("second iovec at %#x, want the caller's %#x", got[0].ptrs[1], addr(p[2048:]))
		}
		checkDisk(s.t, s.path, s.model[:2*scenarioBlock])
		checkRead(s.t, s.f, s.model)
	}},
	{"vectored write issues one pwritev", func(s *scenario) {
		s.write(100, 0)
		a, b, c := payload(s.r, scenarioBlock-100, 7), payload(s.r, 2*scenarioBlock, 0), payload(s.r, 50, 3)
		s.writeV(a, b, c)
		got := s.expectWrites(call(0, scenarioBlock, 2*scenarioBlock))
		if got[0].ptrs[1] != addr(b) {
			s.t.Fatal("aligned buffer of a vectored write was copied")
		}
		checkDisk(s.t, s.path, s.model[:3*scenarioBlock])
		checkRead(s.t, s.f, s.model)
	}},
	{"flush pads the tail and keeps it", func(s *scenario) {
		s.write(2048, 0)
		mustOK(s.t, s.f.Flush())
		s.expectWrites(call(0, scenarioBlock))
		checkPadded(s.t, s.path, s.model, scenarioBlock)
		checkRead(s.t, s.f, s.model) // no padding through ReadAt
		mustOK(s.t, s.f.Flush())
		s.expectWrites() // nothing new to flush
		s.write(100, 0)
		s.expectWrites()
		mustOK(s.t, s.f.Flush())
		s.expectWrites(call(0, scenarioBlock))
		checkPadded(s.t, s.path, s.model, scenarioBlock)
		s.write(scenarioBlock-2148+10, 0) // completes the block: rewritten in place over the padding
		s.expectWrites(call(0, scenarioBlock))
		checkDisk(s.t, s.path, s.model[:scenarioBlock])
		checkRead(s.t, s.f, s.model)
	}},
	{"FlushAndTruncate leaves the exact size", func(s *scenario) {
		s.write(2*scenarioBlock+1234, 0)
		mustOK(s.t, s.f.FlushAndTruncate())
		checkDisk(s.t, s.path, s.model)
		s.takeWrites()
		mustOK(s.t, s.f.FlushAndTruncate())
		s.expectWrites()
		s.write(10, 0)
		mustOK(s.t, s.f.FlushAndTruncate())
		s.expectWrites(call(2*scenarioBlock, scenarioBlock))
		checkDisk(s.t, s.path, s.model)
		checkRead(s.t, s.f, s.model)
	}},
	{"Close is FlushAndTruncate and close", func(s *scenario) {
		s.write(5000, 0)
		mustOK(s.t, s.f.Close())
		checkDisk(s.t, s.path, s.model)
		if s.sys.fds != 0 {
			s.t.Fatalf("%d descriptors left open after Close", s.sys.fds)
		}
		for name, err := range map[string]error{"Write": second(s.f.Write([]byte("x"))), "Flush": s.f.Flush(),
			"Sync": s.f.Sync(), "ReadAt": second(s.f.ReadAt(make([]byte, 1), 0)), "Close": s.f.Close()} {
			if !errors.Is(err, fs.ErrClosed) {
				s.t.Errorf("%s after Close = %v, want fs.ErrClosed", name, err)
			}
		}
	}},
	{"reopen rebuilds the tail", func(s *scenario) {
		s.write(5000, 0)
		mustOK(s.t, s.f.Close())
		s.open()
		checkRead(s.t, s.f, s.model)
		s.takeWrites()
		s.write(scenarioBlock-(5000-scenarioBlock), 0)
		s.expectWrites(call(scenarioBlock, scenarioBlock))
		mustOK(s.t, s.f.Close())
		checkDisk(s.t, s.path, s.model)
	}},
	{"crash loses only the tail", func(s *scenario) {
		s.write(3*scenarioBlock+1000, 0)
		// Without Flush, what a crash would leave is what is on disk now.
		checkDisk(s.t, s.path, s.model[:3*scenarioBlock])
		mustOK(s.t, s.f.Close())
		checkDisk(s.t, s.path, s.model)
	}},
}

func TestDirectScenarios(t *testing.T) {
	for _, mode := range []Mode{Direct, DirectSync} {
		for _, sc := range directScenarios {
			t.Run(mode.String()+"/"+sc.name, func(t *testing.T) {
				s := newScenario(t, mode)
				sc.run(s)
			})
		}
	}
}

// TestBufferedWritesEveryByte: in Buffered mode each write reaches the file at once, from the caller's
// buffer, and the file never holds padding.
func TestBufferedWritesEveryByte(t *testing.T) {
	s := newScenario(t, Buffered)
	for i, n := range []int{1, 2048, 4096, 5000, 3} {
		p := s.write(n, i)
		got := s.expectWrites(call(int64(len(s.model)-n), n))
		if got[0].ptrs[0] != addr(p) {
			t.Fatal("buffered write copied the caller's buffer")
		}
		checkDisk(t, s.path, s.model)
		mustOK(t, s.f.Flush())
		s.expectWrites()
		checkDisk(t, s.path, s.model)
	}
	s.writeV(payload(s.r, 10, 1), payload(s.r, 20, 2))
	s.expectWrites(call(int64(len(s.model)-30), 10, 20))
	mustOK(t, s.f.Close())
	checkDisk(t, s.path, s.model)
	s.open()
	checkRead(t, s.f, s.model)
	mustOK(t, s.f.Close())
}

func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func second[T any](_ T, err error) error { return err }
