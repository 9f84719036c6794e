package fusefs

import (
	"context"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"segfs/internal/logfields"
)

// statsName is the root's metrics file, as JuiceFS has one. Topic names never start with '.', and it
// is not listed, so `ls -a` and `rm -r MNT/*` leave it alone.
const statsName = ".stats"

// statsNode is MNT/.stats: rendered by Options.Stats once per open, so a reader sees one consistent
// exposition and fstat its exact size.
type statsNode struct {
	nodeBase
}

var (
	_ = (fs.NodeGetattrer)((*statsNode)(nil))
	_ = (fs.NodeSetattrer)((*statsNode)(nil))
	_ = (fs.NodeOpener)((*statsNode)(nil))
	_ = (fs.FileReader)((*statsHandle)(nil))
)

// statsInode is the node of .stats, reused while the kernel knows it.
func (r *rootNode) statsInode(ctx context.Context, out *fuse.EntryOut) *fs.Inode {
	out.SetEntryTimeout(dirTimeout) // the name never goes away
	out.SetAttrTimeout(0)           // the size changes with every render
	if ch := r.GetChild(statsName); ch != nil {
		if n, ok := ch.Operations().(*statsNode); ok {
			n.attr(nil, &out.Attr)
			return ch
		}
	}
	n := &statsNode{nodeBase{ms: r.ms}}
	n.attr(nil, &out.Attr)
	return r.NewInode(ctx, n, fs.StableAttr{Mode: fuse.S_IFREG})
}

// attr: the size of the handle's snapshot, or of a fresh rendering for a stat by name.
func (s *statsNode) attr(h *statsHandle, out *fuse.Attr) {
	size := 0
	if h != nil {
		size = len(h.data)
	} else if b, _ := s.ms.stats(); b != nil {
		size = len(b)
	}
	out.Mode = fuse.S_IFREG | 0o444
	out.Size = uint64(size)
	out.Blocks = (uint64(size) + 511) / 512
	out.Blksize = blockSize
	out.Nlink = 1
	out.Uid, out.Gid = s.ms.uid, s.ms.gid
	now := time.Now()
	out.SetTimes(&now, &now, &now)
}

func (s *statsNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	h, _ := fh.(*statsHandle)
	s.attr(h, &out.Attr)
	out.SetTimeout(0)
	return 0
}

func (s *statsNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := s.ms.checkSetattr("/"+statsName, in); errno != 0 {
		return errno
	}
	return s.Getattr(ctx, fh, out)
}

// Open renders once; what a failing collector left is still served, as the HTTP endpoint does.
func (s *statsNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	path := "/" + statsName
	if writeFlags(flags) || flags&syscall.O_TRUNC != 0 {
		if errno := s.ms.mutable("open", path); errno != 0 {
			return nil, 0, errno
		}
		return nil, 0, s.ms.refuse("open", path, syscall.EPERM, ".stats is read-only")
	}
	data, err := s.ms.stats()
	if err != nil {
		if data == nil {
			return nil, 0, s.ms.fail("open", path, err)
		}
		logfields.Err(s.ms.logger.WithFields(pathFields("open", path)), err).Warn("metrics rendered in part")
	}
	// Direct I/O: the kernel must neither cache one snapshot for the next open nor clip reads to a
	// size it cached from a stat by name.
	return &statsHandle{data: data}, fuse.FOPEN_DIRECT_IO, 0
}

// statsHandle serves one snapshot.
type statsHandle struct {
	data []byte
}

func (h *statsHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(h.data)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(h.data[off:min(off+int64(len(dest)), int64(len(h.data)))]), 0
}
