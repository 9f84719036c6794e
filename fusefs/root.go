package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"segfs/segments"
)

// rootNode is the mount's root: one directory per topic.
type rootNode struct {
	dirBase
}

var (
	_ = (fs.NodeLookuper)((*rootNode)(nil))
	_ = (fs.NodeReaddirer)((*rootNode)(nil))
	_ = (fs.NodeMkdirer)((*rootNode)(nil))
	_ = (fs.NodeRmdirer)((*rootNode)(nil))
	_ = (fs.NodeUnlinker)((*rootNode)(nil))
)

func newRootNode(ms *mountState) *rootNode {
	return &rootNode{dirBase{nodeBase: nodeBase{ms: ms}, backing: ms.log.Dir()}}
}

func (r *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := r.ms.checkName("lookup", "/"+name, name); errno != 0 {
		return nil, errno
	}
	if name == statsName && r.ms.stats != nil {
		return r.statsInode(ctx, out), 0
	}
	t, err := r.ms.log.Topic(name)
	if err != nil {
		return nil, toErrno(err)
	}
	r.ms.dirEntry(t.Dir(), out)
	return r.topicInode(ctx, name, t), 0
}

// topicInode reuses the kernel's node for t, so st_ino is stable; a recreated topic gets a fresh node.
func (r *rootNode) topicInode(ctx context.Context, name string, t *segments.Topic) *fs.Inode {
	if ch := r.GetChild(name); ch != nil {
		if tn, ok := ch.Operations().(*topicNode); ok && tn.topic == t {
			return ch
		}
	}
	return r.NewInode(ctx, newTopicNode(r.ms, t), fs.StableAttr{Mode: fuse.S_IFDIR})
}

func (r *rootNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	topics := r.ms.log.Topics()
	entries := r.dotEntries(len(topics))
	for _, name := range topics {
		entries = append(entries, fuse.DirEntry{Name: name, Mode: fuse.S_IFDIR})
	}
	return fs.NewListDirStream(entries), 0
}

// Mkdir creates a topic with the log's default partition count.
func (r *rootNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	path := "/" + name
	if errno := r.ms.checkName("mkdir", path, name); errno != 0 {
		return nil, errno
	}
	if errno := r.ms.mutable("mkdir", path); errno != 0 {
		return nil, errno
	}
	if !segments.ValidTopicName(name) {
		return nil, r.ms.refuse("mkdir", path, syscall.EINVAL, "topic names match [A-Za-z0-9][A-Za-z0-9._-]{0,254}")
	}
	t, err := r.ms.log.CreateTopic(name, 0)
	if err != nil {
		return nil, r.ms.fail("mkdir", path, err)
	}
	r.ms.logger.WithField("topic", name).Info("topic created")
	r.ms.dirEntry(t.Dir(), out)
	return r.NewInode(ctx, newTopicNode(r.ms, t), fs.StableAttr{Mode: fuse.S_IFDIR}), 0
}

// Rmdir deletes a topic with its data, although it lists partitions (interface files, as in cgroupfs).
func (r *rootNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	path := "/" + name
	if errno := r.ms.checkName("rmdir", path, name); errno != 0 {
		return errno
	}
	if errno := r.ms.mutable("rmdir", path); errno != 0 {
		return errno
	}
	if t, err := r.ms.log.Topic(name); err == nil {
		for _, n := range t.Partitions() {
			if p, err := t.Partition(n); err == nil {
				if err := r.ms.readers.beforeDelete(p); err != nil {
					return r.ms.fail("rmdir", path, err)
				}
			}
		}
	}
	if err := r.ms.log.DeleteTopic(name); err != nil {
		return r.ms.fail("rmdir", path, err)
	}
	r.ms.logger.WithField("topic", name).Info("topic deleted")
	return 0
}

// Unlink: the root holds only topics and .stats, which is part of the mount.
func (r *rootNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if name != statsName || r.ms.stats == nil {
		return r.dirBase.Unlink(ctx, name)
	}
	if errno := r.ms.mutable("unlink", "/"+name); errno != 0 {
		return errno
	}
	return r.ms.refuse("unlink", "/"+name, syscall.EPERM, ".stats is part of the mount")
}
