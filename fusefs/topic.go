package fusefs

import (
	"context"
	"strconv"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"segfs/segments"
)

// topicNode is MNT/<topic>: one directory per partition.
type topicNode struct {
	dirBase
	topic *segments.Topic
}

var (
	_ = (fs.NodeLookuper)((*topicNode)(nil))
	_ = (fs.NodeReaddirer)((*topicNode)(nil))
	_ = (fs.NodeMkdirer)((*topicNode)(nil))
	_ = (fs.NodeRmdirer)((*topicNode)(nil))
)

func newTopicNode(ms *mountState, t *segments.Topic) *topicNode {
	return &topicNode{dirBase: dirBase{nodeBase: nodeBase{ms: ms}, backing: t.Dir()}, topic: t}
}

func (t *topicNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := t.ms.checkName("lookup", t.path()+"/"+name, name); errno != 0 {
		return nil, errno
	}
	n, ok := segments.ParsePartitionName(name)
	if !ok {
		return nil, syscall.ENOENT
	}
	p, err := t.topic.Partition(n)
	if err != nil {
		return nil, toErrno(err)
	}
	t.ms.dirEntry(p.Dir(), out)
	return t.partitionInode(ctx, name, p), 0
}

// partitionInode: see rootNode.topicInode.
func (t *topicNode) partitionInode(ctx context.Context, name string, p *segments.Partition) *fs.Inode {
	if ch := t.GetChild(name); ch != nil {
		if pn, ok := ch.Operations().(*partitionNode); ok && pn.part == p {
			return ch
		}
	}
	return t.NewInode(ctx, newPartitionNode(t.ms, p), fs.StableAttr{Mode: fuse.S_IFDIR})
}

func (t *topicNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ids := t.topic.Partitions()
	entries := t.dotEntries(len(ids))
	for _, id := range ids {
		entries = append(entries, fuse.DirEntry{Name: strconv.Itoa(id), Mode: fuse.S_IFDIR})
	}
	return fs.NewListDirStream(entries), 0
}

// Mkdir adds partition N, decimal without leading zeros so each partition has one name.
func (t *topicNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	path := t.path() + "/" + name
	if errno := t.ms.checkName("mkdir", path, name); errno != 0 {
		return nil, errno
	}
	if errno := t.ms.mutable("mkdir", path); errno != 0 {
		return nil, errno
	}
	n, ok := segments.ParsePartitionName(name)
	if !ok {
		return nil, t.ms.refuse("mkdir", path, syscall.EINVAL, "partition names are decimal numbers without leading zeros")
	}
	p, err := t.topic.CreatePartition(n)
	if err != nil {
		return nil, t.ms.fail("mkdir", path, err)
	}
	t.ms.logger.WithField("path", path).Info("partition created")
	t.ms.dirEntry(p.Dir(), out)
	return t.NewInode(ctx, newPartitionNode(t.ms, p), fs.StableAttr{Mode: fuse.S_IFDIR}), 0
}

// Rmdir deletes a partition with its data (see rootNode.Rmdir).
func (t *topicNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	path := t.path() + "/" + name
	if errno := t.ms.checkName("rmdir", path, name); errno != 0 {
		return errno
	}
	if errno := t.ms.mutable("rmdir", path); errno != 0 {
		return errno
	}
	n, ok := segments.ParsePartitionName(name)
	if !ok {
		return t.ms.refuse("rmdir", path, syscall.ENOENT, "not a partition name")
	}
	if p, err := t.topic.Partition(n); err == nil {
		if err := t.ms.readers.beforeDelete(p); err != nil {
			return t.ms.fail("rmdir", path, err)
		}
	}
	if err := t.topic.DeletePartition(n); err != nil {
		return t.ms.fail("rmdir", path, err)
	}
	t.ms.logger.WithField("path", path).Info("partition deleted")
	return 0
}
