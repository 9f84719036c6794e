package directio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const faultBlock = 4096

// faultStep is one operation of the fault workload; data is what it appends when it succeeds.
type faultStep struct {
	name string
	data [][]byte
	run  func(f File) error
}

// faultWorkload starts from a reopened file whose tail is on disk and goes through every path that
// writes: tail-only writes, padded flushes, completing and split writes, aligned and vectored writes,
// truncates, syncs and close.
func faultWorkload() (initial []byte, steps []faultStep) {
	r := rand.New(rand.NewPCG(5, 5))
	write := func(n, shift int) faultStep {
		p := payload(r, n, shift)
		return faultStep{fmt.Sprintf("Write(%d@%d)", n, shift), [][]byte{p}, func(f File) error { return second(f.Write(p)) }}
	}
	writeV := func(bufs ...[]byte) faultStep {
		return faultStep{"WriteV", bufs, func(f File) error { return second(f.WriteV(bufs)) }}
	}
	writeFlush := func(n, shift int) faultStep {
		p := payload(r, n, shift)
		return faultStep{fmt.Sprintf("WriteFlush(%d@%d)", n, shift), [][]byte{p}, func(f File) error { return second(f.WriteFlush(p)) }}
	}
	op := func(name string, fn func(f File) error) faultStep { return faultStep{name: name, run: fn} }
	flush := op("Flush", File.Flush)
	trunc := op("FlushAndTruncate", File.FlushAndTruncate)
	sync := op("Sync", File.Sync)
	initial = payload(r, faultBlock+300, 0)
	steps = []faultStep{
		write(100, 1), flush, write(5000, 3), writeV(payload(r, 2*faultBlock, 0), payload(r, 10, 0), payload(r, 4100, 9)),
		trunc, sync, write(3*faultBlock, 0), write(7, 0), flush, write(2*faultBlock+5, 0), sync, trunc, write(1, 0),
		writeFlush(50, 1), writeFlush(faultBlock+200, 2), writeFlush(faultBlock-250, 0), writeFlush(3, 0),
		op("Close", File.Close),
	}
	return initial, steps
}

// faultRun runs the workload with a fault of kind aimed at mutating call k and checks the guarantees:
// a failed operation leaves Size, ReadAt and the file as they were; a retried short write is invisible;
// the error wraps the injected errno; and the file ends up equal to the model of the operations that
// succeeded. It returns the number of mutating calls and of failed operations.
func faultRun(t *testing.T, mode Mode, k int, kind faultKind, errno unix.Errno) (calls, failures int) {
	t.Helper()
	initial, steps := faultWorkload()
	path := filepath.Join(t.TempDir(), "seg")
	mustOK(t, os.WriteFile(path, initial, 0o644))
	sys := newFaultSyscalls(faultBlock)
	f, err := Open(path, Options{Mode: mode, Syscalls: sys, Alignment: Alignment{faultBlock, faultBlock}})
	mustOK(t, err)
	sys.arm(k, kind, errno)
	model := bytes.Clone(initial)
	closed := false
	for _, st := range steps {
		before, size := snapshot(t, path), f.Size()
		err := st.run(f)
		if err == nil {
			for _, b := range st.data {
				model = append(model, b...)
			}
			closed = closed || st.name == "Close"
			if !closed {
				checkRead(t, f, model)
			}
			continue
		}
		failures++
		if kind == faultErr || kind == faultShortThenErr {
			if !errors.Is(err, errno) {
				t.Fatalf("%s failed with %v, want an error wrapping %v", st.name, err, errno)
			}
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s error %q does not name the file", st.name, err)
		}
		if f.Size() != size {
			t.Fatalf("%s failed but Size went from %d to %d", st.name, size, f.Size())
		}
		after := snapshot(t, path)
		// A truncate that fails after its flush succeeded leaves the padded block: logically the same.
		flushedOnly := (st.name == "FlushAndTruncate" || st.name == "Close") && mode != Buffered
		if !after.equal(before) && !(flushedOnly && paddedModel(after, model, faultBlock)) {
			t.Fatalf("%s failed (%v) and changed the file: size %d -> %d, first difference at %d",
				st.name, err, before.size, after.size, firstDiff(before.data, after.data))
		}
		if st.name == "Close" {
			return sys.count(), failures
		}
		checkRead(t, f, model)
	}
	checkDisk(t, path, model)
	if sys.fds != 0 {
		t.Fatalf("%d descriptors open after Close", sys.fds)
	}
	f, err = Open(path, Options{Mode: mode, Alignment: Alignment{faultBlock, faultBlock}})
	mustOK(t, err)
	checkRead(t, f, model)
	mustOK(t, f.Close())
	return sys.count(), failures
}

func paddedModel(s diskSnapshot, model []byte, bs int) bool {
	want := (int64(len(model)) + int64(bs) - 1) / int64(bs) * int64(bs)
	return s.size == want && bytes.Equal(s.data[:len(model)], model) && !bytes.ContainsFunc(s.data[len(model):], func(r rune) bool { return r != 0 })
}

