package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
)

// How long a mount may take to appear, and an unmount (which syncs every partition) to finish.
const (
	mountTimeout   = 30 * time.Second
	unmountTimeout = 3 * time.Minute
)

// mounted is a `segfs mount --foreground` child process serving one mode's column.
type mounted struct {
	cmd    *exec.Cmd
	mnt    string
	output *tailBuffer
	exited chan struct{} // closed when the child exits; cmd.ProcessState is then set
	err    error         // cmd.Wait's result, valid once exited is closed
}

// mountSegfs runs the segfs binary in the foreground on mnt and returns once the kernel lists the mount.
// Running the real CLI, rather than calling fusefs in-process, benchmarks exactly what users run and keeps
// the FUSE server's goroutines off the bench's own scheduler. env is added to the daemon's environment
// (bench-limits uses it to ask for profiles).
func mountSegfs(ctx context.Context, binary, dataDir, mnt, opts string, env ...string) (*mounted, error) {
	m := &mounted{mnt: mnt, output: &tailBuffer{max: 8 << 10}, exited: make(chan struct{})}
	m.cmd = exec.Command(binary, "mount", "--foreground", "--data", dataDir, "-o", opts, mnt)
	m.cmd.Stdout, m.cmd.Stderr = m.output, m.output
	if len(env) > 0 {
		m.cmd.Env = append(os.Environ(), env...)
	}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s mount: %w", binary, err)
	}
	go func() { m.err = m.cmd.Wait(); close(m.exited) }()
	deadline := time.Now().Add(mountTimeout)
	for {
		ok, err := fuseMounted(mnt)
		if err != nil {
			m.kill()
			return nil, err
		}
		if ok {
			return m, nil
		}
		select {
		case <-m.exited:
			return nil, fmt.Errorf("segfs mount -o %s %s exited before the mount appeared (%v): %s", opts, mnt, m.err, m.output)
		case <-ctx.Done():
			m.kill()
			return nil, context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.kill()
			return nil, fmt.Errorf("segfs mount -o %s %s: not mounted after %s: %s", opts, mnt, mountTimeout, m.output)
		}
	}
}

// unmount asks the daemon to unmount with SIGTERM (the graceful path that syncs every partition) and waits.
// A daemon that died during the run or exits with an error fails the column: its numbers are not trustworthy.
func (m *mounted) unmount() error {
	select {
	case <-m.exited:
		lazyUnmount(m.mnt)
		return fmt.Errorf("segfs daemon for %s died during the run (%v): %s", m.mnt, m.err, m.output)
	default:
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal segfs daemon: %w", err)
	}
	select {
	case <-m.exited:
	case <-time.After(unmountTimeout):
		m.kill()
		return fmt.Errorf("segfs daemon for %s did not exit within %s of SIGTERM: %s", m.mnt, unmountTimeout, m.output)
	}
	if still, _ := fuseMounted(m.mnt); still {
		lazyUnmount(m.mnt)
		return fmt.Errorf("segfs daemon exited but %s is still mounted: %s", m.mnt, m.output)
	}
	if m.err != nil {
		return fmt.Errorf("segfs daemon for %s exited with %v: %s", m.mnt, m.err, m.output)
	}
	return nil
}

// kill is the last resort for a daemon that will not start or stop; the mount point is detached lazily so
// the temp dir can be removed.
func (m *mounted) kill() {
	_ = m.cmd.Process.Kill()
	<-m.exited
	lazyUnmount(m.mnt)
}

func lazyUnmount(mnt string) {
	if ok, _ := fuseMounted(mnt); ok {
		_ = exec.Command("fusermount3", "-u", "-z", mnt).Run()
	}
}

// fuseMounted reports whether the mount table lists a FUSE filesystem (fstype fuse or fuse.*, as
// fuse.segfs) mounted exactly at mnt.
func fuseMounted(mnt string) (bool, error) {
	want := filepath.Clean(mnt)
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.Mountpoint != want || (m.FSType != "fuse" && !strings.HasPrefix(m.FSType, "fuse.")), false
	})
	if err != nil {
		return false, fmt.Errorf("read mount table: %w", err)
	}
	return len(mounts) > 0, nil
}

// tailBuffer keeps the last max bytes of a child's output for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "(no output)"
	}
	return s
}
