package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// dirBase refuses creating or moving names; each directory type overrides what it allows.
type dirBase struct {
	nodeBase
	// backing is the data dir's directory, whose times this one shows, so they survive remounts.
	backing string
}

var (
	_ = (fs.NodeGetattrer)((*dirBase)(nil))
	_ = (fs.NodeSetattrer)((*dirBase)(nil))
	_ = (fs.NodeCreater)((*dirBase)(nil))
	_ = (fs.NodeMknoder)((*dirBase)(nil))
	_ = (fs.NodeSymlinker)((*dirBase)(nil))
	_ = (fs.NodeLinker)((*dirBase)(nil))
	_ = (fs.NodeRenamer)((*dirBase)(nil))
	_ = (fs.NodeMkdirer)((*dirBase)(nil))
	_ = (fs.NodeRmdirer)((*dirBase)(nil))
	_ = (fs.NodeUnlinker)((*dirBase)(nil))
	_ = (fs.NodeFsyncer)((*dirBase)(nil))
)

// dirAttr takes times from the backing directory, or the mount's start if it is being deleted.
func (f *mountState) dirAttr(backing string, out *fuse.Attr) {
	mode := uint32(0o755)
	if f.readOnly {
		mode = 0o555
	}
	out.Mode = fuse.S_IFDIR | mode
	out.Nlink = 2
	out.Uid, out.Gid = f.uid, f.gid
	out.Blksize = blockSize
	var st unix.Stat_t
	if err := unix.Stat(backing, &st); err != nil {
		out.SetTimes(&f.started, &f.started, &f.started)
		return
	}
	out.Atime, out.Atimensec = uint64(st.Atim.Sec), uint32(st.Atim.Nsec)
	out.Mtime, out.Mtimensec = uint64(st.Mtim.Sec), uint32(st.Mtim.Nsec)
	out.Ctime, out.Ctimensec = uint64(st.Ctim.Sec), uint32(st.Ctim.Nsec)
}

func (f *mountState) dirEntry(backing string, out *fuse.EntryOut) {
	f.dirAttr(backing, &out.Attr)
	out.SetEntryTimeout(dirTimeout)
	out.SetAttrTimeout(dirAttrTimeout)
}

// dotEntries starts a listing with "." and "..", which the kernel does not add.
func (d *dirBase) dotEntries(capacity int) []fuse.DirEntry {
	entries := make([]fuse.DirEntry, 0, capacity+2)
	self := d.StableAttr().Ino
	parent := self // the root is its own parent
	if _, p := d.Parent(); p != nil {
		parent = p.StableAttr().Ino
	}
	return append(entries,
		fuse.DirEntry{Name: ".", Mode: fuse.S_IFDIR, Ino: self},
		fuse.DirEntry{Name: "..", Mode: fuse.S_IFDIR, Ino: parent})
}

func (d *dirBase) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.ms.dirAttr(d.backing, &out.Attr)
	out.SetTimeout(dirAttrTimeout)
	return 0
}

func (d *dirBase) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := d.ms.checkSetattr(d.path(), in); errno != 0 {
		return errno
	}
	return d.Getattr(ctx, fh, out)
}

func (d *dirBase) refuseCreate(op, name, why string) syscall.Errno {
	path := d.path() + "/" + name
	if errno := d.ms.checkName(op, path, name); errno != 0 {
		return errno
	}
	if errno := d.ms.mutable(op, path); errno != 0 {
		return errno
	}
	return d.ms.refuse(op, path, syscall.EPERM, why)
}

func (d *dirBase) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, d.refuseCreate("create", name, "only segfs creates files")
}

func (d *dirBase) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.refuseCreate("mknod", name, "only segfs creates files")
}

func (d *dirBase) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.refuseCreate("symlink", name, "no symlinks in segfs")
}

func (d *dirBase) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.refuseCreate("link", name, "no hard links in segfs")
}

func (d *dirBase) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if errno := d.ms.checkName("rename", d.path()+"/"+newName, newName); errno != 0 {
		return errno
	}
	return d.refuseCreate("rename", name, "names are fixed: topics, partition numbers and segment bases")
}

func (d *dirBase) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, d.refuseCreate("mkdir", name, "partitions hold only segments")
}

// Rmdir reaches dirBase only in partitions, which hold no directories.
func (d *dirBase) Rmdir(ctx context.Context, name string) syscall.Errno {
	if errno := d.ms.checkName("rmdir", d.path()+"/"+name, name); errno != 0 {
		return errno
	}
	return d.ms.refuse("rmdir", d.path()+"/"+name, syscall.ENOTDIR, "not a directory")
}

// Unlink reaches dirBase only in the root and topics, which hold only directories.
func (d *dirBase) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := d.ms.checkName("unlink", d.path()+"/"+name, name); errno != 0 {
		return errno
	}
	return d.ms.refuse("unlink", d.path()+"/"+name, syscall.EISDIR, "is a directory")
}

// Fsync succeeds: segments makes directory changes durable itself.
func (d *dirBase) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	return 0
}
