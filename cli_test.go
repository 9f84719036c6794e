package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"segfs/directio"
	"segfs/internal/clitest"
	"segfs/mountopts"
	"segfs/segments"
)

// runCLI runs segfs in-process and returns its exit code and stderr.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"segfs"}, args...), &stdout, &stderr)
	return code, stderr.String()
}

// parseMount runs the real argument handling of `segfs <args>` up to the Config the mount would use, without
// mounting.
func parseMount(t *testing.T, env map[string]string, args ...string) (mountopts.Config, error) {
	t.Helper()
	app := newApp(io.Discard, io.Discard)
	var cfg mountopts.Config
	var cfgErr error
	app.Command("mount").Action = func(c *cli.Context) error {
		cfg, cfgErr = mountConfig(c, func(k string) string { return env[k] })
		return nil
	}
	argv, err := normalizeArgs(app, append([]string{"segfs"}, args...))
	if err != nil {
		return cfg, err
	}
	if err := app.Run(argv); err != nil {
		return cfg, err
	}
	return cfg, cfgErr
}

func TestMountConfig(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(mnt, link); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": "/home/u"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		edit func(c *mountopts.Config)
	}{
		{"defaults", env, []string{"mount", mnt}, func(c *mountopts.Config) {
			c.DataDir = "/home/u/.local/share/segfs"
		}},
		{"XDG_DATA_HOME", map[string]string{"HOME": "/home/u", "XDG_DATA_HOME": "/xdg"}, []string{"mount", mnt},
			func(c *mountopts.Config) { c.DataDir = "/xdg/segfs" }},
		{"relative XDG_DATA_HOME is ignored", map[string]string{"HOME": "/h", "XDG_DATA_HOME": "rel"},
			[]string{"mount", mnt}, func(c *mountopts.Config) { c.DataDir = "/h/.local/share/segfs" }},
		{"SEGFS_DATA wins", map[string]string{"HOME": "/h", "XDG_DATA_HOME": "/xdg", "SEGFS_DATA": "/sd"},
			[]string{"mount", mnt}, func(c *mountopts.Config) { c.DataDir = "/sd" }},
		{"--data wins", map[string]string{"SEGFS_DATA": "/sd"}, []string{"mount", "--data", "/explicit", mnt},
			func(c *mountopts.Config) { c.DataDir = "/explicit" }},
		{"-o keys", env, []string{"mount", "-o", "segment_size=64MiB,io=buffered", "-o", "ro,partitions=4", mnt},
			func(c *mountopts.Config) {
				c.DataDir = "/home/u/.local/share/segfs"
				c.Segments.SegmentSize, c.Segments.IO, c.ReadOnly, c.Segments.Partitions = 64<<20, directio.Buffered, true, 4
			}},
		{"flags", env, []string{"mount", "--segment-size", "64MiB", "--io", "direct", "--persist", "inline",
			"--partitions", "3", "--max-dirty", "1M", "--max-dirty-total", "2M", "--retention-bytes", "1G",
			"--retention-age", "2h", "--allow-other", "--default-permissions", "--debug", mnt},
			func(c *mountopts.Config) {
				c.DataDir = "/home/u/.local/share/segfs"
				s := &c.Segments
				s.SegmentSize, s.IO, s.Persist, s.Partitions = 64<<20, directio.Direct, segments.Inline, 3
				s.MaxDirty, s.MaxDirtyTotal, s.RetentionBytes, s.RetentionAge = 1<<20, 2<<20, 1<<30, 2*time.Hour
				c.AllowOther, c.DefaultPermissions, c.Debug = true, true, true
			}},
		{"flags override -o whatever the order", env,
			[]string{"mount", "--segment-size", "2MiB", "-o", "segment_size=8MiB,debug", "--debug=false", mnt},
			func(c *mountopts.Config) { c.DataDir = "/home/u/.local/share/segfs"; c.Segments.SegmentSize = 2 << 20 }},
		{"flags after the mountpoint", env, []string{"mount", mnt, "--ro", "-o", "io=buffered"},
			func(c *mountopts.Config) {
				c.DataDir = "/home/u/.local/share/segfs"
				c.ReadOnly, c.Segments.IO = true, directio.Buffered
			}},
		{"fstab form", env, []string{"/srv/data", mnt, "-o", "rw,nofail,dev,suid,_netdev,segment_size=1MiB,x-systemd.automount"},
			func(c *mountopts.Config) { c.DataDir = "/srv/data"; c.Segments.SegmentSize = 1 << 20 }},
		{"symlinked mountpoint resolves", env, []string{"mount", "--data", "/d", link},
			func(c *mountopts.Config) { c.DataDir = "/d" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMount(t, tt.env, tt.args...)
			if err != nil {
				t.Fatalf("segfs %q: %v", tt.args, err)
			}
			want := mountopts.Defaults()
			want.Mountpoint = mnt
			tt.edit(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("segfs %q:\n got %+v\nwant %+v", tt.args, got, want)
			}
		})
	}
}

func TestMountConfigRelativeDataDir(t *testing.T) {
	mnt := t.TempDir()
	cfg, err := parseMount(t, nil, "mount", "--data", "rel/data", mnt)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if cfg.DataDir != filepath.Join(wd, "rel/data") {
		t.Fatalf("DataDir = %q; want it absolute under %s", cfg.DataDir, wd)
	}
}

// TestMountFailsWithOneLine covers the errors of issue 4 §4.7 and issue 5 §3.4 that need no working mount:
// exit code 1 and exactly one line on stderr naming the problem. Each runs as daemon parent (the default) and
// with --foreground, since both paths check before mounting.
func TestMountFailsWithOneLine(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	file := filepath.Join(dir, "file")
	data := filepath.Join(dir, "data")
	for _, p := range []string{mnt, data} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no mountpoint", []string{"mount", "--data", data}, []string{"usage: segfs mount"}},
		{"two mountpoints", []string{"mount", "--data", data, mnt, mnt}, []string{"usage: segfs mount"}},
		{"missing mountpoint", []string{"mount", "--data", data, filepath.Join(dir, "nope")},
			[]string{"mountpoint " + filepath.Join(dir, "nope") + " does not exist"}},
		{"missing parent of mountpoint", []string{"mount", "--data", data, filepath.Join(dir, "no/pe")},
			[]string{"does not exist"}},
		{"mountpoint is a file", []string{"mount", "--data", data, file},
			[]string{"mountpoint " + file + " is not a directory"}},
		{"already mounted", []string{"mount", "--data", data, "/proc"},
			[]string{"mountpoint /proc is already mounted (proc"}},
		{"unknown option", []string{"mount", "--data", data, "-o", "rw,bogus=1", mnt}, []string{`unknown option "bogus"`}},
		{"invalid option value", []string{"mount", "--data", data, "-o", "segment_size=0", mnt},
			[]string{"segment_size must be greater than 0"}},
		{"invalid flag value", []string{"mount", "--data", data, "--partitions", "0", mnt},
			[]string{"--partitions 0", "at least 1"}},
		{"conflicting options", []string{"mount", "--data", data, "-o", "max_dirty=2G", mnt},
			[]string{"conflicting options", "max_dirty"}},
		{"ro with retention", []string{"mount", "--data", data, "-o", "ro,retention_age=1h", mnt},
			[]string{"ro with retention_age"}},
		{"bad log level", []string{"--log-level", "loud", "mount", mnt}, []string{"--log-level"}},
		{"fstab form, bad option", []string{data, mnt, "-o", "rw,io=sometimes"}, []string{"option io=sometimes"}},
		{"metrics address without port", []string{"mount", "--data", data, "-o", "metrics=localhost", mnt},
			[]string{"option metrics=localhost", "HOST:PORT"}},
		{"metrics detail", []string{"mount", "--data", data, "--metrics-detail", "segment", mnt},
			[]string{"--metrics-detail segment", "partition, topic or mount"}},
	}
	for _, tt := range tests {
		for _, fg := range []bool{false, true} {
			args := tt.args
			name := tt.name
			if fg {
				args = withForeground(args)
				name += "/foreground"
			}
			t.Run(name, func(t *testing.T) {
				code, stderr := runCLI(t, args...)
				clitest.CheckOneLineFailure(t, args, code, stderr, tt.want...)
			})
		}
	}
}

// withForeground adds --foreground right after the mount command, or at the end for the fstab form.
func withForeground(args []string) []string {
	for i, a := range args {
		if a == "mount" {
			return append(append(append([]string{}, args[:i+1]...), "--foreground"), args[i+1:]...)
		}
	}
	return append(append([]string{}, args...), "--foreground")
}

// The data dir checks run in the daemon's parent before it forks, so these never reach a mount.
func TestMountDataDirErrors(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	file := filepath.Join(dir, "file")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
		want string
	}{
		{"data dir is a file", file, "data dir " + file + " is not a directory"},
		{"data dir under a file", filepath.Join(file, "sub"), "data dir " + filepath.Join(file, "sub") + ": cannot create it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"mount", "--data", tt.data, mnt}
			code, stderr := runCLI(t, args...)
			clitest.CheckOneLineFailure(t, args, code, stderr, tt.want)
		})
	}
}

func TestUmountErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no mountpoint", []string{"umount"}, "usage: segfs umount [--force] MOUNTPOINT"},
		{"not mounted", []string{"umount", dir}, dir + " is not mounted"},
		{"missing", []string{"umount", filepath.Join(dir, "x/y")}, "does not exist"},
		{"not ours", []string{"umount", "/proc"}, "/proc is not a segfs mount (proc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := runCLI(t, tt.args...)
			clitest.CheckOneLineFailure(t, tt.args, code, stderr, tt.want)
		})
	}
}

// requireRoot skips tests that mount filesystems of their own.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a scratch filesystem")
	}
}

func mountScratch(t *testing.T, fstype, dir string, flags uintptr) {
	t.Helper()
	if err := unix.Mount(fstype, dir, fstype, flags, ""); err != nil {
		t.Skipf("cannot mount %s: %v", fstype, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
}

// ramfs has no O_DIRECT (tmpfs has it since Linux 6.6), so it stands for any such filesystem.
func TestMountDataDirWithoutDirectIO(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	ram, mnt := filepath.Join(dir, "ram"), filepath.Join(dir, "mnt")
	for _, p := range []string{ram, mnt} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mountScratch(t, "ramfs", ram, 0)
	data := filepath.Join(ram, "data")
	for _, io := range []string{"dsync", "direct"} {
		args := []string{"mount", "--data", data, "-o", "io=" + io, mnt}
		code, stderr := runCLI(t, args...)
		clitest.CheckOneLineFailure(t, args, code, stderr, "data dir "+data, "O_DIRECT", "io=buffered")
	}
}

func TestMountDataDirReadOnly(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	ro, mnt := filepath.Join(dir, "ro"), filepath.Join(dir, "mnt")
	for _, p := range []string{ro, mnt} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mountScratch(t, "tmpfs", ro, 0)
	if err := os.Mkdir(filepath.Join(ro, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", ro, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("remount read-only: %v", err)
	}
	data := filepath.Join(ro, "data")
	args := []string{"mount", "--data", data, mnt}
	code, stderr := runCLI(t, args...)
	clitest.CheckOneLineFailure(t, args, code, stderr, "data dir "+data+" is not writable", "read-only file system")
}
