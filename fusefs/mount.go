package fusefs

import (
	"fmt"
	"io"
	"log"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"segfs/segments"
)

// Options configures Mount.
type Options struct {
	AllowOther, DefaultPermissions, ReadOnly, Debug bool
	// Logger receives mount events, refusals (debug) and failures; nil means logrus.StandardLogger().
	Logger logrus.FieldLogger
	// Notifier, whose Func is the log's OnRotate, invalidates the dentry of `current` on rotation.
	Notifier *RotateNotifier
	// Stats, if set, renders MNT/.stats for each open.
	Stats func() ([]byte, error)
	// WrapFS, if set, wraps the node tree before it is served.
	WrapFS func(fuse.RawFileSystem) fuse.RawFileSystem
	// SealedRead, if set, is called for each READ of a sealed segment this process serves.
	SealedRead func()
}

const (
	// maxWrite is the kernel's max_pages limit: a write() is one atomic append only if it fits one WRITE.
	maxWrite = 1 << 20
	// dirTimeout is long: topics and partitions change only through this mount's mkdir/rmdir.
	dirTimeout = time.Hour
	// dirAttrTimeout is short: rotation and retention change a directory's mtime behind the kernel.
	dirAttrTimeout = time.Second
	sealedTimeout  = time.Hour // sealed segments are immutable
	// blockSize is st_blksize: stdio buffers that much, so lines reach the log soon.
	blockSize = 4096
)

// mountState is shared by every node of one mount.
type mountState struct {
	log      *segments.Log
	logger   logrus.FieldLogger
	readOnly bool
	uid, gid uint32
	started  time.Time // directory times when the backing directory cannot be read
	// passthrough is whether the kernel offered it; go-fuse falls back to FOPEN_KEEP_CACHE by itself.
	passthrough      atomic.Bool
	sealedReads      atomic.Int64
	onSealedRead     func()
	stats            func() ([]byte, error)
	passthroughOpens passthroughOpens
	// appendsDurable (persist=sync) makes FSYNC and FLUSH of `current` answer ENOSYS, counted in refused.
	appendsDurable bool
	refused        atomic.Int64
	// nextPartition feeds segment generations, so a reused backing inode never finds a stale node.
	nextPartition atomic.Uint64
	readers       openReaders
	stale         *staleEntries
}

// Mount mounts log at mountpoint and returns once the mount is live. The caller owns the server:
// server.Wait() blocks until unmount, server.Unmount() unmounts.
func Mount(mountpoint string, segLog *segments.Log, opts Options) (*fuse.Server, error) {
	server, _, err := mount(mountpoint, segLog, opts)
	return server, err
}

// mount also returns the state, for tests.
func mount(mountpoint string, segLog *segments.Log, opts Options) (*fuse.Server, *mountState, error) {
	logger := opts.Logger
	if logger == nil {
		logger = logrus.StandardLogger()
	}
	ms := &mountState{
		log:      segLog,
		logger:   logger.WithField("mountpoint", mountpoint),
		readOnly: opts.ReadOnly,
		uid:      uint32(os.Getuid()),
		gid:      uint32(os.Getgid()),
		started:  time.Now(),
		stale:    newStaleEntries(),
		stats:    opts.Stats,
		// The log's configuration, not a mount option: ENOSYS is safe only if every append is durable.
		appendsDurable: segLog.Config().Persist == segments.Sync,
	}
	ms.onSealedRead = opts.SealedRead
	if ms.onSealedRead == nil {
		ms.onSealedRead = func() {}
	}
	root := newRootNode(ms)
	fsOpts := &fs.Options{MountOptions: mountOptions(opts, logger)}
	// Timeouts stay nil: go-fuse would replace the zero timeouts of `current` with its defaults.

	// fuse.NewServer completes INIT before serving, so passthrough is known before the first OPEN.
	var raw fuse.RawFileSystem = rawFS{fs.NewNodeFS(root, fsOpts), ms}
	if opts.WrapFS != nil {
		raw = opts.WrapFS(raw)
	}
	server, err := fuse.NewServer(raw, mountpoint, &fsOpts.MountOptions)
	if err != nil {
		ms.stale.close()
		return nil, nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	ms.passthrough.Store(server.KernelSettings().Flags64()&fuse.CAP_PASSTHROUGH != 0)
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		_ = server.Unmount()
		server.Wait()
		ms.stale.close()
		return nil, nil, fmt.Errorf("mount %s: wait for mount: %w", mountpoint, err)
	}
	raiseReadahead(mountpoint, maxWrite, ms.logger)
	if opts.Notifier != nil {
		if err := opts.Notifier.attach(root.EmbeddedInode(), ms.logger); err != nil {
			_ = server.Unmount()
			server.Wait()
			ms.stale.close()
			return nil, nil, fmt.Errorf("mount %s: %w", mountpoint, err)
		}
	}
	// Notification workers stop with the server: the kernel is gone then.
	go func() {
		server.Wait()
		ms.stale.close()
		if opts.Notifier != nil {
			opts.Notifier.detach()
		}
	}()
	ms.logger.WithFields(logrus.Fields{
		"data":        segLog.Dir(),
		"passthrough": ms.passthrough.Load(),
		"read_only":   opts.ReadOnly,
		"sync":        ms.appendsDurable,
	}).Info("mounted")
	return server, ms, nil
}

func mountOptions(opts Options, logger logrus.FieldLogger) fuse.MountOptions {
	mo := fuse.MountOptions{
		FsName:       "segfs",
		Name:         "segfs",
		MaxWrite:     maxWrite,
		MaxReadAhead: maxWrite,
		DirectMount:  true,
		AllowOther:   opts.AllowOther,
		Debug:        opts.Debug,
		// The kernel passes O_TRUNC to OPEN, so `> current` is refused at open, not by a later SETATTR.
		ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
	}
	if opts.DefaultPermissions {
		mo.Options = append(mo.Options, "default_permissions")
	} else if opts.AllowOther {
		logger.Warn("allow_other without default_permissions: every user can append to and delete topics")
	}
	if opts.ReadOnly {
		mo.Options = append(mo.Options, "ro")
		mo.DirectMountFlags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_RDONLY
	}
	if opts.Debug {
		mo.Logger = log.New(debugWriter(logger), "go-fuse: ", 0)
	}
	return mo
}

// debugWriter routes go-fuse's request trace to the logger at debug level.
func debugWriter(logger logrus.FieldLogger) io.Writer {
	if w, ok := logger.(interface {
		WriterLevel(logrus.Level) *io.PipeWriter
	}); ok {
		return w.WriterLevel(logrus.DebugLevel)
	}
	return os.Stderr
}
