package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	const table = `22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 master:3 - proc proc rw
42 22 0:39 / /mnt/with\040space\011tab rw,nosuid,nodev,relatime - fuse.segfs segfs rw,user_id=0,group_id=0
43 22 0:40 / /srv/back\134slash rw - fuse /dev/fuse rw
44 42 0:41 / /mnt/with\040space\011tab rw - tmpfs tmp\040fs rw
`
	got, err := parseMountinfo(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	want := []mountEntry{
		{Major: 259, Minor: 2, Mountpoint: "/", FSType: "ext4", Source: "/dev/nvme0n1p2"},
		{Major: 0, Minor: 21, Mountpoint: "/proc", FSType: "proc", Source: "proc"},
		{Major: 0, Minor: 39, Mountpoint: "/mnt/with space\ttab", FSType: "fuse.segfs", Source: "segfs"},
		{Major: 0, Minor: 40, Mountpoint: `/srv/back\slash`, FSType: "fuse", Source: "/dev/fuse"},
		{Major: 0, Minor: 41, Mountpoint: "/mnt/with space\ttab", FSType: "tmpfs", Source: "tmp fs"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseMountinfo:\n got %+v\nwant %+v", got, want)
	}
	// The topmost of stacked mounts is the one a lookup reaches.
	if m, ok := mountAt(got, "/mnt/with space\ttab"); !ok || m.FSType != "tmpfs" {
		t.Fatalf("mountAt = %+v, %v; want the tmpfs mounted last", m, ok)
	}
	if _, ok := mountAt(got, "/mnt"); ok {
		t.Fatal("mountAt(/mnt) found a mount that is not there")
	}
	fuseTypes := map[string]bool{"ext4": false, "proc": false, "fuse.segfs": true, "fuse": true, "tmpfs": false}
	for _, e := range got {
		if e.isFUSE() != fuseTypes[e.FSType] {
			t.Errorf("%s: isFUSE = %v", e.FSType, e.isFUSE())
		}
	}
}

func TestParseMountinfoRejectsGarbage(t *testing.T) {
	for _, line := range []string{
		"22 1 259:2 / / rw,relatime shared:1 ext4 /dev/sda rw", // no separator
		"22 1 259x2 / / rw - ext4 /dev/sda rw",                 // bad device
		"22 1 259:2 / / rw -",                                  // nothing after the separator
	} {
		if _, err := parseMountinfo(strings.NewReader(line + "\n")); err == nil {
			t.Errorf("parseMountinfo(%q) succeeded", line)
		}
	}
}

func TestReadMountinfoSeesRoot(t *testing.T) {
	mounts, err := readMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mountAt(mounts, "/"); !ok {
		t.Fatal("/proc/self/mountinfo has no mount at /")
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
		got, err := defaultDataDir(func(k string) string { return tt.env[k] })
		if err != nil || got != tt.want {
			t.Errorf("defaultDataDir(%v) = %q, %v; want %q", tt.env, got, err, tt.want)
		}
	}
	if got := defaultLogFile("/var/lib/segfs/"); got != "/var/lib/segfs.log" {
		t.Errorf("defaultLogFile = %q", got)
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
		got, err := resolveMountpoint(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("resolveMountpoint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := resolveMountpoint("no/such/dir"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("resolveMountpoint under a missing dir = %v", err)
	}
}
