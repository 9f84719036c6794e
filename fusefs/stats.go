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

// statsName is the root's metrics file, as JuiceFS has one. Topic names never start with '.', and it
// is not listed, so `ls -a` and `rm -r MNT/*` leave it alone.
const statsName = ".stats"

// statsNode is MNT/.stats: rendered by Options.Stats once per open, so a reader sees one consistent
// exposition and fstat its exact size.
//
// The kernel sends no file handle with the GETATTR of an fstat, and go-fuse then picks any open
// handle of the node, possibly one whose close is still on its way (RELEASE is asynchronous). So
// while the file is open, attributes describe the newest open's snapshot, which is the caller's own
// in the usual open, fstat, read, close.
type statsNode struct {
	nodeBase
	mu     sync.Mutex
	opens  int    // handles not yet released
	newest []byte // the snapshot of the newest open
}

var (
	_ = (fs.NodeGetattrer)((*statsNode)(nil))
	_ = (fs.NodeSetattrer)((*statsNode)(nil))
	_ = (fs.NodeOpener)((*statsNode)(nil))
	_ = (fs.FileReader)((*statsHandle)(nil))
	_ = (fs.FileReleaser)((*statsHandle)(nil))
)

// statsInode is the node of .stats, reused while the kernel knows it.
func (r *rootNode) statsInode(ctx context.Context, out *fuse.EntryOut) *fs.Inode {
	out.SetEntryTimeout(dirTimeout) // the name never goes away
	out.SetAttrTimeout(0)           // the size changes with every render
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

// attr: the size of the newest open's snapshot while the file is open, else of a fresh rendering.
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
	s.mu.Lock()
	s.opens++
	s.newest = data
	s.mu.Unlock()
	// Direct I/O: the kernel must neither cache one snapshot for the next open nor clip reads to a
	// size it cached from a stat by name.
	return &statsHandle{node: s, data: data}, fuse.FOPEN_DIRECT_IO, 0
}

// statsHandle serves one snapshot.
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
