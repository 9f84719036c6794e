package daemon

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"segfs/internal/clitest"
)

// TestSmokeMount drives the built segfs binary through a real mount: daemon start, the errors a live mount
// causes, umount waiting for the synced exit, stale-mount recovery after kill -9, and --foreground with
// SIGTERM. The integration suite covers the filesystem itself; this covers the CLI around it.
func TestSmokeMount(t *testing.T) {
	requireFUSE(t)
	bin := buildSegfs(t)
	dir := t.TempDir()
	data, mnt, mnt2 := filepath.Join(dir, "data"), filepath.Join(dir, "mnt"), filepath.Join(dir, "mnt2")
	for _, p := range []string{mnt, mnt2} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { forceUnmount(mnt) })
	segfs := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), stderr.String()
		}
		if err != nil {
			t.Fatalf("run segfs %q: %v", args, err)
		}
		return 0, stderr.String()
	}
	mustMount := func(args ...string) string {
		t.Helper()
		code, stderr := segfs(args...)
		if code != 0 {
			t.Fatalf("segfs %q exited %d: %s", args, code, stderr)
		}
		// `segfs mount` returns only once the mount is live.
		if !isSegfsMount(t, mnt) {
			t.Fatalf("segfs %q returned but %s is not mounted", args, mnt)
		}
		return stderr
	}
	mustUmount := func() {
		t.Helper()
		if code, stderr := segfs("umount", mnt); code != 0 {
			t.Fatalf("segfs umount exited %d: %s", code, stderr)
		}
		// When umount returns the daemon has closed the log (lock released) and exited.
		if isSegfsMount(t, mnt) {
			t.Fatal("still mounted after segfs umount")
		}
		assertUnlocked(t, data)
		if cc, err := dialControl(mnt); err == nil {
			cc.conn.Close()
			t.Fatalf("daemon pid %d still answers after segfs umount", cc.pid)
		}
	}

	mustMount("mount", "--data", data, "-o", "segment_size=1MiB", mnt)
	if log, err := os.ReadFile(data + ".log"); err != nil || !strings.Contains(string(log), "daemon ready") {
		t.Fatalf("daemon log %s.log: %v, %q", data, err, log)
	}
	if err := os.Mkdir(filepath.Join(mnt, "t"), 0o755); err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(mnt, "t", "0", "current"), "hello\n")

	code, stderr := segfs("mount", "--data", filepath.Join(dir, "other"), mnt)
	clitest.CheckOneLineFailure(t, []string{"mount", mnt}, code, stderr, "already mounted")
	code, stderr = segfs("mount", "--data", data, mnt2)
	clitest.CheckOneLineFailure(t, []string{"mount", "--data", data, mnt2}, code, stderr, "in use by another segfs")

	mustUmount()
	if got := partitionBytes(t, filepath.Join(data, "t", "0")); got != "hello\n" {
		t.Fatalf("backing files hold %q; want %q", got, "hello\n")
	}

	// kill -9 leaves "transport endpoint is not connected"; the next mount clears it by itself.
	mustMount("mount", "--data", data, mnt)
	cc, err := dialControl(mnt)
	if err != nil {
		t.Fatalf("find the daemon: %v", err)
	}
	cc.conn.Close()
	if err := syscall.Kill(int(cc.pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ENOTCONN on the dead mount", func() bool {
		_, err := os.Stat(mnt)
		return isDeadConn(err)
	})
	waitFor(t, "the killed daemon's lock to go", func() bool { return tryLock(data) == nil })
	if stderr := mustMount("mount", "--data", data, mnt); !strings.Contains(stderr, "cleared a stale mount") {
		t.Fatalf("stale mount cleared without a log line; stderr %q", stderr)
	}
	if got := readAll(t, filepath.Join(mnt, "t", "0", "current")); got != "hello\n" {
		t.Fatalf("after remount current holds %q", got)
	}
	mustUmount()

	// The fstab form, as mount.fuse3 runs it, and --foreground with SIGTERM.
	mustMount(data, mnt, "-o", "rw,nofail,dev,suid,io=buffered")
	mustUmount()
	fg := exec.Command(bin, "mount", "--foreground", "--data", data, mnt)
	var fgErr bytes.Buffer
	fg.Stderr = &fgErr
	if err := fg.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the foreground mount", func() bool { return isSegfsMount(t, mnt) })
	appendFile(t, filepath.Join(mnt, "t", "0", "current"), "world\n")
	if err := fg.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := fg.Wait(); err != nil {
		t.Fatalf("foreground segfs after SIGTERM: %v: %s", err, fgErr.String())
	}
	if isSegfsMount(t, mnt) {
		t.Fatal("still mounted after SIGTERM")
	}
	assertUnlocked(t, data)
	if got := partitionBytes(t, filepath.Join(data, "t", "0")); got != "hello\nworld\n" {
		t.Fatalf("backing files hold %q after SIGTERM", got)
	}
}

func requireFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("SKIPPING real-mount test: /dev/fuse is absent")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING real-mount test: needs root to mount FUSE without fusermount")
	}
}

func buildSegfs(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("SKIPPING real-mount test: no go tool to build segfs")
	}
	bin := filepath.Join(t.TempDir(), "segfs")
	out, err := exec.Command(goTool, "build", "-o", bin, "..").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func isSegfsMount(t *testing.T, mnt string) bool {
	t.Helper()
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (bool, bool) { return m.Mountpoint != mnt, false })
	if err != nil {
		t.Fatal(err)
	}
	return len(mounts) > 0 && mounts[len(mounts)-1].FSType == "fuse.segfs"
}

// assertUnlocked proves the daemon closed the log: segments holds an flock on DATA/.lock until then.
func assertUnlocked(t *testing.T, data string) {
	t.Helper()
	if err := tryLock(data); err != nil {
		t.Fatalf("data dir still locked: %v", err)
	}
}

func tryLock(data string) error {
	fd, err := unix.Open(filepath.Join(data, ".lock"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// partitionBytes concatenates a partition's backing segment files in order.
func partitionBytes(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range files {
		b.WriteString(readAll(t, f))
	}
	return b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forceUnmount is the cleanup of a failed test: whatever is left at mnt is detached and its daemon killed.
func forceUnmount(mnt string) {
	if cc, err := dialControl(mnt); err == nil {
		cc.conn.Close()
		_ = syscall.Kill(int(cc.pid), syscall.SIGKILL)
	}
	for unix.Unmount(mnt, unix.MNT_DETACH) == nil {
	}
}
