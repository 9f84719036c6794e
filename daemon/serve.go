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
	"segfs/internal/logfields"
	"segfs/metrics"
	"segfs/mountopts"
	"segfs/segments"
)

// Serve mounts cfg in this process and serves it until unmounted (`segfs umount`, umount(8) or a
// signal), then closes the log so every partition is synced before it returns.
func Serve(cfg mountopts.Config, log *logrus.Logger, build Build) (err error) {
	ready := readyFromEnv()
	defer func() {
		if err != nil {
			ready.fail(err)
		}
	}()
	if cfg.Debug && !log.IsLevelEnabled(logrus.DebugLevel) {
		log.SetLevel(logrus.DebugLevel)
	}
	// Before anything is opened: a signal during startup must still end in a clean close.
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
	info := &mountInfo{mnt: cfg.Mountpoint, data: cfg.DataDir, options: cfg.Encode(), build: build, started: time.Now()}
	obs, endpoint, err := newMetrics(cfg, build)
	if err != nil {
		return err
	}
	if endpoint != nil {
		info.metricsAddr = endpoint.Addr()
	}
	defer func() {
		if endpoint != nil {
			if cerr := endpoint.Close(); cerr != nil {
				logfields.Err(log.WithField("op", "metrics"), cerr).Warn("close the metrics endpoint")
			}
		}
	}()
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
	fopts := fusefs.Options{
		AllowOther:         cfg.AllowOther,
		DefaultPermissions: cfg.DefaultPermissions,
		ReadOnly:           cfg.ReadOnly,
		Debug:              cfg.Debug,
		Logger:             log,
		Notifier:           notifier,
	}
	if obs != nil {
		scfg.Observer = obs.Observer()
		fopts.Stats, fopts.WrapFS, fopts.SealedRead = obs.Exposition, obs.WrapFUSE, obs.SealedRead
		if store != nil {
			if err := obs.AddTierCache(store.Reads); err != nil {
				return err
			}
		}
	}
	seglog, err := segments.Open(cfg.DataDir, scfg)
	if err != nil {
		return err
	}
	if obs != nil {
		if err := obs.AddLog(seglog); err != nil {
			_ = seglog.Close()
			return err
		}
	}
	server, err := fusefs.Mount(cfg.Mountpoint, seglog, fopts)
	if err != nil {
		if cerr := seglog.Close(); cerr != nil {
			logfields.Err(log.WithField("op", "mount"), cerr).Error("close log after failed mount")
		}
		return fmt.Errorf("mount %s: %w", cfg.Mountpoint, err)
	}
	ctl, err := startServing(cfg.Mountpoint, func() *Status { return info.status(seglog) }, log)
	if err != nil {
		if uerr := server.Unmount(); uerr != nil {
			logfields.Err(log.WithField("op", "mount"), uerr).Error("unmount after failed start")
		}
		if cerr := seglog.Close(); cerr != nil {
			logfields.Err(log.WithField("op", "mount"), cerr).Error("close log after failed start")
		}
		return err
	}
	if endpoint != nil {
		endpoint.Serve(obs, log)
		log.WithField("address", "http://"+endpoint.Addr()+"/metrics").Info("serving metrics")
	}
	log.WithFields(logrus.Fields{
		"mountpoint": cfg.Mountpoint, "data": cfg.DataDir, "options": cfg.Encode(), "pid": os.Getpid(),
		"max_open_files": seglog.Config().MaxOpenFiles,
		"version":        build.Version,
	}).Info("daemon ready")
	ready.ready()

	waitUnmounted(server, cfg.Mountpoint, sigs, log)

	if endpoint != nil {
		// Before the log closes: a scrape would only see partitions closing.
		if err := endpoint.Close(); err != nil {
			logfields.Err(log.WithField("op", "metrics"), err).Warn("close the metrics endpoint")
		}
		endpoint = nil
	}
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

// startServing waits until the mount is in the mount table and opens the control socket. Failing
// to open it is not fatal: umount then works without waiting for the exit.
func startServing(mnt string, status func() *Status, log logrus.FieldLogger) (*controlServer, error) {
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
	ctl, err := listenControl(mnt, status, log)
	if err != nil {
		logfields.Err(log.WithField("op", "control"), err).Warn("segfs umount will not be able to wait for this daemon to exit")
		return nil, nil
	}
	return ctl, nil
}

// waitUnmounted returns once the kernel unmounted and the server ended. A signal unmounts, retried
// each second while files are open; a second signal detaches lazily and the daemon exits at the last close.
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
				logfields.Err(log.WithFields(logrus.Fields{"op": "unmount", "mountpoint": mnt}), err).
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
			log.WithFields(logrus.Fields{"op": "unmount", "signal": sig.String()}).Warn("detaching the mount lazily; exiting when the last open file is closed")
			retry = nil
			if err := unmount(mnt, unix.MNT_DETACH); err != nil {
				logfields.Err(log.WithField("op", "unmount"), err).Error("lazy unmount")
			}
		}
	}
}

// raiseNoFileLimit lifts the soft RLIMIT_NOFILE (often 1024) to the hard limit: the whole mount shares
// it. The Go runtime does too; doing it here, logged, holds for any runtime version.
func raiseNoFileLimit(log logrus.FieldLogger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		logfields.Err(log.WithField("op", "getrlimit"), err).Warn("read the descriptor limit")
		return
	}
	if lim.Cur < lim.Max {
		raised := unix.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &raised); err != nil {
			logfields.Err(log.WithFields(logrus.Fields{"op": "setrlimit", "soft": lim.Cur}), err).Warn("raise the descriptor limit")
			return
		}
		lim = raised
	}
	log.WithField("nofile", lim.Cur).Debug("descriptor limit")
}

// newMetrics binds metrics=ADDR before anything is mounted, so a taken address fails the mount.
func newMetrics(cfg mountopts.Config, build Build) (*metrics.Metrics, *metrics.Server, error) {
	if cfg.Metrics == "off" {
		return nil, nil, nil
	}
	detail, err := metrics.ParseDetail(cfg.MetricsDetail)
	if err != nil {
		return nil, nil, err
	}
	obs, err := metrics.New(metrics.Options{
		Detail: detail,
		Build:  metrics.Build(build),
		// The log's own budget (max_open_files) joins when the log is open (AddLog).
		Descriptors: []metrics.Descriptors{metrics.ProcessDescriptors()},
	})
	if err != nil || cfg.Metrics == "" {
		return obs, nil, err
	}
	endpoint, err := metrics.Listen(cfg.Metrics)
	if err != nil {
		return nil, nil, err
	}
	return obs, endpoint, nil
}
