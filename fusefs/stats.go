package fusefs

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"segfs/internal/logfields"
)

// statsName starts with '.', which no topic does, and is not listed, so `rm -r MNT/*` leaves it.
const statsName = ".stats"

// statsNode is MNT/.stats, rendered once per open so a reader sees one consistent snapshot. fstat
// sends no handle, so while open its size is the newest open's snapshot: usually the caller's own.
type statsNode struct {
	nodeBase
	mu     sync.Mutex
	opens  int
	newest []byte
}

var (
	_ = (fs.NodeGetattrer)((*statsNode)(nil))
	_ = (fs.NodeSetattrer)((*statsNode)(nil))
	_ = (fs.NodeOpener)((*statsNode)(nil))
	_ = (fs.FileReader)((*statsHandle)(nil))
	_ = (fs.FileReleaser)((*statsHandle)(nil))
)

func (r *rootNode) statsInode(ctx context.Context, out *fuse.EntryOut) *fs.Inode {
	out.SetEntryTimeout(dirTimeout)
	out.SetAttrTimeout(0) // the size changes with every render
	if ch := r.GetChild(statsName); ch != nil {
		if n, ok := ch.Operations().(*statsNode); ok {
			n.attr(&out.Attr)
			return ch
		}
	}
	n := &statsNode{nodeBase: nodeBase{ms: r.ms}}
	n.attr(&out.Attr)
	return r.NewInode(ctx, n, fs.StableAttr{Mode: fuse.S_IFREG})
}

func (s *statsNode) attr(out *fuse.Attr) {
	s.mu.Lock()
	size, open := len(s.newest), s.opens > 0
	s.mu.Unlock()
	if !open {
		b, _ := s.ms.stats()
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
	s.attr(&out.Attr)
	out.SetTimeout(0)
	return 0
}

func (s *statsNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := s.ms.checkSetattr("/"+statsName, in); errno != 0 {
		return errno
	}
	return s.Getattr(ctx, fh, out)
}

// Open serves what a failing collector left, as HTTP does.
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
	s.mu.Lock()
	s.opens++
	s.newest = data
	s.mu.Unlock()
	// Direct I/O: no snapshot cached for the next open, no reads clipped to a stale size.
	return &statsHandle{node: s, data: data}, fuse.FOPEN_DIRECT_IO, 0
}

type statsHandle struct {
	node *statsNode
	data []byte
}

func (h *statsHandle) Release(ctx context.Context) syscall.Errno {
	h.node.mu.Lock()
	if h.node.opens--; h.node.opens == 0 {
		h.node.newest = nil
	}
	h.node.mu.Unlock()
	return 0
}

func (h *statsHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(h.data)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(h.data[off:min(off+int64(len(dest)), int64(len(h.data)))]), 0
}