// TestFaultAtEveryPosition aims each kind of fault at every mutating call of the workload in turn.
func TestFaultAtEveryPosition(t *testing.T) {
	type fault struct {
		kind  faultKind
		errno unix.Errno
	}
	faults := []fault{{faultErr, unix.ENOSPC}, {faultErr, unix.EIO}, {faultShort, 0}, {faultShortUnaligned, 0},
		{faultZero, 0}, {faultShortThenErr, unix.ENOSPC}}
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			n, failures := faultRun(t, mode, -1, faultErr, 0)
			if failures != 0 || n == 0 {
				t.Fatalf("unfaulted run: %d calls, %d failures", n, failures)
			}
			for _, ft := range faults {
				for k := range n {
					name := fmt.Sprintf("%v/%v/call%d", ft.kind, ft.errno, k)
					t.Run(name, func(t *testing.T) {
						_, failures := faultRun(t, mode, k, ft.kind, ft.errno)
						// A short write at the last call adds the retry that the error then hits.
						lo, hi := 0, 0
						switch {
						case ft.kind == faultErr, ft.kind == faultShortThenErr && k+1 < n:
							lo, hi = 1, 1
						case ft.kind == faultShortThenErr:
							hi = 1
						}
						if failures < lo || failures > hi {
							t.Fatalf("%d operations failed, want %d..%d", failures, lo, hi)
						}
					})
				}
			}
		})
	}
}

// TestShortWritesWithoutProgressAreSurfaced: a device that keeps accepting nothing must not hang the
// writer nor be ignored.
func TestShortWritesWithoutProgressAreSurfaced(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			sys := newFaultSyscalls(faultBlock)
			path := filepath.Join(t.TempDir(), "seg")
			f, err := Open(path, Options{Mode: mode, Syscalls: sys, Alignment: Alignment{faultBlock, faultBlock}})
			mustOK(t, err)
			sys.arm(0, faultZero, 0)
			sys.always = true
			if _, err := f.Write(make([]byte, 2*faultBlock)); !errors.Is(err, io.ErrShortWrite) {
				t.Fatalf("Write = %v, want io.ErrShortWrite", err)
			}
			checkRead(t, f, nil)
			checkDisk(t, path, nil)
			sys.disarm()
			want := bytes.Repeat([]byte{7}, 2*faultBlock)
			_, err = f.Write(want)
			mustOK(t, err)
			mustOK(t, f.Close())
			checkDisk(t, path, want)
		})
	}
}

// TestFailedRollback: when restoring the file after a failed write fails too, the logical content
// stays intact and the next FlushAndTruncate repairs the file.
func TestFailedRollback(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			sys := newFaultSyscalls(faultBlock)
			path := filepath.Join(t.TempDir(), "seg")
			f, err := Open(path, Options{Mode: mode, Syscalls: sys, Alignment: Alignment{faultBlock, faultBlock}})
			mustOK(t, err)
			model := bytes.Repeat([]byte{1}, 100)
			_, err = f.Write(model)
			mustOK(t, err)
			mustOK(t, f.Flush())
			sys.arm(0, faultErr, unix.EIO)
			sys.always = true
			if _, err := f.Write(bytes.Repeat([]byte{2}, 3*faultBlock)); !errors.Is(err, unix.EIO) || !strings.Contains(err.Error(), "restore") {
				t.Fatalf("Write = %v, want EIO from the write and from restoring the file", err)
			}
			sys.disarm()
			checkRead(t, f, model)
			// With the file state unknown, a flushed tail that a later failed write overwrites must
			// not be trusted to be on disk.
			mustOK(t, f.Flush())
			sys.arm(0, faultShortThenErr, unix.ENOSPC)
			if _, err := f.Write(bytes.Repeat([]byte{4}, 3*faultBlock)); !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("Write = %v, want ENOSPC", err)
			}
			sys.disarm()
			checkRead(t, f, model)
			mustOK(t, f.FlushAndTruncate())
			checkDisk(t, path, model)
			more := bytes.Repeat([]byte{3}, faultBlock+1)
			_, err = f.Write(more)
			mustOK(t, err)
			model = append(model, more...)
			mustOK(t, f.Close())
			checkDisk(t, path, model)
		})
	}
}

// TestOpenFailures: each call Open makes failing gives an error and leaks no descriptor.
func TestOpenFailures(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seg")
			mustOK(t, os.WriteFile(path, bytes.Repeat([]byte{9}, faultBlock+10), 0o644))
			for i := 0; ; i++ {
				sys := newFaultSyscalls(faultBlock)
				sys.failOpen = i
				f, err := Open(path, Options{Mode: mode, Syscalls: sys, Alignment: Alignment{faultBlock, faultBlock}})
				if err == nil {
					if i < 2 {
						t.Fatalf("Open survived failing call %d", i)
					}
					mustOK(t, f.Close())
					break
				}
				if !errors.Is(err, unix.EIO) || !strings.Contains(err.Error(), path) {
					t.Fatalf("Open with call %d failing = %v, want EIO naming %s", i, err, path)
				}
				if sys.fds != 0 {
					t.Fatalf("Open with call %d failing leaked %d descriptors", i, sys.fds)
				}
			}
		})
	}
}
