package directio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// patternPayload returns n bytes of pattern starting at stream offset off, at an address shift bytes
// past an aligned boundary.
func patternPayload(off int64, n, shift int) []byte {
	p := AlignedAlloc(n+shift, 4096)[shift:]
	for i := range p {
		p[i] = pattern(off + int64(i))
	}
	return p
}

// TestConcurrentReadersSeeModel runs readers against a writer doing random writes, flushes, truncates
// and syncs. Every byte a reader gets must be the model byte at that offset (never padding, never a
// byte of the wrong offset), Size never goes backwards, and a read is never shorter than the size
// observed before it allowed.
func TestConcurrentReadersSeeModel(t *testing.T) {
	steps := modelSteps(t, 1500)
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			f, err := Open(filepath.Join(t.TempDir(), "seg"), Options{Mode: mode})
			mustOK(t, err)
			bs := f.Alignment().block()
			var done atomic.Bool
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for i := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- readLoop(f, &done, bs, uint64(i))
				}()
			}
			r := rand.New(rand.NewPCG(3, 4))
			for range steps {
				switch x := r.IntN(20); {
				case x < 15:
					n := r.IntN(3*bs + 1)
					if x == 0 {
						n = r.IntN(32 * bs)
					}
					shift := 0
					if r.IntN(2) == 0 {
						shift = r.IntN(bs)
					}
					_, err = f.Write(patternPayload(f.Size(), n, shift))
				case x < 17:
					err = f.Flush()
				case x < 19:
					err = f.FlushAndTruncate()
				default:
					err = f.Sync()
				}
				if err != nil {
					break
				}
			}
			done.Store(true)
			wg.Wait()
			close(errs)
			mustOK(t, err)
			for e := range errs {
				mustOK(t, e)
			}
			mustOK(t, f.Close())
		})
	}
}

func readLoop(f File, done *atomic.Bool, bs int, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 11))
	buf := make([]byte, 4*bs)
	var last int64
	reads := 0
	for !done.Load() || reads < 10 {
		reads++
		size := f.Size()
		if size < last {
			return errors.New("Size went backwards")
		}
		last = size
		off := r.Int64N(size + 1)
		p := buf[:r.IntN(len(buf))+1]
		n, err := f.ReadAt(p, off)
		if err != nil && err != io.EOF {
			return err
		}
		if int64(n) < min(int64(len(p)), size-off) {
			return errors.New("ReadAt returned fewer bytes than Size promised")
		}
		if (err == io.EOF) != (n < len(p)) {
			return errors.New("ReadAt: io.EOF must come exactly with a short read")
		}
		for i, c := range p[:n] {
			if c != pattern(off+int64(i)) {
				return errors.New("ReadAt returned a byte that is not the model's (padding or misplaced)")
			}
		}
	}
	return nil
}

// TestReadersDoNotWaitForWrites holds the writer inside pwritev and checks that Size and ReadAt still
// answer, from disk and from the in-memory tail, with the content from before the write.
func TestReadersDoNotWaitForWrites(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			sys := newFaultSyscalls(faultBlock)
			f, err := Open(filepath.Join(t.TempDir(), "seg"), Options{Mode: mode, Syscalls: sys, Alignment: Alignment{faultBlock, faultBlock}})
			mustOK(t, err)
			model := patternPayload(0, 2*faultBlock+100, 0)
			_, err = f.Write(model)
			mustOK(t, err)

			hold, entered := make(chan struct{}), make(chan struct{})
			sys.mu.Lock()
			sys.hold, sys.entered = hold, entered
			sys.mu.Unlock()
			type op struct {
				name string
				run  func() error
				data []byte
			}
			data := patternPayload(int64(len(model)), 3*faultBlock, 0)
			ops := []op{{"Write", func() error { return second(f.Write(data)) }, data}}
			if mode != Buffered { // buffered Flush does no I/O
				ops = append(ops, op{"Flush", f.Flush, nil})
			}
			for _, op := range ops {
				result := make(chan error, 1)
				go func() { result <- op.run() }()
				select {
				case <-entered: // the writer is now inside pwritev
				case <-time.After(10 * time.Second):
					t.Fatalf("%s did not reach pwritev", op.name)
				}
				readers := make(chan error, 1)
				go func() { readers <- readMatches(f, model) }()
				select {
				case err := <-readers:
					mustOK(t, err)
				case <-time.After(10 * time.Second):
					t.Fatalf("readers blocked while %s was in pwritev", op.name)
				}
				hold <- struct{}{}
				mustOK(t, <-result)
				model = append(model, op.data...)
				checkRead(t, f, model)
			}
			sys.mu.Lock()
			sys.hold, sys.entered = nil, nil
			sys.mu.Unlock()
			mustOK(t, f.Close())
		})
	}
}

// readMatches is checkRead for use off the test goroutine.
func readMatches(f File, want []byte) error {
	if f.Size() != int64(len(want)) {
		return fmt.Errorf("Size() = %d, want %d", f.Size(), len(want))
	}
	p := make([]byte, len(want)+1)
	n, err := f.ReadAt(p, 0)
	if n != len(want) || err != io.EOF || !bytes.Equal(p[:n], want) {
		return fmt.Errorf("ReadAt = %d, %v; want the %d model bytes and io.EOF", n, err, len(want))
	}
	return nil
}
