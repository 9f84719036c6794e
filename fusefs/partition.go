package fusefs

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"segfs/internal/logfields"
	"segfs/segments"
)

const currentName = "current"

// partitionNode is MNT/<topic>/<p>: sealed segments as <base>.log, the active one as current.
type partitionNode struct {
	dirBase
	part *segments.Partition
	id   uint64 // see segmentGen
}

var (
	_ = (fs.NodeLookuper)((*partitionNode)(nil))
	_ = (fs.NodeReaddirer)((*partitionNode)(nil))
	_ = (fs.NodeUnlinker)((*partitionNode)(nil))
)

func newPartitionNode(ms *mountState, p *segments.Partition) *partitionNode {
	return &partitionNode{dirBase: dirBase{nodeBase: nodeBase{ms: ms}, backing: p.Dir()}, part: p, id: ms.nextPartition.Add(1)}
}

// segmentGen tells apart nodes sharing a backing inode number: `current` and its later
// `<base>.log`, and a purged segment and the one reusing its inode.
func segmentGen(partitionID uint64, base int64, current bool) uint64 {
	var b [17]byte
	binary.LittleEndian.PutUint64(b[0:], partitionID)
	binary.LittleEndian.PutUint64(b[8:], uint64(base))
	if current {
		b[16] = 1
	}
	h := fnv.New64a()
	_, _ = h.Write(b[:])
	return h.Sum64()
}

// listing returns the partition's segments, the active one last; ENOENT once it is deleted.
func (p *partitionNode) listing() ([]segments.SegmentInfo, syscall.Errno) {
	segs := p.part.Segments()
	if len(segs) == 0 {
		return nil, syscall.ENOENT
	}
	return segs, 0
}

func (p *partitionNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := p.ms.checkName("lookup", p.path()+"/"+name, name); errno != 0 {
		return nil, errno
	}
	if name == streamName {
		if errno := p.ms.streamEntry(p.part, out); errno != 0 {
			return nil, errno
		}
		if ch := p.GetChild(name); ch != nil {
			return ch, 0
		}
		node := &streamNode{nodeBase: nodeBase{ms: p.ms}, part: p.part}
		return p.NewInode(ctx, node, fs.StableAttr{Mode: fuse.S_IFREG}), 0
	}
	if name == currentName {
		segs, errno := p.listing()
		if errno != 0 {
			return nil, errno
		}
		info := segs[len(segs)-1]
		p.ms.currentEntry(info, out)
		node := &currentNode{segmentNode: p.segmentNode(info.Base)}
		attr := fs.StableAttr{Mode: fuse.S_IFREG, Ino: info.Ino, Gen: segmentGen(p.id, info.Base, true)}
		return p.NewInode(ctx, node, attr), 0
	}
	base, ok := segments.ParseSegmentName(name)
	if !ok {
		return nil, syscall.ENOENT
	}
	info, err := p.part.Segment(base)
	if err != nil {
		return nil, toErrno(err)
	}
	if !info.Sealed {
		return nil, syscall.ENOENT
	}
	p.ms.sealedEntry(info, out)
	node := &sealedNode{segmentNode: p.segmentNode(base)}
	attr := fs.StableAttr{Mode: fuse.S_IFREG, Ino: info.Ino, Gen: segmentGen(p.id, base, false)}
	return p.NewInode(ctx, node, attr), 0
}

func (p *partitionNode) segmentNode(base int64) segmentNode {
	return segmentNode{nodeBase: nodeBase{ms: p.ms}, part: p.part, base: base}
}

func (p *partitionNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	segs, errno := p.listing()
	if errno != 0 {
		return nil, errno
	}
	entries := p.dotEntries(len(segs))
	for _, s := range segs {
		name := currentName
		if s.Sealed {
			name = segments.SegmentName(s.Base)
		}
		entries = append(entries, fuse.DirEntry{Name: name, Mode: fuse.S_IFREG, Ino: s.Ino})
	}
	return fs.NewListDirStream(entries), 0
}

// Unlink of a sealed segment purges it. Unlink of current succeeds and does nothing: refusing it
// would make `rm -r MNT/T` fail before the rmdir that deletes the data.
func (p *partitionNode) Unlink(ctx context.Context, name string) syscall.Errno {
	path := p.path() + "/" + name
	if errno := p.ms.checkName("unlink", path, name); errno != 0 {
		return errno
	}
	if errno := p.ms.mutable("unlink", path); errno != 0 {
		return errno
	}
	if name == currentName {
		p.ms.logger.WithField("path", path).Debug("unlink of current: no-op, the active segment stays")
		return 0
	}
	if name == streamName {
		return p.ms.refuse("unlink", path, syscall.EPERM, ".stream is the partition itself; rmdir deletes it")
	}
	base, ok := segments.ParseSegmentName(name)
	if !ok {
		return p.ms.refuse("unlink", path, syscall.ENOENT, "not a segment name")
	}
	info, err := p.part.Segment(base)
	if err != nil {
		return p.ms.fail("unlink", path, err)
	}
	if !info.Sealed {
		return p.ms.refuse("unlink", path, syscall.ENOENT, "the active segment is only called current")
	}
	if err := p.part.Purge(base); err != nil {
		// Purge can fail after the segment left the partition; rm succeeds iff its file is gone too.
		_, lerr := p.part.Segment(base)
		if !errors.Is(lerr, segments.ErrNotExist) || !backingGone(info.Path) {
			return p.ms.fail("unlink", path, err)
		}
		logfields.Err(p.ms.logger.WithFields(pathFields("unlink", path)), err).Warn("segment purged; cleaning up its file failed")
	}
	p.ms.logger.WithFields(logrus.Fields{"path": path, "bytes": info.Size}).Info("segment purged")
	return 0
}

func backingGone(path string) bool {
	var st unix.Stat_t
	return errors.Is(unix.Lstat(path, &st), unix.ENOENT)
}
