package directio

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

type opKind int

const (
	opWrite opKind = iota
	opWriteV
	opFlush
	opFlushAndTruncate
	opReopen
	opSync
	opRead
	numOps
)

// modelOp is one step of the model test; sizes and shifts describe the buffers of a write (shift is the
// buffer's address offset from an aligned boundary, 0 making it eligible for the zero-copy path).
type modelOp struct {
	kind          opKind
	sizes, shifts []int
	readOff       int64
	readLen       int
}

// modelRotateAt keeps files small enough that checking them after every FlushAndTruncate stays cheap.
const modelRotateAt = 128 << 10

// modelRunner applies modelOps to a File and to a byte-slice model of its logical content, checking
// after every step that they agree, on disk as well as through Size and ReadAt.
type modelRunner struct {
	tb    testing.TB
	dir   string
	opts  Options
	bs    int
	files int
	path  string
	f     File
	model []byte
	exact bool // the file was truncated to the model's size and nothing was appended since
	r     *rand.Rand
}

func newModelRunner(tb testing.TB, opts Options, seed uint64) *modelRunner {
	m := &modelRunner{tb: tb, dir: tb.TempDir(), opts: opts, r: rand.New(rand.NewPCG(seed, 99))}
	m.rotate()
	m.bs = m.f.Alignment().block()
	return m
}

func (m *modelRunner) rotate() {
	m.tb.Helper()
	if m.f != nil {
		mustOK(m.tb, m.f.Close())
		checkDisk(m.tb, m.path, m.model)
		mustOK(m.tb, os.Remove(m.path))
	}
	m.files++
	m.path = filepath.Join(m.dir, fmt.Sprintf("seg%d", m.files))
	m.model, m.exact = m.model[:0], true
	m.reopen()
}

func (m *modelRunner) reopen() {
	m.tb.Helper()
	f, err := Open(m.path, m.opts)
	if err != nil {
		m.tb.Fatal(err)
	}
	m.f = f
}

func (m *modelRunner) step(op modelOp) {
	m.tb.Helper()
	switch op.kind {
	case opWrite, opWriteV:
		bufs := make([][]byte, len(op.sizes))
		total := 0
		for i, n := range op.sizes {
			bufs[i] = payload(m.r, n, op.shifts[i])
			total += n
		}
		var n int
		var err error
		if op.kind == opWrite {
			n, err = m.f.Write(bufs[0])
		} else {
			n, err = m.f.WriteV(bufs)
		}
		if err != nil || n != total {
			m.tb.Fatalf("write %v = %d, %v", op.sizes, n, err)
		}
		for _, b := range bufs {
			m.model = append(m.model, b...)
		}
		m.exact = m.exact && total == 0
		// What is on disk below the tail must already be the model (that is what survives a crash).
		if m.r.IntN(20) == 0 {
			base := len(m.model) &^ (m.bs - 1)
			if m.opts.Mode == Buffered {
				base = len(m.model)
			}
			if got := snapshot(m.tb, m.path); len(got.data) < base || !bytes.Equal(got.data[:base], m.model[:base]) {
				m.tb.Fatalf("on-disk blocks differ from the model below %d", base)
			}
		}
	case opFlush:
		mustOK(m.tb, m.f.Flush())
		// A tail already on disk since the last truncate is not written again.
		if m.opts.Mode == Buffered || len(m.model)%m.bs == 0 || m.exact {
			checkDisk(m.tb, m.path, m.model)
		} else {
			checkPadded(m.tb, m.path, m.model, m.bs)
		}
	case opFlushAndTruncate:
		mustOK(m.tb, m.f.FlushAndTruncate())
		checkDisk(m.tb, m.path, m.model)
		m.exact = true
	case opReopen:
		mustOK(m.tb, m.f.Close())
		checkDisk(m.tb, m.path, m.model)
		m.reopen()
		checkRead(m.tb, m.f, m.model)
		m.exact = true
	case opSync:
		mustOK(m.tb, m.f.Sync())
	case opRead:
		m.checkReadAt(op.readOff, op.readLen)
	}
	if got := m.f.Size(); got != int64(len(m.model)) {
		m.tb.Fatalf("after %v: Size() = %d, model has %d", op.kind, got, len(m.model))
	}
	if len(m.model) > modelRotateAt {
		m.rotate()
	}
}

