package daemon

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"segfs/mountopts"
)

// Logging is how the CLI configured logging; a daemon started by Start inherits it.
type Logging struct {
	Level, Format string
	File          string // empty: DefaultLogFile(data dir)
}

// Start mounts cfg through a detached daemon and returns once the mount is live, or with its one-line reason.
func Start(cfg mountopts.Config, lg Logging, log logrus.FieldLogger) error {
	// The daemon checks again; checking here answers common mistakes without a process and creates the
	// data dir the default log file sits next to.
	if err := checkMountpoint(cfg.Mountpoint, log); err != nil {
		return err
	}
	if err := checkDataDir(cfg.DataDir, &cfg); err != nil {
		return err
	}
	logFile := lg.File
	if logFile == "" {
		logFile = DefaultLogFile(cfg.DataDir)
	}
	logFile, err := filepath.Abs(logFile)
	if err != nil {
		return err
	}
	return startDaemon(Spec{
		LogLevel: lg.Level, LogFormat: lg.Format, LogFile: logFile,
		DataDir: cfg.DataDir, Mountpoint: cfg.Mountpoint, Options: cfg.Encode(),
	})
}

// Umount unmounts mnt (resolved) and returns once its daemon has synced and exited. A mount whose
// daemon is gone is cleared.
func Umount(mnt string, log logrus.FieldLogger) error {
	m, ok, err := mountAt(mnt)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s is not mounted", mnt)
	}
	// Connect first: only a connection accepted before the unmount tells us when the daemon exits.
	ctl, dialErr := dialControl(mnt)
	if ctl == nil && isFUSE(m) && fuseConnDead(mnt) {
		// A plain unmount would say EBUSY while processes hold files there.
		return clearStaleMount(mnt, log)
	}
	if ctl == nil && m.FSType != "fuse.segfs" {
		return fmt.Errorf("%s is not a segfs mount (%s from %s)", mnt, m.FSType, m.Source)
	}
	if errors.As(dialErr, new(refusedError)) {
		return fmt.Errorf("%s: %w", mnt, dialErr)
	}
	if ctl == nil {
		// A live daemon that does not answer: unmounting could not wait for the sync.
		return fmt.Errorf("%s: the daemon serving it did not answer on its control socket (%v); "+
			"unmount with umount(8) or fusermount3 -u, which do not wait for the sync", mnt, dialErr)
	}
	if err := unmount(mnt, 0); err != nil {
		ctl.conn.Close()
		switch {
		case errors.Is(err, unix.EBUSY):
			return fmt.Errorf("%s is busy: a process has a file or its working directory in it", mnt)
		case isDeadConn(err):
			return clearStaleMount(mnt, log)
		}
		return fmt.Errorf("unmount %s: %w", mnt, err)
	}
	log.WithField("pid", ctl.pid).Debug("waiting for the daemon to sync and exit")
	return ctl.waitExit()
}
