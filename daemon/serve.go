package daemon

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"segfs/fusefs"
	"segfs/mountopts"
	"segfs/segments"
)

// Serve mounts cfg in this process and serves it until it is unmounted, by `segfs umount`, umount(8) or a
// signal, then closes the log so every partition is synced and exact on disk before it returns. A daemon's
// parent, waiting on the readiness pipe, learns the outcome of mounting.
func Serve(cfg mountopts.Config, log *logrus.Logger) (err error) {
	ready := readyFromEnv()
	defer func() {
		if err != nil {
			ready.fail(err)
		}
	}()
	if cfg.Debug && !log.IsLevelEnabled(logrus.DebugLevel) {
		log.SetLevel(logrus.DebugLevel)
	}
	// Installed before anything is opened: a signal during startup must still end in a clean close.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	raiseNoFileLimit(log)
	stopProfiles, err := startProfiles(log)
	if err != nil {
		return err
	}
	defer stopProfiles()

	if err := checkMountpoint(cfg.Mountpoint, log); err != nil {
		return err
	}
	if err := checkDataDir(cfg.DataDir, &cfg); err != nil {
		return err
	}
	notifier := fusefs.NewRotateNotifier()
	scfg := cfg.Segments
	scfg.OnRotate = notifier.Func()
	scfg.Logger = log
	store, err := openTier(cfg, log)
	if err != nil {
		return err
	}
	if store != nil {
		defer store.Close() // after the log's Close below: no upload or read needs it then
		scfg.Remote = store
		scfg.RemoteReadOnly = cfg.ReadOnly
	}
	seglog, err := segments.Open(cfg.DataDir, scfg)
	if err != nil {
		return err
	}
	server, err := fusefs.Mount(cfg.Mountpoint, seglog, fusefs.Options{
		AllowOther:         cfg.AllowOther,
		DefaultPermissions: cfg.DefaultPermissions,
		ReadOnly:           cfg.ReadOnly,
		Debug:              cfg.Debug,
		Logger:             log,
		Notifier:           notifier,
	})
	if err != nil {
		if cerr := seglog.Close(); cerr != nil {
			log.WithError(cerr).Error("close log after failed mount")
		}
		return fmt.Errorf("mount %s: %w", cfg.Mountpoint, err)
	}
	ctl, err := startServing(cfg.Mountpoint, log)
	if err != nil {
		if uerr := server.Unmount(); uerr != nil {
			log.WithError(uerr).Error("unmount after failed start")
		}
		if cerr := seglog.Close(); cerr != nil {
			log.WithError(cerr).Error("close log after failed start")
		}
		return err
	}
	log.WithFields(logrus.Fields{
		"mountpoint": cfg.Mountpoint, "data": cfg.DataDir, "options": cfg.Encode(), "pid": os.Getpid(),
	}).Info("daemon ready")
	ready.ready()

	waitUnmounted(server, cfg.Mountpoint, sigs, log)

	closeErr := seglog.Close()
	if ctl != nil {
		ctl.finish(closeErr)
	}
	if closeErr != nil {
		return fmt.Errorf("close log: %w", closeErr)
	}
	log.WithField("mountpoint", cfg.Mountpoint).Info("unmounted; every partition synced")
	return nil
}

// startServing waits until the mount shows in the mount table (what `segfs mount`'s caller and mount(8) look
// at) and opens the control socket `segfs umount` waits on. A control socket that cannot be opened is not
// fatal: umount then still works, without waiting for the exit.
func startServing(mnt string, log logrus.FieldLogger) (*controlServer, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, ok, err := mountAt(mnt)
		if err != nil {
			return nil, err
		}
		if ok && isFUSE(m) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("mount %s: not in the mount table 10s after mounting", mnt)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctl, err := listenControl(mnt, log)
	if err != nil {
		log.WithError(err).Warn("segfs umount will not be able to wait for this daemon to exit")
		return nil, nil
	}
	return ctl, nil
}

// waitUnmounted returns once the kernel has unmounted the filesystem and the server loops ended. A signal
// unmounts; while files are open the unmount is retried every second with a log line. A second signal detaches
// the mount lazily instead: it disappears at once and the daemon exits when the last open file is closed.
func waitUnmounted(server *fuse.Server, mnt string, sigs <-chan os.Signal, log logrus.FieldLogger) {
	done := make(chan struct{})
	go func() {
		server.Wait()
		close(done)
	}()
	var retry <-chan time.Time
	signalled, attempts := false, 0
	tryUnmount := func() {
		if err := server.Unmount(); err != nil {
			attempts++
			if attempts == 1 || attempts%10 == 0 {
				log.WithError(err).WithField("mountpoint", mnt).
					Warn("mountpoint busy (files open?), retrying every second; signal again to detach lazily")
			}
			retry = time.After(time.Second)
		}
	}
	for {
		select {
		case <-done:
			return
		case <-retry:
			retry = nil
			tryUnmount()
		case sig := <-sigs:
			if !signalled {
				signalled = true
				log.WithField("signal", sig.String()).Info("unmounting")
				tryUnmount()
				continue
			}
			log.WithField("signal", sig.String()).Warn("detaching the mount lazily; exiting when the last open file is closed")
			retry = nil
			if err := unmount(mnt, unix.MNT_DETACH); err != nil {
				log.WithError(err).Error("lazy unmount")
			}
		}
	}
}

// raiseNoFileLimit lifts the soft RLIMIT_NOFILE to the hard limit: the daemon's descriptors are a budget the
// whole mount shares, and a login shell's soft limit (often 1024) is far below what the system allows. The Go
// runtime does the same at start; doing it here, logged, keeps it true whatever the runtime version.
func raiseNoFileLimit(log logrus.FieldLogger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.WithError(err).Warn("read the descriptor limit")
		return
	}
	if lim.Cur < lim.Max {
		raised := unix.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &raised); err != nil {
			log.WithError(err).WithField("soft", lim.Cur).Warn("raise the descriptor limit")
			return
		}
		lim = raised
	}
	log.WithField("nofile", lim.Cur).Debug("descriptor limit")
}
