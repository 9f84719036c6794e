package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMountAtSeesRootAndTheTopmostMount(t *testing.T) {
	if m, ok, err := mountAt("/"); err != nil || !ok {
		t.Fatalf("mountAt(/) = %v, %v, %v; /proc/self/mountinfo has no mount at /", m, ok, err)
	}
	if os.Getuid() != 0 {
		t.Skip("stacking mounts needs root")
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "with space\ttab")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"lower", "upper"} {
		if err := unix.Mount(src, mnt, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	}
	m, ok, err := mountAt(mnt)
	if err != nil || !ok {
		t.Fatalf("mountAt(%q) = %v, %v, %v", mnt, m, ok, err)
	}
	// The escaped space and tab are decoded, and of stacked mounts the topmost is the one a lookup reaches.
	if m.FSType != "tmpfs" || m.Source != "upper" || isFUSE(m) {
		t.Fatalf("mountAt = %+v; want the tmpfs \"upper\" mounted last", m)
	}
	if _, ok, _ := mountAt(dir); ok {
		t.Fatal("mountAt found a mount where there is none")
	}
}

func TestDefaultDataDir(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SEGFS_DATA": "/a", "XDG_DATA_HOME": "/x", "HOME": "/h"}, "/a"},
		{map[string]string{"XDG_DATA_HOME": "/x", "HOME": "/h"}, "/x/segfs"},
		{map[string]string{"XDG_DATA_HOME": "relative", "HOME": "/h"}, "/h/.local/share/segfs"},
		{map[string]string{"HOME": "/h"}, "/h/.local/share/segfs"},
	}
	for _, tt := range tests {
		got, err := DefaultDataDir(func(k string) string { return tt.env[k] })
		if err != nil || got != tt.want {
			t.Errorf("DefaultDataDir(%v) = %q, %v; want %q", tt.env, got, err, tt.want)
		}
	}
	if got := DefaultLogFile("/var/lib/segfs/"); got != "/var/lib/segfs.log" {
		t.Errorf("DefaultLogFile = %q", got)
	}
}

func TestResolveMountpoint(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "leaf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "parent")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	tests := []struct{ in, want string }{
		{real, real},
		{"real", real},
		{"./real/", real},
		{"leaf", real},
		{"parent/real", real},
		{"parent/missing", filepath.Join(dir, "missing")}, // existence is checked later, with its own message
		{"/", "/"},
	}
	for _, tt := range tests {
		got, err := ResolveMountpoint(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ResolveMountpoint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := ResolveMountpoint("no/such/dir"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("ResolveMountpoint under a missing dir = %v", err)
	}
}
