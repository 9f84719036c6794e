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

// currentHandle is an open `current`. Writes go to the partition (the segment active at the time of
// each write); reads stay in the segment that was active at open, also after it is sealed, as a
// reader of a renamed multilog `current` would.
type currentHandle struct {
	node  *segmentNode
	path  string
	write bool
	// fd is a read-only descriptor of the backing file (-1 for write-only handles): reads fall back to
	// it once the segment is purged, as reads of an unlinked file keep working, provided the segment
	// was seen sealed first or its partition was synced before rmdir (openReaders). Otherwise the file
	// of a segment deleted while active may end in padding or lack bytes never written, so it is not read.
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
			// Rare enough to afford the lookup: a reader of an old current learns that it is sealed
			// (and its exact size) before the segment can be purged.
			_, _ = h.node.info()
			break
		}
		if err != nil {
			return nil, h.node.ms.fail("read", h.path, err)
		}
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// readPurged reads a purged segment from the descriptor kept since open, if the segment was seen
// sealed or its partition was synced before rmdir (so the file is exact on disk up to that size);
// otherwise the segment is gone for this reader too (errNotExist).
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

// Write appends data whole at the end of the partition; the offset the kernel computed from its idea
// of the file size is meaningless for an append-only log and ignored.
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
			// Part of it is in the log: a short write, whose rest the writer retries and sees fail.
			h.node.ms.fail("write", h.path, err)
			return uint32(short.Written), 0
		}
		return 0, h.node.ms.fail("write", h.path, err)
	}
	return uint32(len(data)), 0
}

// Flush runs on every close(). Only a writer's close syncs, and only when the partition has bytes not
// yet durable and exact on disk, so closing a reader (or an idle writer) costs no I/O. With durable
// appends there is nothing to do: see Fsync.
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

// Fsync syncs the partition whichever way the handle was opened: fsync(2) is allowed on a read-only
// descriptor and a caller using it expects durability.
//
// With persist=sync every write was durable before it was acknowledged, so no fsync of the mount has
// anything to do. ENOSYS makes the kernel return 0 and answer every later fsync(2) itself
// (fc->no_fsync), a round trip saved per durable append; FLUSH likewise (fc->no_flush). Safe only
// under that guarantee, hence the log's own configuration decides.
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
		// The log closed, which syncs everything itself, or the partition was deleted with its data:
		// nothing is left to sync, and closing a writer after `rm -r` is not an error.
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