func (m *modelRunner) checkReadAt(off int64, n int) {
	m.tb.Helper()
	if len(m.model) > 0 {
		off %= int64(len(m.model)) + 1
	}
	p := make([]byte, n)
	got, err := m.f.ReadAt(p, off)
	end := min(off+int64(n), int64(len(m.model)))
	want := m.model[min(off, end):end]
	if got != len(want) || !bytes.Equal(p[:got], want) {
		m.tb.Fatalf("ReadAt(%d bytes at %d) = %d bytes, %v; model has %d bytes there", n, off, got, err, len(want))
	}
	if short := got < n; short != (err == io.EOF) {
		m.tb.Fatalf("ReadAt(%d bytes at %d) = %d, %v: io.EOF must come with a short read", n, off, got, err)
	}
}

func (m *modelRunner) close() {
	m.tb.Helper()
	mustOK(m.tb, m.f.Close())
	checkDisk(m.tb, m.path, m.model)
}

// randomOp draws sizes mostly from 0..3 blocks, sometimes many blocks, sometimes exact multiples.
func randomOp(r *rand.Rand, bs int) modelOp {
	size := func() int {
		switch x := r.IntN(10); {
		case x < 7:
			return r.IntN(3*bs + 1)
		case x < 9:
			return r.IntN(40 * bs)
		default:
			return bs * r.IntN(9)
		}
	}
	shift := func() int {
		if r.IntN(2) == 0 {
			return 0
		}
		return r.IntN(bs)
	}
	var op modelOp
	switch x := r.IntN(100); {
	case x < 55:
		op.kind = opWrite
	case x < 70:
		op.kind = opWriteV
	case x < 78:
		op.kind = opFlush
	case x < 88:
		op.kind = opFlushAndTruncate
	case x < 92:
		op.kind = opReopen
	case x < 95:
		op.kind = opSync
	default:
		op.kind, op.readOff, op.readLen = opRead, r.Int64(), r.IntN(5*bs)
	}
	nbufs := 1
	if op.kind == opWriteV {
		nbufs = 1 + r.IntN(6)
	}
	if op.kind <= opWriteV {
		for range nbufs {
			op.sizes, op.shifts = append(op.sizes, size()), append(op.shifts, shift())
		}
	}
	return op
}

func modelSteps(tb testing.TB, def int) int {
	if s := os.Getenv("SEGFS_MODEL_STEPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			tb.Fatalf("SEGFS_MODEL_STEPS=%q: want a positive integer", s)
		}
		return n
	}
	return def
}

// TestModelRandom runs thousands of random steps per mode and alignment (SEGFS_MODEL_STEPS sets how
// many) and checks the file against the model after each one.
func TestModelRandom(t *testing.T) {
	steps := modelSteps(t, 2000)
	for _, mode := range allModes {
		for _, a := range []Alignment{{}, {4096, 4096}} {
			t.Run(fmt.Sprintf("%v/align=%d", mode, a.Offset), func(t *testing.T) {
				t.Parallel()
				seed := uint64(mode)*10 + uint64(a.Offset)
				m := newModelRunner(t, Options{Mode: mode, Alignment: a}, seed)
				r := rand.New(rand.NewPCG(seed, 7))
				for range steps {
					m.step(randomOp(r, m.bs))
				}
				m.close()
			})
		}
	}
}

// decodeOps turns fuzz input into steps: 4 bytes per step.
func decodeOps(data []byte, bs int) []modelOp {
	var ops []modelOp
	for ; len(data) >= 4; data = data[4:] {
		op := modelOp{kind: opKind(data[0] % byte(numOps))}
		size := (int(data[1])<<8 | int(data[2])) % (4*bs + 1)
		shift := 0
		if data[3]&1 != 0 {
			shift = int(data[3]) % bs
		}
		switch op.kind {
		case opWrite:
			op.sizes, op.shifts = []int{size}, []int{shift}
		case opWriteV:
			op.sizes, op.shifts = []int{size / 3, int(data[3]), size - size/3}, []int{shift, 0, int(data[1]) % bs}
		case opRead:
			op.readOff, op.readLen = int64(size)*3, int(data[3])*bs/64
		}
		ops = append(ops, op)
	}
	return ops
}

func FuzzModel(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 2, 0, 0, 0, 0, 0x10, 0, 0, 3, 0, 0, 0})
	f.Add([]byte{1, 0x20, 0x10, 3, 2, 0, 0, 0, 4, 0, 0, 0, 6, 1, 2, 3, 3, 0, 0, 0})
	f.Add([]byte{7, 0x0f, 0xff, 0, 8, 0x08, 0x01, 1, 2, 0, 0, 0, 0, 0x10, 0x00, 0, 4, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode := allModes[int(data[0])%len(allModes)]
		a := Alignment{}
		if data[0]&4 != 0 {
			a = Alignment{4096, 4096}
		}
		m := newModelRunner(t, Options{Mode: mode, Alignment: a}, uint64(len(data)))
		for _, op := range decodeOps(data[1:], m.bs) {
			m.step(op)
		}
		m.close()
	})
}
