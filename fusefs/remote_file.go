package fusefs

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// remoteHandle is an open `<base>.log` whose local file was evicted: READs go to the object store
// through segments, which verifies each block. The kernel keeps the pages: the segment never changes.
type remoteHandle struct {
	node *sealedNode
}

var (
	_ = (fs.FileReader)((*remoteHandle)(nil))
	_ = (fs.FileFlusher)((*remoteHandle)(nil))
	_ = (fs.FileFsyncer)((*remoteHandle)(nil))
)

func (s *sealedNode) openRemote() (fs.FileHandle, uint32, syscall.Errno) {
	return &remoteHandle{node: s}, fuse.FOPEN_KEEP_CACHE, 0
}

// Read fails with EIO if the store is down past tier_timeout or holds other bytes than were stored.
func (h *remoteHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.node.part.ReadSegment(h.node.base, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, h.node.ms.fail("read", h.node.path(), err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *remoteHandle) Flush(ctx context.Context) syscall.Errno { return 0 }

// Fsync: the segment was verified in the store before its local file went.
func (h *remoteHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }
