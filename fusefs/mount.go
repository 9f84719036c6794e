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
	// Logger receives mount events, refused operations (debug) and failures; nil means logrus.StandardLogger().
	Logger logrus.FieldLogger
	// Notifier, when its Func was passed as the log's segments.Config.OnRotate, lets rotations invalidate
	// the kernel's dentry for `current` right away. Without it `current` still has a zero entry timeout.
	Notifier *RotateNotifier
	// Stats, if set, is the content of MNT/.stats, rendered afresh for each open (see statsNode).
	Stats func() ([]byte, error)
	// WrapFS, if set, wraps the node tree before it is served, e.g. to count and time every request.
	WrapFS func(fuse.RawFileSystem) fuse.RawFileSystem
	// SealedRead, if set, is called for each READ of a sealed segment this process serves: none while
	// FUSE passthrough works, since the kernel then reads the backing file itself.
	SealedRead func()
}

const (
	// maxWrite bounds one FUSE WRITE (256 pages, the kernel's max_pages limit). A write() lands as one
	// atomic append only while the kernel fits it into one request: up to 255 pages for a buffer that
	// does not start on a page boundary.
	maxWrite = 1 << 20
	// dirTimeout: topics and partitions change only through this mount, whose mkdir/rmdir replies keep
	// the kernel's dentries right, so the kernel may cache them for long.
	dirTimeout = time.Hour
	// dirAttrTimeout: a directory's mtime also changes behind the kernel's back, when a rotation adds a
	// segment or retention purges one.
	dirAttrTimeout = time.Second
	// sealedTimeout: sealed segments are immutable; only retention or unlink removes them.
	sealedTimeout = time.Hour
	// blockSize is st_blksize: stdio sizes its buffers from it, and a log writer should not sit on
	// a megabyte of lines before they reach the partition.
	blockSize = 4096
)

// mountState is the state shared by every node of one mount.
type mountState struct {
	log      *segments.Log
	logger   logrus.FieldLogger
	readOnly bool
	uid, gid uint32
	started  time.Time // directories' times when their backing directory cannot be read
	// passthrough is whether the kernel offered FUSE passthrough; go-fuse still falls back to
	// FOPEN_KEEP_CACHE by itself when registering a backing file fails (not root, old kernel).
	passthrough atomic.Bool
	// sealedReads counts READs of sealed segments this process served: none while passthrough works.
	sealedReads  atomic.Int64
	onSealedRead func() // Options.SealedRead, or a no-op
	stats        func() ([]byte, error)
	// passthroughOpens closes the descriptors that only served to register passthrough backing files.
	passthroughOpens passthroughOpens
	// appendsDurable (persist=sync): every acknowledged write is durable, so FSYNC and FLUSH of
	// `current` are answered ENOSYS (see currentHandle.Fsync); refused counts those answers.
	appendsDurable bool
	refused        atomic.Int64
	// nextPartition numbers partition nodes; it feeds the generation of segment nodes so a reused
	// backing inode number never resolves to a stale node of a deleted or purged segment.
	nextPartition atomic.Uint64
	// readers keeps open readers of `current` reading after rmdir.
	readers openReaders
	stale   *staleEntries
}

// Mount mounts log at mountpoint and returns once the mount is live. The caller owns the server:
// server.Wait() blocks until unmount, server.Unmount() unmounts.
func Mount(mountpoint string, segLog *segments.Log, opts Options) (*fuse.Server, error) {
	server, _, err := mount(mountpoint, segLog, opts)
	return server, err
}

// mount is Mount that also returns the shared state, which the package's tests inspect.
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
		// The log's own configuration, not a mount option: ENOSYS is safe only if the log really
		// makes every append durable.
		appendsDurable: segLog.Config().Persist == segments.Sync,
	}
	ms.onSealedRead = opts.SealedRead
	if ms.onSealedRead == nil {
		ms.onSealedRead = func() {}
	}
	root := newRootNode(ms)
	fsOpts := &fs.Options{MountOptions: mountOptions(opts, logger)}
	// Entry/attr timeouts stay nil on purpose: go-fuse would replace our zero timeouts for `current`
	// with the defaults. Every reply sets its own timeouts instead.

	// fuse.NewServer mounts and completes INIT before any request is served, so the kernel's
	// capabilities are known before the first OPEN.
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
	// The workers that send notifications stop once the server has: after that the kernel is gone.
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
		// With atomic O_TRUNC the kernel passes O_TRUNC to OPEN, so `> current` is refused at open
		// instead of by a separate truncating SETATTR after a successful open.
		ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
	}
	if opts.DefaultPermissions {
		mo.Options = append(mo.Options, "default_permissions")
	} else if opts.AllowOther {
		// segfs checks no modes itself: without default_permissions every user could append.
		logger.Warn("allow_other without default_permissions: every user can append to and delete topics")
	}
	if opts.ReadOnly {
		// The kernel then refuses most mutations with EROFS itself; the nodes check ReadOnly too.
		mo.Options = append(mo.Options, "ro")
		mo.DirectMountFlags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_RDONLY
	}
	if opts.Debug {
		mo.Logger = log.New(debugWriter(logger), "go-fuse: ", 0)
	}
	return mo
}

// debugWriter routes go-fuse's request trace into the logrus logger at debug level.
func debugWriter(logger logrus.FieldLogger) io.Writer {
	if w, ok := logger.(interface {
		WriterLevel(logrus.Level) *io.PipeWriter
	}); ok {
		return w.WriterLevel(logrus.DebugLevel)
	}
	return os.Stderr
}
