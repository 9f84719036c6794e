package directio

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// allocated is the disk space the file at path occupies (st_blocks), read around the seam.
func allocated(t testing.TB, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// openReserveFile opens a fresh File with fixed alignment through a (disarmed) faultSyscalls that
// counts fallocate calls, and appends initial bytes, leaving a partial tail.
func openReserveFile(t *testing.T, mode Mode, initial []byte) (File, *faultSyscalls, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seg")
	sys := newFaultSyscalls(faultBlock)
	f, err := Open(path, Options{Mode: mode, Syscalls: sys, Alignment: Alignment{faultBlock, faultBlock}})
	mustOK(t, err)
	t.Cleanup(func() { _ = f.Close() })
	_, err = f.Write(initial)
	mustOK(t, err)
	return f, sys, path
}

// TestReserveAllocates: Reserve allocates the blocks up to end without changing the size or the
// content, starting at the block-aligned end of what is on disk; asking again for a reserved range
// makes no syscall; appends into the reserved range read back and land exactly; a FlushAndTruncate
// that truncates frees the reservation (one that does not keeps it), and Close gives it back.
func TestReserveAllocates(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 7))
			model := payload(r, 5000, 0)
			f, sys, path := openReserveFile(t, mode, model)
			before := snapshot(t, path)
			const end = 4<<20 + 100
			mustOK(t, f.Reserve(end))
			if got := allocated(t, path); got < 4<<20 {
				t.Fatalf("st_blocks after Reserve(%d) is %d bytes, want at least 4 MiB", end, got)
			}
			if after := snapshot(t, path); !after.equal(before) {
				t.Fatalf("Reserve changed the file: size %d -> %d", before.size, after.size)
			}
			checkRead(t, f, model)
			n, last := sys.fallocated()
			onDisk := before.size &^ (faultBlock - 1) // buffered: 4096 of 5000; direct: the full block
			wantLen := (int64(end)+faultBlock-1)&^(faultBlock-1) - onDisk
			if n != 1 || last != [3]int64{unix.FALLOC_FL_KEEP_SIZE, onDisk, wantLen} {
				t.Fatalf("fallocate calls %d, last (mode, off, len) %v; want 1, [%d %d %d]", n, last, unix.FALLOC_FL_KEEP_SIZE, onDisk, wantLen)
			}
			mustOK(t, f.Reserve(end))
			mustOK(t, f.Reserve(1<<20))
			if n, _ := sys.fallocated(); n != 1 {
				t.Fatalf("Reserve of a reserved range made %d more fallocate calls", n-1)
			}

			for _, k := range []int{100, 70000, 3 << 20, 4096, 7} {
				p := payload(r, k, 3)
				_, err := f.Write(p)
				mustOK(t, err)
				model = append(model, p...)
			}
			checkRead(t, f, model)
			mustOK(t, f.FlushAndTruncate())
			checkDisk(t, path, model)
			spare := int64(len(model)) + 64<<10 // data blocks plus an extent-tree block or two
			got := allocated(t, path)
			calls, _ := sys.fallocated()
			if mode == Buffered {
				// No truncate was needed, so the reservation survives, and using it needs no syscall.
				if got < 4<<20 {
					t.Fatalf("buffered FlushAndTruncate dropped the reservation: %d bytes allocated", got)
				}
				mustOK(t, f.Reserve(4<<20))
				if n, _ := sys.fallocated(); n != calls {
					t.Fatal("Reserve of a range that survived FlushAndTruncate made a syscall")
				}
			} else {
				// The truncate to the exact size freed it, so a new Reserve asks the filesystem again.
				if got > spare {
					t.Fatalf("after the truncate the file occupies %d bytes for %d of data", got, len(model))
				}
				mustOK(t, f.Reserve(int64(len(model))+2<<20))
				if n, _ := sys.fallocated(); n != calls+1 {
					t.Fatalf("Reserve after a truncate made %d fallocate calls, want 1", n-calls)
				}
				if got := allocated(t, path); got < int64(len(model))+2<<20-faultBlock {
					t.Fatalf("st_blocks after the second Reserve is %d bytes", got)
				}
			}
			// Close gives every spare block back.
			mustOK(t, f.Close())
			checkDisk(t, path, model)
			if got := allocated(t, path); got > spare {
				t.Fatalf("after Close the file occupies %d bytes for %d of data", got, len(model))
			}
			if err := f.Reserve(1 << 30); !errors.Is(err, fs.ErrClosed) {
				t.Fatalf("Reserve after Close = %v, want fs.ErrClosed", err)
			}
		})
	}
}

