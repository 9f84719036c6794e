package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// binaries holds the paths of the programs TestMain builds once for the whole run. It is written only by
// TestMain, before any test starts.
var binaries struct {
	segfs    string
	appender string
}

const (
	mountTimeout = 30 * time.Second
	exitTimeout  = 60 * time.Second
	fuseMagic    = 0x65735546
)

func TestMain(m *testing.M) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		// go test shows a passing package's output only with -v; CI that must not skip sets SEGFS_REQUIRE_FUSE=1.
		if os.Getenv("SEGFS_REQUIRE_FUSE") != "" {
			fmt.Fprintf(os.Stderr, "FAIL segfs integration tests: /dev/fuse is absent (%v) and SEGFS_REQUIRE_FUSE is set\n", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "SKIP segfs integration tests: /dev/fuse is absent (%v); they need a kernel with FUSE\n", err)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "segfs-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		os.Exit(1)
	}
	binaries.segfs = filepath.Join(dir, "segfs")
	binaries.appender = filepath.Join(dir, "appender")
	// SEGFS_DAEMON_RACE=1 builds the daemon with -race: the suite's real workloads then hunt data races in it,
	// which exits 66 and fails the test that unmounts it.
	daemonFlags := []string{"build"}
	if os.Getenv("SEGFS_DAEMON_RACE") != "" {
		daemonFlags = append(daemonFlags, "-race")
	}
	for _, b := range []struct {
		out, pkg string
		args     []string
	}{{binaries.segfs, "..", daemonFlags}, {binaries.appender, "./internal/appender", []string{"build"}}} {
		if out, err := exec.Command("go", append(b.args, "-o", b.out, b.pkg)...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: go build %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fsMount is one segfs daemon started with --foreground as a child of the test.
type fsMount struct {
	t       *testing.T
	Dir     string // mount point
	Data    string // data dir
	Opts    string // -o value
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited; err then holds cmd.Wait's result
	err     error
}

// mountFS mounts segfs at mnt with data dir data through `segfs mount --foreground` and waits until the mount
// answers. It fails the test if the daemon exits first. A cleanup unmounts it (and never leaves a mount behind).
func mountFS(t *testing.T, data, mnt, opts string) *fsMount {
	t.Helper()
	return mountFSUnder(t, nil, data, mnt, opts)
}

// mountFSUnder is mountFS with the daemon started through wrapper, a program that execs its arguments
// (prlimit --nofile=64 --), so the daemon keeps the pid the harness signals.
func mountFSUnder(t *testing.T, wrapper []string, data, mnt, opts string) *fsMount {
	t.Helper()
	m := &fsMount{t: t, Dir: mnt, Data: data, Opts: opts, done: make(chan struct{})}
	logf, err := os.CreateTemp(t.TempDir(), "segfs-daemon-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	m.logPath = logf.Name()
	args := []string{"mount", "--foreground", "--data", data}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	args = append(args, mnt)
	m.cmd = segfsCommandUnder(wrapper, args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	// If the test binary dies (timeout panic), the daemon gets SIGTERM and unmounts itself.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	// The mount answers statfs before the daemon is ready: go-fuse still opens and closes a file in it
	// (its epoll probe). A kill -9 inside that window leaves the daemon flushing its own file on exit,
	// unkillable, so tests act only once the daemon says ready, as `segfs mount` itself waits.
	readyR, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer readyR.Close()
	m.cmd.ExtraFiles = []*os.File{readyW}
	m.cmd.Env = append(m.cmd.Env, "SEGFS_READY_FD=3")
	err = m.cmd.Start()
	readyW.Close()
	if err != nil {
		t.Fatalf("start %v: %v", m.cmd.Args, err)
	}
	go func() { m.err = m.cmd.Wait(); close(m.done) }()
	t.Cleanup(m.cleanup)
	if err := waitLive(mnt, m.done); err != nil {
		t.Fatalf("%v: %v\n%s", m.cmd.Args, err, m.Log())
	}
	if err := waitReady(readyR); err != nil {
		t.Fatalf("%v: %v\n%s", m.cmd.Args, err, m.Log())
	}
	if n := len(mountEntries(t, mnt)); n != 1 {
		t.Fatalf("%d mounts stacked at %s after mount, want 1 (a stale one was not cleared?)\n%s", n, mnt, m.Log())
	}
	return m
}

func segfsCommandUnder(wrapper []string, args ...string) *exec.Cmd {
	if lvl := os.Getenv("SEGFS_LOG_LEVEL"); lvl != "" {
		args = append([]string{"--log-level", lvl}, args...)
	}
	argv := append(append(append([]string(nil), wrapper...), binaries.segfs), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

// waitReady reads the daemon's report on its ready pipe: "ready", or "error <reason>".
func waitReady(r *os.File) error {
	if err := r.SetReadDeadline(time.Now().Add(mountTimeout)); err != nil {
		return err
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	switch {
	case strings.TrimSpace(line) == "ready":
		return nil
	case line != "":
		return fmt.Errorf("daemon reported: %s", strings.TrimSpace(line))
	case errors.Is(err, io.EOF):
		return errors.New("daemon closed its ready pipe without reporting ready")
	}
	return fmt.Errorf("waiting for the daemon to report ready: %w", err)
}

// waitLive polls until a FUSE file system answers statfs at mnt. exited (may be nil) aborts the wait.
func waitLive(mnt string, exited <-chan struct{}) error {
	deadline := time.Now().Add(mountTimeout)
	for {
		var st unix.Statfs_t
		err := unix.Statfs(mnt, &st)
		if err == nil && st.Type == fuseMagic && hasFuseEntry(mnt) {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("daemon exited before the mount was live (last statfs: %v)", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mount not live after %v (last statfs: %v, type %#x)", mountTimeout, err, st.Type)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns the daemon's combined stdout and stderr so far.
func (m *fsMount) Log() string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return fmt.Sprintf("(daemon log unreadable: %v)", err)
	}
	const max = 64 << 10
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return fmt.Sprintf("--- daemon log %s ---\n%s--- end of daemon log ---", m.logPath, b)
}

func (m *fsMount) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// Unmount runs `segfs umount`, waits for the daemon to exit and fails the test unless all of it went cleanly:
// exit status 0 of both, and no mount left at the mount point.
func (m *fsMount) Unmount() {
	m.t.Helper()
	res := runCmd(m.t, exitTimeout, nil, binaries.segfs, "umount", m.Dir)
	if res.code != 0 {
		m.t.Errorf("segfs umount %s: exit %d: %s\n%s", m.Dir, res.code, res.stderr, m.Log())
		return
	}
	select {
	case <-m.done:
	case <-time.After(exitTimeout):
		m.t.Errorf("daemon still running %v after segfs umount\n%s", exitTimeout, m.Log())
		return
	}
	if m.err != nil {
		m.t.Errorf("daemon exited with %v after segfs umount\n%s", m.err, m.Log())
	}
	if hasFuseEntry(m.Dir) {
		m.t.Errorf("a mount is still listed at %s after segfs umount", m.Dir)
	}
}

// Kill9 SIGKILLs the daemon and waits for it to die, leaving a stale mount behind.
func (m *fsMount) Kill9() {
	m.t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil && !m.exited() {
		m.t.Fatalf("kill -9 daemon: %v", err)
	}
	select {
	case <-m.done:
	case <-time.After(exitTimeout):
		m.t.Fatalf("daemon did not die after SIGKILL")
	}
}

// cleanup makes sure nothing is left mounted or running: segfs umount, then SIGTERM, then SIGKILL and a lazy
// unmount as the last resort. A killed daemon whose mount was taken over by a later mountFS is left alone.
func (m *fsMount) cleanup() {
	defer func() {
		// Also for daemons that were SIGKILLed, whose exit status cannot report a race.
		if b, err := os.ReadFile(m.logPath); err == nil && strings.Contains(string(b), "WARNING: DATA RACE") {
			m.t.Errorf("the daemon for %s reported a data race\n%s", m.Dir, m.Log())
		}
	}()
	if m.t.Failed() {
		m.t.Log(m.Log())
	}
	if !m.exited() {
		if hasFuseEntry(m.Dir) {
			if res := runCmd(m.t, exitTimeout, nil, binaries.segfs, "umount", m.Dir); res.code != 0 {
				m.t.Errorf("segfs umount %s at cleanup: exit %d: %s", m.Dir, res.code, res.stderr)
			}
		}
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			select {
			case <-m.done:
			case <-time.After(10 * time.Second):
				m.t.Errorf("daemon for %s still running; sending %v", m.Dir, sig)
				_ = m.cmd.Process.Signal(sig)
			}
		}
		<-m.done
	}
	var st unix.Statfs_t
	if err := unix.Statfs(m.Dir, &st); errors.Is(err, unix.ENOTCONN) {
		// Stale mount of a daemon that is gone: nobody else will clear it.
		if err := unix.Unmount(m.Dir, unix.MNT_DETACH); err != nil {
			m.t.Errorf("lazy unmount of stale %s: %v", m.Dir, err)
		}
	}
}

// unmountLeftovers lazily unmounts whatever is still mounted at dir (used for mounts not owned by an fsMount,
// such as daemonized ones).
func unmountLeftovers(t *testing.T, dir string) {
	for i := 0; hasFuseEntry(dir) && i < 3; i++ {
		if i == 0 {
			_ = runCmd(t, exitTimeout, nil, binaries.segfs, "umount", dir)
			continue
		}
		t.Errorf("lazy unmount of leftover mount at %s", dir)
		_ = unix.Unmount(dir, unix.MNT_DETACH)
	}
}

// mountEntries lists the entries of /proc/self/mountinfo whose mount point is dir, in mount order.
func mountEntries(t *testing.T, dir string) []*mountinfo.Info {
	t.Helper()
	es, err := readMountEntries(dir)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func readMountEntries(dir string) ([]*mountinfo.Info, error) {
	return mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) { return m.Mountpoint != dir, false })
}

func hasFuseEntry(dir string) bool {
	es, err := readMountEntries(dir)
	if err != nil {
		return false
	}
	for _, e := range es {
		if e.FSType == "fuse" || strings.HasPrefix(e.FSType, "fuse.") {
			return true
		}
	}
	return false
}

// requireRoot skips tests that need to mount other file systems.
func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a loop device or tmpfs")
	}
}

// newDirs returns a fresh data dir and mount point.
func newDirs(t *testing.T) (data, mnt string) {
	base := t.TempDir()
	data, mnt = filepath.Join(base, "data"), filepath.Join(base, "mnt")
	for _, d := range []string{data, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return data, mnt
}
