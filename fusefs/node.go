package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// nodeBase is embedded by every node: statfs and xattrs are the same everywhere.
type nodeBase struct {
	fs.Inode
	ms *mountState
}

var (
	_ = (fs.NodeStatfser)((*nodeBase)(nil))
	_ = (fs.NodeGetxattrer)((*nodeBase)(nil))
	_ = (fs.NodeListxattrer)((*nodeBase)(nil))
	_ = (fs.NodeSetxattrer)((*nodeBase)(nil))
	_ = (fs.NodeRemovexattrer)((*nodeBase)(nil))
)

func (n *nodeBase) path() string { return "/" + n.Path(nil) }

// Statfs reports the data directory's filesystem, whose space appends consume.
func (n *nodeBase) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st unix.Statfs_t
	if err := unix.Statfs(n.ms.log.Dir(), &st); err != nil {
		return n.ms.fail("statfs", n.path(), err)
	}
	*out = fuse.StatfsOut{
		Blocks:  st.Blocks,
		Bfree:   st.Bfree,
		Bavail:  st.Bavail,
		Files:   st.Files,
		Ffree:   st.Ffree,
		Bsize:   uint32(st.Bsize),
		NameLen: uint32(st.Namelen),
		Frsize:  uint32(st.Frsize),
	}
	return 0
}

// Getxattr: ENODATA, not ENOSYS, so the kernel does not cache EOPNOTSUPP and setxattr gets EPERM.
func (n *nodeBase) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENODATA
}

func (n *nodeBase) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, 0
}

// Setxattr gets EPERM, as on an append-only inode.
func (n *nodeBase) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if errno := n.ms.mutable("setxattr", n.path()); errno != 0 {
		return errno
	}
	return n.ms.refuse("setxattr", n.path(), syscall.EPERM, "extended attributes are not stored")
}

func (n *nodeBase) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if errno := n.ms.mutable("removexattr", n.path()); errno != 0 {
		return errno
	}
	return n.ms.refuse("removexattr", n.path(), syscall.EPERM, "extended attributes are not stored")
}
