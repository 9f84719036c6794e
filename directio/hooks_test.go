package directio

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

// TestBeforePad: the hook runs before every padded block write, with the logical size, while the
// file does not hold that padded block yet; an error from it aborts the flush with nothing written.
func TestBeforePad(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seg")
			sys := newFaultSyscalls(faultBlock)
			sys.record = true
			var calls []int64
			var hookErr error
			f, err := Open(path, Options{Mode: mode, Syscalls: sys, Alignment: Alignment{faultBlock, faultBlock},
				BeforePad: func(size int64, padded []byte) error {
					calls = append(calls, size)
					if len(padded) != faultBlock || size%faultBlock == 0 {
						t.Errorf("BeforePad(%d) with a %d-byte block", size, len(padded))
					}
					sys.mu.Lock()
					defer sys.mu.Unlock()
					if len(sys.writes) != 0 {
						t.Errorf("BeforePad(%d) ran after a write of this flush", size)
					}
					return hookErr
				}})
			mustOK(t, err)
			flush := func(fn func() error) error {
				sys.mu.Lock()
				sys.writes = nil
				sys.mu.Unlock()
				return fn()
			}
			model := make([]byte, faultBlock+10)
			for i := range model {
				model[i] = 1
			}
			_, err = f.Write(model)
			mustOK(t, err)
			before := snapshot(t, path)
			hookErr = errors.New("length record failed")
			if err := flush(f.Flush); mode != Buffered && !errors.Is(err, hookErr) {
				t.Fatalf("Flush with a failing hook = %v, want the hook's error", err)
			}
			if after := snapshot(t, path); !after.equal(before) {
				t.Fatal("Flush wrote although BeforePad failed")
			}
			hookErr = nil
			mustOK(t, flush(f.FlushAndTruncate))
			mustOK(t, flush(f.Flush))            // tail already on disk: no padded write, no hook
			mustOK(t, flush(f.FlushAndTruncate)) // likewise
			_, err = f.Write(model[:faultBlock-10])
			mustOK(t, err) // completes the block: no padding, no hook
			mustOK(t, flush(f.Close))
			checkDisk(t, path, append(model, model[:faultBlock-10]...))
			want := []int64{faultBlock + 10, faultBlock + 10}
			if mode == Buffered {
				want = nil
			}
			if len(calls) != len(want) || (len(want) > 0 && (calls[0] != want[0] || calls[1] != want[1])) {
				t.Fatalf("BeforePad calls %v, want %v", calls, want)
			}
		})
	}
}

// TestSyncSyscalls: Buffered and Direct always fdatasync; DirectSync only after a truncate.
func TestSyncSyscalls(t *testing.T) {
	fdatasyncs := func(sys *faultSyscalls, fn func() error) int {
		before := sys.count()
		mustOK(t, fn())
		return sys.count() - before
	}
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			sys := newFaultSyscalls(faultBlock)
			f, err := Open(filepath.Join(t.TempDir(), "seg"), Options{Mode: mode, Syscalls: sys, Alignment: Alignment{faultBlock, faultBlock}})
			mustOK(t, err)
			_, err = f.Write(make([]byte, faultBlock+1))
			mustOK(t, err)
			wantIdle := 1
			if mode == DirectSync {
				wantIdle = 0
			}
			if n := fdatasyncs(sys, f.Sync); n != wantIdle {
				t.Fatalf("Sync after a write made %d calls, want %d", n, wantIdle)
			}
			mustOK(t, f.FlushAndTruncate())
			if n := fdatasyncs(sys, f.Sync); mode != Buffered && n != 1 {
				t.Fatalf("Sync after a truncate made %d calls, want 1", n)
			}
			if n := fdatasyncs(sys, f.Sync); n != wantIdle {
				t.Fatalf("second Sync made %d calls, want %d", n, wantIdle)
			}
			mustOK(t, f.Close())
		})
	}
}

// TestWriteFlushIsOneWrite: an append that crosses blocks and ends inside one is written, full blocks
// and padded tail together, in one pwritev after one BeforePad with its end; the file then holds
// what Write and Flush would leave.
func TestWriteFlushIsOneWrite(t *testing.T) {
	for _, mode := range []Mode{Direct, DirectSync} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seg")
			sys := newFaultSyscalls(faultBlock)
			sys.record = true
			var pads []int64
			more := make([]byte, 2*faultBlock+7)
			for i := range more {
				more[i] = pattern(int64(100 + i))
			}
			f, err := Open(path, Options{Mode: mode, Syscalls: sys, Alignment: Alignment{faultBlock, faultBlock},
				BeforePad: func(size int64, padded []byte) error {
					tail := int(size % faultBlock)
					if size == 100+2*faultBlock+7 && !bytes.Equal(padded, append(bytes.Clone(more[len(more)-tail:]), make([]byte, faultBlock-tail)...)) {
						t.Errorf("BeforePad(%d) was not given the padded block", size)
					}
					pads = append(pads, size)
					return nil
				}})
			mustOK(t, err)
			want := make([]byte, 100)
			for i := range want {
				want[i] = pattern(int64(i))
			}
			_, err = f.WriteFlush(want)
			mustOK(t, err)
			sys.mu.Lock()
			sys.writes = nil
			sys.mu.Unlock()
			_, err = f.WriteFlush(more)
			mustOK(t, err)
			want = append(want, more...)
			sys.mu.Lock()
			writes := len(sys.writes)
			sys.mu.Unlock()
			if writes != 1 || len(pads) != 2 || pads[1] != int64(len(want)) {
				t.Fatalf("WriteFlush across blocks: %d writes, BeforePad %v; want 1 write after BeforePad(%d)", writes, pads, len(want))
			}
			checkPadded(t, path, want, faultBlock)
			checkRead(t, f, want)
			mustOK(t, f.Close())
			checkDisk(t, path, want)
		})
	}
}
