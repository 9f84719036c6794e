package fusefs

import (
	"errors"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"

	"segfs/internal/logfields"
	"segfs/segments"
)

// toErrno maps an error of segments, or of a syscall under it, to the errno a Linux user expects.
func toErrno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, segments.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, segments.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, segments.ErrInvalidName):
		return syscall.EINVAL
	case errors.Is(err, segments.ErrActiveSegment):
		return syscall.EPERM
	case errors.Is(err, segments.ErrLocked):
		return syscall.EBUSY
	case errors.Is(err, segments.ErrRemote):
		// Never a network errno, which a reader of a file would not expect.
		return syscall.EIO
	case errors.As(err, &errno):
		return errno
	default:
		// ErrClosed too: the log is closing under an open handle.
		return syscall.EIO
	}
}

// refuse logs why at debug level, so every refusal can be explained.
func (f *mountState) refuse(op, path string, errno syscall.Errno, why string) syscall.Errno {
	f.logger.WithFields(pathFields(op, path)).WithField("errno", logfields.Errno(errno)).Debug("refused: " + why)
	return errno
}

// fail maps err, logging expected outcomes at debug level and anything else as a warning.
func (f *mountState) fail(op, path string, err error) syscall.Errno {
	errno := toErrno(err)
	entry := f.logger.WithFields(pathFields(op, path)).WithField("errno", logfields.Errno(errno)).WithError(err)
	switch errno {
	case syscall.ENOENT, syscall.EEXIST, syscall.EINVAL, syscall.EPERM:
		entry.Debug("refused")
	default:
		entry.Warn("failed")
	}
	return errno
}

// pathFields names topic, partition and segment, for log queries.
func pathFields(op, path string) logrus.Fields {
	f := logrus.Fields{"op": op, "path": path}
	parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 3)
	if !segments.ValidTopicName(parts[0]) {
		return f
	}
	f["topic"] = parts[0]
	if len(parts) < 2 {
		return f
	}
	n, ok := segments.ParsePartitionName(parts[1])
	if !ok {
		return f
	}
	f["partition"] = n
	if len(parts) == 3 {
		if base, ok := segments.ParseSegmentName(parts[2]); ok {
			f["segment"] = base
		}
	}
	return f
}

// nameMax is ext4's NAME_MAX; the kernel itself refuses names over FUSE's 1024 bytes.
const nameMax = 255

func (f *mountState) checkName(op, path, name string) syscall.Errno {
	if len(name) > nameMax {
		return f.refuse(op, path, syscall.ENAMETOOLONG, "names are at most 255 bytes")
	}
	return 0
}

func (f *mountState) mutable(op, path string) syscall.Errno {
	if f.readOnly {
		return f.refuse(op, path, syscall.EROFS, "read-only mount")
	}
	return 0
}

// nowOnly are the SETATTR bits accepted and ignored: "now" times (touch) and the kernel's bookkeeping.
const nowOnly = fuse.FATTR_ATIME | fuse.FATTR_MTIME | fuse.FATTR_ATIME_NOW | fuse.FATTR_MTIME_NOW |
	fuse.FATTR_CTIME | fuse.FATTR_FH | fuse.FATTR_LOCKOWNER | fuse.FATTR_KILL_SUIDGID

// checkSetattr applies chattr +a: size, mode, owner and explicit times get EPERM.
func (f *mountState) checkSetattr(path string, in *fuse.SetAttrIn) syscall.Errno {
	if errno := f.mutable("setattr", path); errno != 0 {
		return errno
	}
	v := in.Valid
	switch {
	case v&fuse.FATTR_SIZE != 0:
		return f.refuse("truncate", path, syscall.EPERM, "segments are append-only")
	case v&fuse.FATTR_MODE != 0:
		return f.refuse("chmod", path, syscall.EPERM, "modes are fixed")
	case v&(fuse.FATTR_UID|fuse.FATTR_GID) != 0:
		return f.refuse("chown", path, syscall.EPERM, "owners are fixed")
	case v&fuse.FATTR_ATIME != 0 && v&fuse.FATTR_ATIME_NOW == 0,
		v&fuse.FATTR_MTIME != 0 && v&fuse.FATTR_MTIME_NOW == 0:
		return f.refuse("utimes", path, syscall.EPERM, "mtime is the time of the last append")
	case v&^nowOnly != 0:
		return f.refuse("setattr", path, syscall.EPERM, "unsupported attribute change")
	}
	return 0
}
