package integration

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDataDirWithoutODirect: issue 5 §3.2 and issue 4 §4.7. segfs chose a clear error at mount, not a fallback:
// with io=dsync or io=direct on a file system that rejects O_DIRECT, `segfs mount` exits 1 with one line naming
// O_DIRECT and the io=buffered remedy; io=buffered then mounts.
//
// The file system is probed, not assumed: tmpfs accepts O_DIRECT since Linux 6.6, so on such kernels the tmpfs
// case must mount fine, while ramfs still rejects O_DIRECT and carries the error case.
func TestDataDirWithoutODirect(t *testing.T) {
	requireRoot(t)
	rejected := false
	for _, fstype := range []string{"tmpfs", "ramfs"} {
		t.Run(fstype, func(t *testing.T) {
			data := scratchFS(t, fstype)
			supported := probeODirect(t, data)
			t.Logf("%s accepts O_DIRECT: %v", fstype, supported)
			rejected = rejected || !supported
			for _, io := range []string{"dsync", "direct", "buffered"} {
				for _, fg := range []bool{true, false} {
					mnt := t.TempDir()
					args := []string{"mount", "--data", data, "-o", "io=" + io, mnt}
					if fg {
						args = append([]string{"mount", "--foreground"}, args[1:]...)
					}
					if !supported && io != "buffered" {
						t.Cleanup(func() { unmountLeftovers(t, mnt) })
						expectMountError(t, args, "O_DIRECT", "io=buffered")
						if hasFuseEntry(mnt) {
							t.Errorf("io=%s on %s: a mount was left at %s after the error", io, fstype, mnt)
						}
						continue
					}
					if fg {
						continue // the daemonizing form below covers success; the foreground one would block
					}
					daemonMount(t, mnt, args...)
					mkdir(t, filepath.Join(mnt, "T"))
					want := []byte("on " + fstype + " with io=" + io + "\n")
					appendFile(t, filepath.Join(mnt, "T", "0", "current"), want)
					if got, _ := readPartition(t, filepath.Join(mnt, "T", "0")); !bytes.Equal(got, want) {
						t.Errorf("io=%s on %s: read back %q, want %q", io, fstype, got, want)
					}
					daemonUnmount(t, mnt)
					if err := os.RemoveAll(filepath.Join(data, "T")); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
	if !rejected {
		t.Errorf("neither tmpfs nor ramfs rejects O_DIRECT here: the error case went untested")
	}
}

// scratchFS mounts a fresh file system of type fstype and returns a data dir on it.
func scratchFS(t *testing.T, fstype string) string {
	t.Helper()
	dir := t.TempDir()
	mustSh(t, `mount -t "$T" -o size=64m "$T" "$D"`, "T="+fstype, "D="+dir)
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s %s: %v; detaching lazily", fstype, dir, err)
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	data := filepath.Join(dir, "segfs")
	mkdir(t, data)
	return data
}

// probeODirect reports whether dir's file system takes an aligned O_DIRECT write.
func probeODirect(t *testing.T, dir string) bool {
	t.Helper()
	path := filepath.Join(filepath.Dir(dir), "odirect-probe")
	defer os.Remove(path)
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_WRONLY|unix.O_DIRECT, 0o644)
	if errors.Is(err, unix.EINVAL) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(buf)
	_, err = unix.Write(fd, buf)
	if errors.Is(err, unix.EINVAL) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}
