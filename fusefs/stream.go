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

// streamName is the per-partition file whose offsets are partition offsets. It never rotates, so
// `tail -f` and `tail -c +N` follow a partition at any rotation rate. The dot keeps it out of
// `cat MNT/T/P/*`, and it is not listed, so cp -a, rsync and tar of a partition copy the data once.
const streamName = ".stream"

// errPurged is what a read of a range retention removed gets: "No data available" names the cause,
// and SEEK_DATA tells a reader where the kept data starts.
const errPurged = syscall.ENODATA

// streamNode is MNT/<topic>/<p>/.stream: the whole partition as one read-only file.
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

// streamAttr: size is the partition's end offset, mtime its last append.
func (f *mountState) streamAttr(p *segments.Partition, out *fuse.Attr) syscall.Errno {
	segs := p.Segments()
	if len(segs) == 0 {
		return syscall.ENOENT // the partition was deleted
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
	out.SetTimeout(0) // the size grows with every append
	return s.ms.streamAttr(s.part, &out.Attr)
}

func (s *streamNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := s.ms.checkSetattr(s.path(), in); errno != 0 {
		return errno
	}
	return s.Getattr(ctx, fh, out)
}

// Open is read-only: appends go through current, so every write keeps one path and one atomicity rule.
func (s *streamNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if writeFlags(flags) || flags&syscall.O_TRUNC != 0 {
		if errno := s.ms.mutable("open", s.path()); errno != 0 {
			return nil, 0, errno
		}
		return nil, 0, s.ms.refuse("open", s.path(), syscall.EPERM, ".stream is read-only; append to current")
	}
	// Direct I/O: the file grows under the kernel, which must not clip reads to a size it cached.
	return &streamHandle{node: s}, fuse.FOPEN_DIRECT_IO, 0
}

// streamHandle reads partition offsets across segments.
type streamHandle struct {
	node *streamNode
}

func (h *streamHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.node.part.ReadAt(dest, off)
	switch {
	case err == nil || err == io.EOF:
		return fuse.ReadResultData(dest[:n]), 0
	case n > 0:
		// Return what was read; the next read reports the rest.
		return fuse.ReadResultData(dest[:n]), 0
	case errors.Is(err, segments.ErrNotExist) && len(h.node.part.Segments()) > 0:
		return nil, h.node.ms.refuse("read", h.node.path(), errPurged, "offset removed by retention or rm")
	default:
		return nil, h.node.ms.fail("read", h.node.path(), err)
	}
}

// Lseek answers SEEK_DATA with the first kept offset at or after off, so a follower that met
// ENODATA learns where the partition's data starts now; SEEK_HOLE is the end of the partition.
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

// streamEntry: the name never changes while the partition exists; attributes are asked each time.
func (f *mountState) streamEntry(p *segments.Partition, out *fuse.EntryOut) syscall.Errno {
	out.SetEntryTimeout(time.Second)
	out.SetAttrTimeout(0)
	return f.streamAttr(p, &out.Attr)
}
