package fusefs

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"segfs/segments"
)

// streamName never rotates, so `tail -f` follows a partition at any rotation rate. It is hidden and
// not listed, so globs, cp -a, rsync and tar copy the data once.
const streamName = ".stream"

// errPurged answers reads of a purged range; SEEK_DATA tells where the kept data starts.
const errPurged = syscall.ENODATA

type streamNode struct {
	nodeBase
	part *segments.Partition
}

var (
	_ = (fs.NodeGetattrer)((*streamNode)(nil))
	_ = (fs.NodeSetattrer)((*streamNode)(nil))
	_ = (fs.NodeOpener)((*streamNode)(nil))
	_ = (fs.FileReader)((*streamHandle)(nil))
	_ = (fs.FileLseeker)((*streamHandle)(nil))
)

func (f *mountState) streamAttr(p *segments.Partition, out *fuse.Attr) syscall.Errno {
	segs := p.Segments()
	if len(segs) == 0 {
		return syscall.ENOENT
	}
	active := segs[len(segs)-1]
	var blocks int64
	for _, s := range segs {
		blocks += s.Blocks
	}
	out.Mode = fuse.S_IFREG | 0o444
	out.Size = uint64(active.Base + active.Size)
	out.Blocks = uint64(blocks)
	out.Blksize = blockSize
	out.Nlink = 1
	out.Uid, out.Gid = f.uid, f.gid
	t := active.ModTime
	out.SetTimes(&t, &t, &t)
	return 0
}

func (s *streamNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.SetTimeout(0)
	return s.ms.streamAttr(s.part, &out.Attr)
}

func (s *streamNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := s.ms.checkSetattr(s.path(), in); errno != 0 {
		return errno
	}
	return s.Getattr(ctx, fh, out)
}

// Open is read-only, so appends keep one path: current.
func (s *streamNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if writeFlags(flags) || flags&syscall.O_TRUNC != 0 {
		if errno := s.ms.mutable("open", s.path()); errno != 0 {
			return nil, 0, errno
		}
		return nil, 0, s.ms.refuse("open", s.path(), syscall.EPERM, ".stream is read-only; append to current")
	}
	// Direct I/O: the file grows under the kernel.
	return &streamHandle{node: s}, fuse.FOPEN_DIRECT_IO, 0
}

type streamHandle struct {
	node *streamNode
}

func (h *streamHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.node.part.ReadAt(dest, off)
	switch {
	case err == nil || err == io.EOF:
		return fuse.ReadResultData(dest[:n]), 0
	case n > 0:
		return fuse.ReadResultData(dest[:n]), 0
	case errors.Is(err, segments.ErrNotExist) && len(h.node.part.Segments()) > 0:
		return nil, h.node.ms.refuse("read", h.node.path(), errPurged, "offset removed by retention or rm")
	default:
		return nil, h.node.ms.fail("read", h.node.path(), err)
	}
}

// Lseek SEEK_DATA tells a follower that met ENODATA where the kept data starts.
func (h *streamHandle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	segs := h.node.part.Segments()
	if len(segs) == 0 {
		return 0, syscall.ENOENT
	}
	active := segs[len(segs)-1]
	end := uint64(active.Base + active.Size)
	if off >= end {
		return 0, syscall.ENXIO
	}
	switch whence {
	case unix.SEEK_DATA:
		return max(off, uint64(segs[0].Base)), 0
	case unix.SEEK_HOLE:
		return end, 0
	}
	return 0, syscall.EINVAL
}

func (f *mountState) streamEntry(p *segments.Partition, out *fuse.EntryOut) syscall.Errno {
	out.SetEntryTimeout(time.Second)
	out.SetAttrTimeout(0)
	return f.streamAttr(p, &out.Attr)
}
