package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// atomicWrite is the largest write() that README promises lands whole, whatever the buffer's address:
// the kernel builds one FUSE WRITE from at most max_pages (256) pages of the user buffer, and a buffer
// that starts inside a page spends one of them on its first, partial page.
const atomicWrite = 1020 << 10

// TestAtomicWriteAnyAlignment: write()s of exactly atomicWrite bytes from buffers starting at many page
// offsets (up to the worst, 4095), while another writer appends small records and segments rotate every
// few records, each land whole: no other record inside, never split across two segments.
func TestAtomicWriteAnyAlignment(t *testing.T) {
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=4MiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	cur := filepath.Join(part, "current")

	mem, err := unix.Mmap(-1, 0, atomicWrite+2*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	var offsets []int
	for off := 0; off < 4096; off += 173 {
		offsets = append(offsets, off)
	}
	offsets = append(offsets, 1, 4095, 4095)

	// The small writer's records are "b%06d\n" (8 bytes); a big record is atomicWrite/8 copies of "A%06d\n".
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		for i := 0; !stop.Load(); i++ {
			if _, err := fmt.Fprintf(f, "b%06d\n", i%1000000); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	fd, err := unix.Open(cur, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range offsets {
		buf := mem[off : off+atomicWrite]
		copy(buf, bytes.Repeat([]byte(fmt.Sprintf("A%06d\n", i)), atomicWrite/8))
		if n, err := unix.Write(fd, buf); n != len(buf) || err != nil {
			t.Fatalf("write of %d bytes at page offset %d: %d, %v", len(buf), off, n, err)
		}
	}
	_ = unix.Close(fd)
	stop.Store(true)
	wg.Wait()

	got, segs := readPartition(t, part)
	if len(segs) < len(offsets)/4 {
		t.Fatalf("only %d segments: the test needs rotations between the big writes", len(segs))
	}
	seg := 0
	for pos, rec := 0, 0; pos < len(got); {
		if got[pos] == 'b' {
			pos += 8
			continue
		}
		token := []byte(fmt.Sprintf("A%06d\n", rec))
		end := pos + atomicWrite
		if got[pos] != 'A' || end > len(got) || !bytes.Equal(got[pos:end], bytes.Repeat(token, atomicWrite/8)) {
			t.Fatalf("big record %d (page offset %d) at partition offset %d is not whole: %q...",
				rec, offsets[rec], pos, got[pos:min(len(got), pos+16)])
		}
		for seg+1 < len(segs) && segs[seg+1].Base <= int64(pos) {
			seg++
		}
		if segEnd := segs[seg].Base + segs[seg].Size; int64(end) > segEnd {
			t.Fatalf("big record %d (page offset %d) at %d spans segments %s and the next", rec, offsets[rec], pos, segs[seg].Name)
		}
		pos, rec = end, rec+1
		if rec == len(offsets) && pos < len(got) && got[pos] == 'A' {
			t.Fatalf("more big records than written")
		}
	}
}
