package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"segfs/integration/internal/recstream"
)

// TestBackgroundMount: issue 4 §4.1 and §4.3. `segfs mount` without --foreground, and the fstab form that
// mount.fuse3 runs (`segfs DATA MNT -o opts`, with the generic options mount(8) adds), daemonize and return only
// once the mount is live; the -o options apply; `segfs umount` unmounts and the daemon exits with the data synced.
func TestBackgroundMount(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(data, mnt string) []string
	}{
		{"segfs-mount", func(data, mnt string) []string {
			return []string{"mount", "--data", data, "-o", "segment_size=1MiB", mnt}
		}},
		{"fstab", func(data, mnt string) []string {
			return []string{data, mnt, "-o", "segment_size=1MiB,rw,nosuid,nodev,_netdev"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, mnt := newDirs(t)
			daemonMount(t, mnt, tc.args(data, mnt)...)
			mkdir(t, filepath.Join(mnt, "T"))
			part := filepath.Join(mnt, "T", "0")
			want := recstream.StreamBytes(10, mib+mib/2)
			appendFile(t, filepath.Join(part, "current"), want[:mib/2])
			appendFile(t, filepath.Join(part, "current"), want[mib/2:])
			got, segs := readPartition(t, part)
			if !bytes.Equal(got, want) {
				t.Fatalf("partition differs from what was appended at %d", firstDiff(got, want))
			}
			if len(segs) != 2 {
				t.Fatalf("1.5 MiB in two appends with -o segment_size=1MiB: segments %v, want one sealed and current", segs)
			}
			daemonUnmount(t, mnt)
			checkBacking(t, filepath.Join(data, "T", "0"), segs, want)
		})
	}
}

