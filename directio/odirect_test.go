package directio

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountFS mounts a fresh filesystem of type fstype in a temporary directory, skipping the test when
// that is not possible (not root, no such filesystem).
func mountFS(t *testing.T, fstype string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("mounting %s needs root", fstype)
	}
	dir := t.TempDir()
	if err := unix.Mount(fstype, dir, fstype, 0, "size=16m"); err != nil {
		t.Skipf("mount %s: %v", fstype, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func checkUnsupported(t *testing.T, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrDirectIOUnsupported) || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("error %v does not wrap ErrDirectIOUnsupported and EINVAL", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "io=buffered") {
		t.Fatalf("error %q does not name %s and suggest io=buffered", msg, path)
	}
}

// TestODirectRejectedAtOpen: ramfs has no direct I/O at all and fails open(O_DIRECT) with EINVAL.
// (tmpfs accepts O_DIRECT since Linux 6.6, so it cannot serve as the rejecting filesystem here; see
// TestODirectOnMemoryFilesystems.)
func TestODirectRejectedAtOpen(t *testing.T) {
	dir := mountFS(t, "ramfs")
	for _, mode := range []Mode{Direct, DirectSync} {
		path := filepath.Join(dir, "seg-"+mode.String())
		_, err := Open(path, Options{Mode: mode})
		checkUnsupported(t, err, path)
	}
	path := filepath.Join(dir, "seg-buffered")
	f, err := Open(path, Options{Mode: Buffered})
	mustOK(t, err)
	_, err = f.Write([]byte("works buffered"))
	mustOK(t, err)
	mustOK(t, f.Close())
	checkDisk(t, path, []byte("works buffered"))
}

// TestODirectRejectedOnFirstWrite: some filesystems accept the open flag and fail the first write.
func TestODirectRejectedOnFirstWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	sys := newFaultSyscalls(faultBlock)
	f, err := Open(path, Options{Mode: Direct, Syscalls: sys, Alignment: Alignment{faultBlock, faultBlock}})
	mustOK(t, err)
	sys.arm(0, faultErr, unix.EINVAL)
	_, err = f.Write(make([]byte, faultBlock))
	checkUnsupported(t, err, path)
	checkDisk(t, path, nil)
	sys.disarm()
	want := bytes.Repeat([]byte{1}, faultBlock)
	_, err = f.Write(want)
	mustOK(t, err)
	// Once direct writes are known to work, EINVAL is just EINVAL.
	sys.arm(0, faultErr, unix.EINVAL)
	_, err = f.Write(make([]byte, faultBlock))
	if !errors.Is(err, unix.EINVAL) || errors.Is(err, ErrDirectIOUnsupported) {
		t.Fatalf("later EINVAL = %v, want plain EINVAL", err)
	}
	sys.disarm()
	mustOK(t, f.Close())
	checkDisk(t, path, want)
}

// TestODirectOnMemoryFilesystems: on tmpfs (mounted here, and /dev/shm) a direct File either works
// exactly or fails with the io=buffered hint; it never half-works.
func TestODirectOnMemoryFilesystems(t *testing.T) {
	dirs := map[string]func(t *testing.T) string{
		"tmpfs":    func(t *testing.T) string { return mountFS(t, "tmpfs") },
		"/dev/shm": func(t *testing.T) string { return shmDir(t) },
	}
	for name, mk := range dirs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(mk(t), "seg")
			f, err := Open(path, Options{Mode: DirectSync})
			if err != nil {
				checkUnsupported(t, err, path)
				return
			}
			want := bytes.Repeat([]byte("segfs"), 3000)
			_, err = f.Write(want)
			if err != nil {
				checkUnsupported(t, err, path)
				mustOK(t, f.Close())
				return
			}
			mustOK(t, f.Close())
			checkDisk(t, path, want)
		})
	}
}

func shmDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "directio-test-")
	if err != nil {
		t.Skipf("/dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestDiscoverAlignment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	mustOK(t, os.WriteFile(path, nil, 0o644))
	for _, p := range []string{path, dir} {
		a, err := DiscoverAlignment(p)
		mustOK(t, err)
		if a.validate() != nil {
			t.Fatalf("DiscoverAlignment(%s) = %+v, not powers of two", p, a)
		}
		// The alignment must really be accepted by O_DIRECT: write one block through a File.
		f, err := Open(filepath.Join(dir, "probe"), Options{Mode: Direct, Alignment: a})
		mustOK(t, err)
		_, err = f.Write(AlignedAlloc(a.block(), a.block()))
		mustOK(t, err)
		mustOK(t, f.Close())
	}
	var st unix.Statx_t
	mustOK(t, unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_DIOALIGN, &st))
	if st.Mask&unix.STATX_DIOALIGN != 0 {
		a, _ := DiscoverAlignment(path)
		if a.Offset != int(st.Dio_offset_align) || a.Memory != int(st.Dio_mem_align) {
			t.Fatalf("DiscoverAlignment = %+v, statx says offset %d memory %d", a, st.Dio_offset_align, st.Dio_mem_align)
		}
	}
	if _, err := DiscoverAlignment(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("DiscoverAlignment of a missing path succeeded")
	}
	// A filesystem without STATX_DIOALIGN answers (tmpfs) falls back to the device or 4096.
	if a, err := DiscoverAlignment(shmDir(t)); err != nil || a.validate() != nil {
		t.Fatalf("DiscoverAlignment(/dev/shm) = %+v, %v", a, err)
	}
}

func TestAlignedAllocAndPool(t *testing.T) {
	for _, align := range []int{1, 512, 4096, 1 << 16} {
		for _, size := range []int{1, 511, 4096, 100000} {
			b := AlignedAlloc(size, align)
			if len(b) != size || cap(b) != size || !IsAligned(b, align) {
				t.Fatalf("AlignedAlloc(%d, %d): len %d cap %d aligned %v", size, align, len(b), cap(b), IsAligned(b, align))
			}
		}
	}
	p := NewPool(8192, 4096)
	b := p.Get()
	if len(b) != 8192 || cap(b) != 8192 || !IsAligned(b, 4096) || p.BlockSize() != 8192 {
		t.Fatalf("Pool.Get: len %d cap %d aligned %v", len(b), cap(b), IsAligned(b, 4096))
	}
	p.Put(b)
	if c := p.Get(); &c[0] != &b[0] {
		t.Fatal("Pool did not reuse a returned block")
	}
	p.Put(make([]byte, 100)) // wrong size: dropped, never handed out
	if c := p.Get(); len(c) != 8192 {
		t.Fatalf("Pool handed out a foreign block of %d bytes", len(c))
	}
	if allocs := testing.AllocsPerRun(100, func() { p.Put(p.Get()) }); allocs != 0 {
		t.Fatalf("warm Pool Get/Put allocates %.1f times", allocs)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "f"), Options{Mode: Direct, Alignment: Alignment{4096, 4096}, Pool: NewPool(1000, 8)}); err == nil {
		t.Fatal("Open accepted a pool whose blocks do not fit the alignment")
	}
}

// TestPoolRetention: Put keeps at most the retention count of free blocks, and Trim gives back all but
// the number asked for.
func TestPoolRetention(t *testing.T) {
	p := NewPool(4096, 4096)
	p.SetRetain(10)
	var held [][]byte
	for range 15 {
		held = append(held, p.Get())
	}
	for _, b := range held {
		p.Put(b)
	}
	if n := p.Free(); n != 10 {
		t.Fatalf("after 15 Puts with retention 10: %d free, want 10", n)
	}
	if n := p.Trim(3); n != 7 || p.Free() != 3 {
		t.Fatalf("Trim(3) dropped %d, left %d; want 7 and 3", n, p.Free())
	}
	if n := p.Trim(5); n != 0 || p.Free() != 3 {
		t.Fatalf("Trim(5) of 3 dropped %d, left %d", n, p.Free())
	}
	p.SetRetain(1)
	if n := p.Free(); n != 1 {
		t.Fatalf("SetRetain(1) left %d free blocks", n)
	}
}
