package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"segfs/directio"
	"segfs/mountopts"
)

// checkMountpoint fails with a one-line reason unless mnt is a directory with nothing mounted on it.
// A FUSE mount a killed daemon left is cleared first: mount after a crash must recover unaided.
func checkMountpoint(mnt string, log logrus.FieldLogger) error {
	if err := clearIfStale(mnt, log); err != nil {
		return err
	}
	fi, err := os.Stat(mnt)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mountpoint %s does not exist", mnt)
	case err != nil:
		return fmt.Errorf("mountpoint %s: %w", mnt, unwrapPathError(err))
	case !fi.IsDir():
		return fmt.Errorf("mountpoint %s is not a directory", mnt)
	}
	m, ok, err := mountAt(mnt)
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("mountpoint %s is already mounted (%s from %s)", mnt, m.FSType, m.Source)
	}
	return nil
}

func clearIfStale(mnt string, log logrus.FieldLogger) error {
	m, ok, err := mountAt(mnt)
	if err != nil {
		return err
	}
	if !ok || !isFUSE(m) {
		return nil
	}
	switch fuseConnState(mnt) {
	case connDead:
		return clearStaleMount(mnt, log)
	case connHung:
		return fmt.Errorf("mountpoint %s is mounted by a daemon that serves nothing (stopped, or stuck exiting); "+
			"segfs umount --force %s clears it", mnt, mnt)
	}
	return nil
}

// connState is what a FUSE mount's connection answers.
type connState int

const (
	connLive connState = iota
	connDead           // the daemon is gone
	connHung           // the daemon lives but serves nothing: stopped, or stuck in its exit
)

// hungAfter is how long statfs may take before the daemon counts as serving nothing: a live daemon
// answers it from memory.
const hungAfter = 2 * time.Second

// fuseConnState asks statfs(2), which the kernel never caches: stat(2) is answered from the
// attribute cache even with the daemon gone. A statfs still waiting after hungAfter returns once
// the daemon serves again or its connection is aborted; the CLI exits before either at worst.
func fuseConnState(mnt string) connState {
	res := make(chan error, 1)
	go func() {
		var st unix.Statfs_t
		res <- unix.Statfs(mnt, &st)
	}()
	select {
	case err := <-res:
		if isDeadConn(err) {
			return connDead
		}
		return connLive
	case <-time.After(hungAfter):
		return connHung
	}
}

// isDeadConn: ENOTCONN once the daemon is gone, ECONNABORTED once the connection was aborted.
func isDeadConn(err error) bool {
	return errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED)
}

// clearStaleMount aborts the dead connection, so nothing blocks on it, then detaches the mount. Without
// fusectl the lazy unmount alone still frees the mount point.
func clearStaleMount(mnt string, log logrus.FieldLogger) error {
	return clearMount(mnt, "cleared a stale mount left by a daemon that is gone (transport endpoint is not connected)", log)
}

// clearMount aborts the mount's FUSE connection and detaches the mount; why is logged as a warning.
// Every request waiting on the connection fails with ECONNABORTED instead of waiting on.
func clearMount(mnt, why string, log logrus.FieldLogger) error {
	m, ok, err := mountAt(mnt)
	if err != nil {
		return err
	}
	if !ok || !isFUSE(m) {
		return fmt.Errorf("mountpoint %s: transport endpoint is not connected, but no FUSE mount is there to clear", mnt)
	}
	abort := filepath.Join("/sys/fs/fuse/connections", strconv.Itoa(m.Minor), "abort")
	if err := os.WriteFile(abort, []byte("1"), 0); err != nil {
		log.WithError(err).Debugf("could not abort FUSE connection %d", m.Minor)
	}
	if err := unmount(mnt, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("mountpoint %s: clear mount: %w", mnt, err)
	}
	log.WithFields(logrus.Fields{"mountpoint": mnt, "fstype": m.FSType, "connection": m.Minor}).Warn(why)
	return nil
}

// unmount uses umount2(2), or fusermount3 without the privilege, as libfuse does.
func unmount(mnt string, flags int) error {
	err := unix.Unmount(mnt, flags)
	if err == nil || !(errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
		return err
	}
	args := []string{"-u", "-q"}
	if flags&unix.MNT_DETACH != 0 {
		args = append(args, "-z")
	}
	for _, prog := range []string{"fusermount3", "fusermount"} {
		path, lerr := exec.LookPath(prog)
		if lerr != nil {
			continue
		}
		out, ferr := exec.Command(path, append(args, mnt)...).CombinedOutput()
		if ferr != nil {
			return fmt.Errorf("%s -u %s: %w: %s", prog, mnt, ferr, firstLine(string(out)))
		}
		return nil
	}
	return err
}

// checkDataDir creates dir and proves segfs can create files in it and, unless io=buffered, write
// them with O_DIRECT: else an empty data dir would fail only at the first mkdir.
func checkDataDir(dir string, cfg *mountopts.Config) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("data dir %s: cannot create it: %w", dir, unwrapPathError(err))
		}
		fi, err = os.Stat(dir)
	}
	switch {
	case err != nil:
		return fmt.Errorf("data dir %s: %w", dir, unwrapPathError(err))
	case !fi.IsDir():
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	fd, err := openProbe(dir, unix.O_WRONLY)
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	unix.Close(fd)
	if cfg.Segments.IO == directio.Buffered {
		return nil
	}
	align, err := directio.WriteAlignment(dir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := cfg.CheckBlockSize(align.Offset); err != nil {
		return err
	}
	return probeDirectIO(dir, cfg.Segments.IO, align)
}

// probeDirectIO writes one aligned block with the segments' flags; EINVAL means no O_DIRECT.
func probeDirectIO(dir string, mode directio.Mode, align directio.Alignment) error {
	flags := unix.O_RDWR | unix.O_DIRECT
	if mode == directio.DirectSync {
		flags |= unix.O_DSYNC
	}
	unsupported := func(err error) error {
		return fmt.Errorf("data dir %s: %w (%w); mount with -o io=buffered on this filesystem",
			dir, directio.ErrDirectIOUnsupported, err)
	}
	fd, err := openProbe(dir, flags)
	if errors.Is(err, unix.EINVAL) {
		return unsupported(err)
	}
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	defer unix.Close(fd)
	size := max(align.Offset, align.Memory, 512)
	buf := directio.AlignedAlloc(size, max(align.Memory, 512))
	if _, err := unix.Pwrite(fd, buf, 0); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return unsupported(err)
		}
		return fmt.Errorf("data dir %s: write probe: %w", dir, err)
	}
	return nil
}

// openProbe uses O_TMPFILE, so a crash leaves no probe file among the topics; without it, a named
// file is unlinked at once.
func openProbe(dir string, flags int) (int, error) {
	fd, err := unix.Open(dir, flags|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err == nil || !(errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR)) {
		return fd, err
	}
	name := filepath.Join(dir, ".segfs-probe-"+strconv.Itoa(os.Getpid()))
	fd, err = unix.Open(name, flags|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, err
	}
	unix.Unlink(name)
	return fd, nil
}

// unwrapPathError drops a *PathError whose op and path the caller already said.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
