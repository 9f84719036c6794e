package fusefs

import (
	"context"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// sealedHandle is an open `<base>.log`, served from a read-only descriptor of the backing file. The
// descriptor also keeps the data readable after the segment is purged, as for any unlinked file.
type sealedHandle struct {
	fd     int
	reads  *atomic.Int64 // mountState.sealedReads
	onRead func()        // mountState.onSealedRead
}

var (
	_ = (fs.FileReader)((*sealedHandle)(nil))
	_ = (fs.FileFlusher)((*sealedHandle)(nil))
	_ = (fs.FileFsyncer)((*sealedHandle)(nil))
	_ = (fs.FileReleaser)((*sealedHandle)(nil))
	_ = (fs.FilePassthroughFder)((*passthroughHandle)(nil))
)

// Read lets go-fuse splice (or pread) straight from the backing file: a sealed file holds exactly the
// logical bytes, no padding.
func (h *sealedHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.reads.Add(1)
	h.onRead()
	return fuse.ReadResultFd(uintptr(h.fd), off, len(dest)), 0
}

func (h *sealedHandle) Flush(ctx context.Context) syscall.Errno { return 0 }

// Fsync: a sealed segment was made durable and exact when it was sealed.
func (h *sealedHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }

func (h *sealedHandle) Release(ctx context.Context) syscall.Errno {
	_ = unix.Close(h.fd)
	return 0
}

// passthroughHandle offers the backing descriptor to go-fuse for FUSE passthrough: the kernel then
// reads the backing file itself and READ never reaches this process. The kernel takes its own
// reference to the file, so closing fd on release is safe while other opens share the backing id.
type passthroughHandle struct {
	*sealedHandle
}

func (h *passthroughHandle) PassthroughFd() (int, bool) { return h.fd, true }
