package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"segfs/directio"
	"segfs/mountopts"
)

// ramfs has no O_DIRECT (tmpfs has it since Linux 6.6), so it stands for any such filesystem: the probe
// refuses it for the O_DIRECT modes and accepts it for io=buffered, leaving nothing behind.
func TestCheckDataDirWithoutDirectIO(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount ramfs")
	}
	ram := t.TempDir()
	if err := unix.Mount("ramfs", ram, "ramfs", 0, ""); err != nil {
		t.Skipf("cannot mount ramfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(ram, unix.MNT_DETACH) })
	data := filepath.Join(ram, "data")
	cfg := mountopts.Defaults()
	if err := checkDataDir(data, &cfg); err == nil {
		t.Fatal("checkDataDir(ramfs, io=dsync) succeeded; want the O_DIRECT refusal")
	}
	cfg.Segments.IO = directio.Buffered
	if err := checkDataDir(data, &cfg); err != nil {
		t.Fatalf("checkDataDir(ramfs, io=buffered) = %v", err)
	}
	entries, _ := os.ReadDir(data)
	if len(entries) != 0 {
		t.Fatalf("the probes left %d entries in the data dir", len(entries))
	}
}