// daemonMount runs a daemonizing segfs invocation, which must exit 0 with the mount already live.
func daemonMount(t *testing.T, mnt string, args ...string) {
	t.Helper()
	t.Cleanup(func() { unmountLeftovers(t, mnt) })
	res := runCmd(t, mountTimeout, nil, binaries.segfs, args...)
	if res.code != 0 {
		t.Fatalf("segfs %q: %v", args, res)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil || st.Type != fuseMagic || !hasFuseEntry(mnt) {
		t.Fatalf("segfs %q returned before the mount was live: statfs %v, type %#x, mounted %v", args, err, st.Type, hasFuseEntry(mnt))
	}
	if n := len(mountEntries(t, mnt)); n != 1 {
		t.Fatalf("%d mounts at %s, want 1", n, mnt)
	}
}

// daemonUnmount runs segfs umount and waits until no segfs process serves mnt any more.
func daemonUnmount(t *testing.T, mnt string) {
	t.Helper()
	if res := runCmd(t, exitTimeout, nil, binaries.segfs, "umount", mnt); res.code != 0 {
		t.Fatalf("segfs umount %s: %v", mnt, res)
	}
	if hasFuseEntry(mnt) {
		t.Fatalf("%s still mounted after segfs umount", mnt)
	}
	deadline := time.Now().Add(exitTimeout)
	for len(daemonPids(mnt)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("segfs daemon(s) %v for %s still running %v after segfs umount", daemonPids(mnt), mnt, exitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// daemonPids returns the pids of segfs processes whose command line names mnt.
func daemonPids(mnt string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if exe, _ := os.Readlink(filepath.Join(filepath.Dir(p), "exe")); exe != binaries.segfs && args[0] != binaries.segfs {
			continue
		}
		for _, a := range args[1:] {
			if a == mnt {
				pids = append(pids, filepath.Base(filepath.Dir(p)))
				break
			}
		}
	}
	return pids
}

// TestSignalUnmount: issue 4 §4.4. SIGTERM and SIGINT unmount gracefully: the daemon exits 0, nothing stays
// mounted, and the data dir holds exactly what was appended (no padding, nothing missing) in every io mode.
func TestSignalUnmount(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		opts string
	}{
		{"SIGTERM-dsync-deferred", syscall.SIGTERM, "io=dsync,persist=deferred"},
		{"SIGINT-direct-inline", syscall.SIGINT, "io=direct,persist=inline"},
		{"SIGTERM-buffered-deferred", syscall.SIGTERM, "io=buffered,persist=deferred"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, mnt := newDirs(t)
			m := mountFS(t, data, mnt, "segment_size=1MiB,"+tc.opts)
			mkdir(t, filepath.Join(mnt, "T"))
			part := filepath.Join(mnt, "T", "0")
			want := recstream.StreamBytes(14, mib+12345)
			// A writer still has current open when the signal comes: the unmount waits for its close (the
			// mount is busy until then), and what it wrote must be on disk when the daemon has exited.
			f, err := os.OpenFile(filepath.Join(part, "current"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range [][]byte{want[:mib-1], want[mib-1:]} {
				if _, err := f.Write(b); err != nil {
					t.Fatal(err)
				}
			}
			_, segs := readPartition(t, part)
			if err := m.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if err := f.Close(); err != nil {
				t.Errorf("close of current after %v: %v", tc.sig, err)
			}
			select {
			case <-m.done:
			case <-time.After(exitTimeout):
				t.Fatalf("daemon still running %v after %v and the last close", exitTimeout, tc.sig)
			}
			if m.err != nil {
				t.Errorf("daemon exited with %v after %v\n%s", m.err, tc.sig, m.Log())
			}
			if hasFuseEntry(mnt) {
				t.Errorf("%s still mounted after %v", mnt, tc.sig)
			}
			checkBacking(t, filepath.Join(data, "T", "0"), segs, want)
		})
	}
}

// TestUmountClearsDeadMount: issue 4 §4.5 from the other side. After kill -9, while a process still holds a
// file open on the dead mount (a server's log descriptor), `segfs umount` must clear the mount: there is no
// daemon to wait for, and a plain unmount would only answer EBUSY.
// TestUmountOfAStoppedDaemon: a daemon that is alive but serves nothing (SIGSTOP) makes every access to
// its mount wait. segfs status, umount and mount say so in one line within seconds instead of waiting
// with it; umount --force clears the mount; the daemon, resumed, syncs and exits, and every byte
// written before the stop is there at the next mount.
func TestUmountOfAStoppedDaemon(t *testing.T) {
	requireRoot(t)
	data, mnt := newDirs(t)
	m := mountFS(t, data, mnt, "")
	mkdir(t, filepath.Join(mnt, "T"))
	want := bytes.Repeat([]byte("acknowledged before the stop\n"), 4096)
	appendFile(t, filepath.Join(mnt, "T", "0", "current"), want)
	pid := m.cmd.Process.Pid
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = m.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	time.Sleep(2 * time.Second) // past the attribute cache, so every access asks the daemon

	stopped := fmt.Sprintf("its daemon (pid %d) is stopped", pid)
	for _, args := range [][]string{{"status", mnt}, {"umount", mnt}, {"mount", "--data", t.TempDir(), mnt}} {
		res := runCmd(t, 30*time.Second, nil, binaries.segfs, args...)
		if res.code == 0 || res.code == -1 {
			t.Fatalf("segfs %s with the daemon stopped: %v", args[0], res)
		}
		msg := strings.TrimSpace(res.stderr)
		if strings.Contains(msg, "\n") {
			t.Errorf("segfs %s: more than one line: %q", args[0], msg)
		}
		if args[0] == "mount" {
			if !strings.Contains(msg, "serves nothing") || !strings.Contains(msg, "umount --force") {
				t.Errorf("segfs mount over the stopped daemon's mount: %q", msg)
			}
			continue
		}
		if !strings.Contains(msg, stopped) || !strings.Contains(msg, fmt.Sprintf("kill -CONT %d", pid)) {
			t.Errorf("segfs %s: %q does not say %q and how to resume it", args[0], msg, stopped)
		}
	}
	if !hasFuseEntry(mnt) {
		t.Fatal("segfs umount without --force removed the mount of a stopped daemon")
	}

	if res := runCmd(t, 30*time.Second, nil, binaries.segfs, "umount", "--force", mnt); res.code != 0 {
		t.Fatalf("segfs umount --force: %v", res)
	}
	if hasFuseEntry(mnt) {
		t.Fatalf("a FUSE mount is still listed at %s after segfs umount --force", mnt)
	}
	if err := m.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	select {
	case <-m.done:
	case <-time.After(exitTimeout):
		t.Fatalf("resumed daemon still running %v after its connection was aborted\n%s", exitTimeout, m.Log())
	}
	if m.err != nil {
		t.Fatalf("resumed daemon exited with %v\n%s", m.err, m.Log())
	}

	m2 := mountFS(t, data, mnt, "")
	got, err := os.ReadFile(filepath.Join(mnt, "T", "0", "current"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("after the forced unmount the partition holds %d bytes, want the %d written before the stop", len(got), len(want))
	}
	m2.Unmount()
}

func TestUmountClearsDeadMount(t *testing.T) {
	requireRoot(t)
	data, mnt := newDirs(t)
	m := mountFS(t, data, mnt, "")
	mkdir(t, filepath.Join(mnt, "T"))
	held, err := os.OpenFile(filepath.Join(mnt, "T", "0", "current"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := os.Stat(mnt); err != nil { // cache the root's attributes, as ls -ld or df would
		t.Fatal(err)
	}
	m.Kill9()
	res := runCmd(t, time.Minute, nil, binaries.segfs, "umount", mnt)
	if res.code != 0 {
		t.Fatalf("segfs umount of a dead mount with a file held open: %v", res)
	}
	if hasFuseEntry(mnt) {
		t.Fatalf("a FUSE mount is still listed at %s after segfs umount", mnt)
	}
	if _, err := held.Write([]byte("x")); err == nil {
		t.Fatalf("write to a descriptor of the cleared mount succeeded")
	}
}
