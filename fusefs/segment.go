package fusefs

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"segfs/segments"
)

// segmentNode is what `current` and `<base>.log` share: a segment named by its base.
type segmentNode struct {
	nodeBase
	part *segments.Partition
	base int64
	// sealed is the state once seen sealed: the backing file's exact bytes, servable after a purge.
	sealed atomic.Pointer[segments.SegmentInfo]
}

// info remembers the segment once it is sealed.
func (s *segmentNode) info() (segments.SegmentInfo, error) {
	info, err := s.part.Segment(s.base)
	if err == nil && info.Sealed && s.sealed.Load() == nil {
		s.sealed.Store(&info)
	}
	return info, err
}

// lastKnown is what a descriptor may serve after the segment went away: its sealed state, or the
// state recorded when its partition was deleted under an open reader.
func (s *segmentNode) lastKnown() (segments.SegmentInfo, bool) {
	if last := s.sealed.Load(); last != nil {
		return *last, true
	}
	return s.ms.readers.lastSeen(s.part, s.base)
}

// segmentAttr's size includes unpersisted bytes; st_ino and st_blocks are the backing file's.
func (f *mountState) segmentAttr(info segments.SegmentInfo, out *fuse.Attr) {
	mode := uint32(0o644)
	if info.Sealed || f.readOnly {
		mode = 0o444
	}
	out.Mode = fuse.S_IFREG | mode
	out.Ino = info.Ino
	out.Size = uint64(info.Size)
	out.Blocks = uint64(info.Blocks)
	out.Blksize = blockSize
	out.Nlink = 1
	out.Uid, out.Gid = f.uid, f.gid
	t := info.ModTime
	out.SetTimes(&t, &t, &t)
}

// currentEntry has zero timeouts, so each path walk finds the active segment and its size.
func (f *mountState) currentEntry(info segments.SegmentInfo, out *fuse.EntryOut) {
	f.segmentAttr(info, &out.Attr)
	out.SetEntryTimeout(0)
	out.SetAttrTimeout(0)
}

func (f *mountState) sealedEntry(info segments.SegmentInfo, out *fuse.EntryOut) {
	f.segmentAttr(info, &out.Attr)
	out.SetEntryTimeout(sealedTimeout)
	out.SetAttrTimeout(sealedTimeout)
}

// getattr answers a purged segment's open descriptors (afterPurge) from its last known state with
// nlink 0, as fstat of an unlinked file does.
func (s *segmentNode) getattr(out *fuse.AttrOut, afterPurge bool) syscall.Errno {
	info, err := s.info()
	if err == nil {
		s.ms.segmentAttr(info, &out.Attr)
		return 0
	}
	if last, ok := s.lastKnown(); afterPurge && ok && errors.Is(err, segments.ErrNotExist) {
		s.ms.segmentAttr(last, &out.Attr)
		out.Nlink = 0
		return 0
	}
	return toErrno(err)
}

func (s *segmentNode) dropStaleEntry() {
	if name, parent := s.Parent(); parent != nil {
		s.ms.stale.drop(parent, name)
	}
}

func (s *segmentNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := s.ms.checkSetattr(s.path(), in); errno != 0 {
		return errno
	}
	return s.getattr(out, fh != nil)
}

func openBacking(info segments.SegmentInfo) (int, error) {
	return unix.Open(info.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

func writeFlags(flags uint32) bool { return flags&syscall.O_ACCMODE != syscall.O_RDONLY }

// currentNode is `current`: the segment active when the kernel looked the name up.
type currentNode struct {
	segmentNode
}

var (
	_ = (fs.NodeGetattrer)((*currentNode)(nil))
	_ = (fs.NodeSetattrer)((*currentNode)(nil))
	_ = (fs.NodeOpener)((*currentNode)(nil))
)

// Getattr answers even after a purge: past a rotation only open descriptors reach this node.
func (c *currentNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	errno := c.getattr(out, true)
	out.SetTimeout(0)
	return errno
}

// Open: a write handle appends to the partition, so rotations after LOOKUP never lose a write.
func (c *currentNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	path := c.path()
	write := writeFlags(flags)
	if write {
		if errno := c.ms.mutable("open", path); errno != 0 {
			return nil, 0, errno
		}
	}
	if flags&syscall.O_TRUNC != 0 {
		return nil, 0, c.ms.refuse("open", path, syscall.EPERM, "O_TRUNC on append-only current")
	}
	if write && flags&syscall.O_APPEND == 0 {
		return nil, 0, c.ms.refuse("open", path, syscall.EPERM, "current opens for writing only with O_APPEND")
	}
	h := &currentHandle{node: &c.segmentNode, path: path, write: write, fd: -1}
	if flags&syscall.O_ACCMODE != syscall.O_WRONLY {
		info, err := c.info()
		if err != nil {
			return nil, 0, c.ms.fail("open", path, err)
		}
		if h.fd, err = openBacking(info); err != nil {
			return nil, 0, c.ms.fail("open", path, err)
		}
		c.ms.readers.opened(c.part)
	}
	// Direct I/O: the content grows under the kernel, which must not cache it or clip reads.
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// sealedNode is `<base>.log`: an immutable segment.
type sealedNode struct {
	segmentNode
}

var (
	_ = (fs.NodeGetattrer)((*sealedNode)(nil))
	_ = (fs.NodeSetattrer)((*sealedNode)(nil))
	_ = (fs.NodeOpener)((*sealedNode)(nil))
)

// Getattr of a purged segment drops its long-cached name, unless fh is set (fstat of an unlinked file).
func (s *sealedNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	errno := s.getattr(out, fh != nil)
	if errno == syscall.ENOENT {
		s.dropStaleEntry()
	}
	out.SetTimeout(sealedTimeout)
	return errno
}

// Open serves the backing file by passthrough if possible, else with FOPEN_KEEP_CACHE: it never changes.
func (s *sealedNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	path := s.path()
	if writeFlags(flags) {
		if errno := s.ms.mutable("open", path); errno != 0 {
			return nil, 0, errno
		}
		return nil, 0, s.ms.refuse("open", path, syscall.EPERM, "sealed segments are read-only")
	}
	if flags&syscall.O_TRUNC != 0 {
		return nil, 0, s.ms.refuse("open", path, syscall.EPERM, "O_TRUNC on a sealed segment")
	}
	info, err := s.info()
	if err == nil {
		// A rotation lists the segment before its background seal ends; the backing file is
		// complete only once it has.
		err = s.part.WaitSealed(s.base)
	}
	if err != nil {
		if errors.Is(err, segments.ErrNotExist) {
			s.dropStaleEntry()
		}
		return nil, 0, s.ms.fail("open", path, err)
	}
	if info.Remote {
		return s.openRemote()
	}
	fd, err := openBacking(info)
	if err != nil && errors.Is(err, syscall.ENOENT) {
		if info, ierr := s.info(); ierr == nil && info.Remote {
			return s.openRemote() // evicted since the lookup
		}
	}
	if err != nil {
		return nil, 0, s.ms.fail("open", path, err)
	}
	h := &sealedHandle{fd: fd, reads: &s.ms.sealedReads, onRead: s.ms.onSealedRead}
	if s.ms.passthrough.Load() {
		// go-fuse registers the descriptor and clears FOPEN_KEEP_CACHE; rawFS.Open closes it.
		s.ms.passthroughOpens.add(ctx.Done(), h)
		return &passthroughHandle{h}, fuse.FOPEN_KEEP_CACHE, 0
	}
	return h, fuse.FOPEN_KEEP_CACHE, 0
}
