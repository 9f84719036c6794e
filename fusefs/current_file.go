package fusefs

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"segfs/segments"
)

// currentHandle is an open `current`. Writes go to the partition; reads stay in the segment active
// at open, also once sealed, as with a renamed multilog `current`.
type currentHandle struct {
	node  *segmentNode
	path  string
	write bool
	// fd (-1 if write-only) serves reads after a purge, but only of a segment seen sealed or synced
	// before rmdir: otherwise the file may end in padding or lack unwritten bytes.
	fd int
}

var (
	_ = (fs.FileReader)((*currentHandle)(nil))
	_ = (fs.FileWriter)((*currentHandle)(nil))
	_ = (fs.FileFlusher)((*currentHandle)(nil))
	_ = (fs.FileFsyncer)((*currentHandle)(nil))
	_ = (fs.FileReleaser)((*currentHandle)(nil))
)

func (h *currentHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n := 0
	for n < len(dest) {
		m, err := h.node.part.ReadSegment(h.node.base, dest[n:], off+int64(n))
		n += m
		if errors.Is(err, segments.ErrNotExist) {
			return h.readPurged(dest, off, err)
		}
		if err == io.EOF || (err == nil && m == 0) {
			// Records the seal (and exact size) before a purge can take the segment.
			_, _ = h.node.info()
			break
		}
		if err != nil {
			return nil, h.node.ms.fail("read", h.path, err)
		}
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// readPurged reads a purged segment from h.fd, if its file is known exact.
func (h *currentHandle) readPurged(dest []byte, off int64, errNotExist error) (fuse.ReadResult, syscall.Errno) {
	last, ok := h.node.lastKnown()
	if h.fd < 0 || !ok {
		return nil, h.node.ms.fail("read", h.path, errNotExist)
	}
	if off >= last.Size {
		return fuse.ReadResultData(nil), 0
	}
	dest = dest[:min(int64(len(dest)), last.Size-off)]
	n, err := unix.Pread(h.fd, dest, off)
	if err != nil {
		return nil, h.node.ms.fail("read", h.path, err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Write appends data whole at the end of the partition; the kernel's offset is ignored.
func (h *currentHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if !h.write {
		return 0, syscall.EBADF
	}
	if len(data) == 0 {
		return 0, 0
	}
	if _, err := h.node.part.Append(data); err != nil {
		var short *segments.ShortAppendError
		if errors.As(err, &short) {
			// A short write: the writer retries the rest and sees that fail.
			h.node.ms.fail("write", h.path, err)
			return uint32(short.Written), 0
		}
		return 0, h.node.ms.fail("write", h.path, err)
	}
	return uint32(len(data)), 0
}

// Flush runs on every close(); only a writer with unsynced bytes syncs, so other closes cost no I/O.
func (h *currentHandle) Flush(ctx context.Context) syscall.Errno {
	if h.node.ms.appendsDurable {
		h.node.ms.refused.Add(1)
		return syscall.ENOSYS
	}
	if !h.write {
		return 0
	}
	return h.sync("flush")
}

// Fsync syncs the partition even for a read-only handle, since fsync(2) allows that. With durable
// appends ENOSYS makes the kernel answer every later fsync(2) itself (fc->no_fsync), and FLUSH too.
func (h *currentHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if h.node.ms.appendsDurable {
		h.node.ms.refused.Add(1)
		return syscall.ENOSYS
	}
	return h.sync("fsync")
}

func (h *currentHandle) sync(op string) syscall.Errno {
	if !h.node.part.Unsynced() {
		return 0
	}
	err := h.node.part.Sync()
	if errors.Is(err, segments.ErrClosed) || errors.Is(err, segments.ErrNotExist) {
		// A closed log synced itself and a deleted partition has nothing to sync: not an error.
		h.node.ms.logger.WithField("path", h.path).Debug(op + ": partition closed or deleted, nothing to sync")
		return 0
	}
	if err != nil {
		return h.node.ms.fail(op, h.path, err)
	}
	return 0
}

func (h *currentHandle) Release(ctx context.Context) syscall.Errno {
	if h.fd >= 0 {
		_ = unix.Close(h.fd)
		h.node.ms.readers.closed(h.node.part)
	}
	return 0
}