// TestUnreserve: Unreserve gives back what Reserve allocated, without changing the file's size or
// content; appends go on as before (the tail in memory included) and Reserve works again.
func TestUnreserve(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(9, 9))
			model := payload(r, 5000, 0)
			f, _, path := openReserveFile(t, mode, model)
			mustOK(t, f.Reserve(4<<20))
			before := snapshot(t, path)
			mustOK(t, f.Unreserve())
			if after := snapshot(t, path); !after.equal(before) {
				t.Fatalf("Unreserve changed the file: size %d -> %d", before.size, after.size)
			}
			if got := allocated(t, path); got > 64<<10 {
				t.Fatalf("after Unreserve the file occupies %d bytes for %d of data", got, len(model))
			}
			checkRead(t, f, model)
			p := payload(r, 9000, 3)
			_, err := f.Write(p)
			mustOK(t, err)
			model = append(model, p...)
			mustOK(t, f.Reserve(1<<20))
			if got := allocated(t, path); got < 1<<20-faultBlock {
				t.Fatalf("Reserve after Unreserve: %d bytes allocated", got)
			}
			mustOK(t, f.FlushAndTruncate())
			checkDisk(t, path, model)
		})
	}
}

// TestReserveENOSPC: a Reserve that fails with ENOSPC returns an error wrapping it and leaves Size,
// ReadAt, the file's size, content and allocation as they were; the File goes on working.
func TestReserveENOSPC(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(8, 8))
			model := payload(r, 9000, 0)
			f, sys, path := openReserveFile(t, mode, model)
			before, blocks := snapshot(t, path), allocated(t, path)
			sys.arm(0, faultErr, unix.ENOSPC)
			err := f.Reserve(1 << 20)
			sys.disarm()
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("Reserve on a full disk = %v, want ENOSPC", err)
			}
			if after := snapshot(t, path); !after.equal(before) {
				t.Fatalf("failed Reserve changed the file: size %d -> %d", before.size, after.size)
			}
			if got := allocated(t, path); got != blocks {
				t.Fatalf("failed Reserve changed st_blocks: %d -> %d bytes", blocks, got)
			}
			checkRead(t, f, model)

			// The failure is not remembered: the next Reserve asks the filesystem again.
			mustOK(t, f.Reserve(1<<20))
			if n, _ := sys.fallocated(); n != 2 {
				t.Fatalf("fallocate calls = %d, want 2 (the failed one and the retry)", n)
			}
			p := payload(r, 20000, 1)
			_, err = f.Write(p)
			mustOK(t, err)
			model = append(model, p...)
			mustOK(t, f.Close())
			checkDisk(t, path, model)
		})
	}
}

// TestReserveUnsupported: on a filesystem without fallocate, Reserve succeeds without reserving
// anything and does not ask again; the File works as without it.
func TestReserveUnsupported(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(9, 9))
			model := payload(r, 300, 0)
			f, sys, path := openReserveFile(t, mode, model)
			blocks := allocated(t, path)
			sys.arm(0, faultErr, unix.EOPNOTSUPP)
			sys.always = true
			mustOK(t, f.Reserve(1<<20))
			mustOK(t, f.Reserve(2<<20))
			if n, _ := sys.fallocated(); n != 1 {
				t.Fatalf("fallocate calls = %d, want 1: EOPNOTSUPP must be remembered", n)
			}
			sys.disarm()
			if got := allocated(t, path); got != blocks {
				t.Fatalf("st_blocks changed from %d to %d bytes without fallocate", blocks, got)
			}
			p := payload(r, 3*faultBlock+17, 0)
			_, err := f.WriteV([][]byte{p[:100], p[100:]})
			mustOK(t, err)
			model = append(model, p...)
			mustOK(t, f.Close())
			checkDisk(t, path, model)
			if !bytes.Equal(snapshot(t, path).data, model) {
				t.Fatal("content differs")
			}
		})
	}
}
