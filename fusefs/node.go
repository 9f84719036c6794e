package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// nodeBase is embedded by every node: it answers statfs and extended attributes the same way everywhere.
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

// path names the node for log lines.
func (n *nodeBase) path() string { return "/" + n.Path(nil) }

// Statfs reports the filesystem holding the data directory: its free space is what appends consume.
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

// Getxattr: segfs stores no extended attributes. ENODATA (not ENOSYS) keeps the kernel asking, so
// setxattr keeps reaching Setxattr and gets EPERM rather than a cached EOPNOTSUPP.
func (n *nodeBase) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENODATA
}

func (n *nodeBase) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, 0
}

// Setxattr gets EPERM, as on an append-only inode of a local filesystem.
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
