package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
// daemon is gone is cleared. A mount whose daemon lives but serves nothing is cleared only with force:
// the daemon may just be stopped, and resumed it syncs and exits by itself.
func Umount(mnt string, force bool, log logrus.FieldLogger) error {
	m, ok, err := mountAt(mnt)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s is not mounted", mnt)
	}
	// Connect first: only a connection accepted before the unmount tells us when the daemon exits.
	ctl, dialErr := dialControl(mnt)
	if ctl == nil && isFUSE(m) {
		switch fuseConnState(mnt) {
		case connDead:
			// A plain unmount would say EBUSY while processes hold files there.
			return clearStaleMount(mnt, log)
		case connHung:
			return unmountHung(mnt, dialErr, force, log)
		}
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

// unmountHung handles a mount whose daemon answers neither its control socket nor statfs.
func unmountHung(mnt string, dialErr error, force bool, log logrus.FieldLogger) error {
	who, state := "its daemon", ""
	var silent silentError
	if errors.As(dialErr, &silent) {
		who = fmt.Sprintf("its daemon (pid %d)", silent.pid)
		state = processState(silent.pid)
	}
	if force {
		return clearMount(mnt, fmt.Sprintf("aborted the FUSE connection of %s, which served nothing; "+
			"the daemon syncs and exits if it runs again", strings.TrimPrefix(who, "its ")), log)
	}
	switch state {
	case "stopped":
		return fmt.Errorf("%s: %s is stopped; resume it (kill -CONT %d) and unmount again, "+
			"or segfs umount --force %s aborts its connection", mnt, who, silent.pid, mnt)
	case "exiting":
		return fmt.Errorf("%s: %s is stuck exiting and serves nothing; segfs umount --force %s aborts its connection",
			mnt, who, mnt)
	}
	return fmt.Errorf("%s: %s answers neither its control socket nor the filesystem; "+
		"segfs umount --force %s aborts its connection", mnt, who, mnt)
}

// processState says "stopped" or "exiting" for a process in that state, from /proc/PID/stat.
func processState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name may hold spaces and parentheses; the fields after it are fixed.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return ""
	}
	const pfExiting = 0x4 // PF_EXITING, include/linux/sched.h
	flags, _ := strconv.ParseUint(f[6], 10, 64)
	switch {
	case f[0] == "T" || f[0] == "t":
		return "stopped"
	case f[0] == "Z" || f[0] == "X" || flags&pfExiting != 0:
		return "exiting"
	}
	return ""
}
