package segments

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// dirSyscalls is the namespace half of the seam: the directory operations segments makes besides the
// file operations of directio.Syscalls. A Config.Syscalls that also implements it (the crash recorder,
// the fault injectors in the tests) sees every mkdir, unlink, rmdir and rename; otherwise they go
// straight to the kernel.
type dirSyscalls interface {
	Mkdir(path string, perm uint32) error
	Unlink(path string) error
	Rmdir(path string) error
	Rename(from, to string) error
}

type osDirs struct{}

func (osDirs) Mkdir(path string, perm uint32) error { return unix.Mkdir(path, perm) }
func (osDirs) Unlink(path string) error             { return unix.Unlink(path) }
func (osDirs) Rmdir(path string) error              { return unix.Rmdir(path) }
func (osDirs) Rename(from, to string) error         { return unix.Rename(from, to) }

// diskCalls is every syscall segments makes, file and directory, behind the seam, and the descriptor
// budget its opens and closes are counted against.
type diskCalls struct {
	sys  directio.Syscalls
	dirs dirSyscalls
	fds  *fdCache
}

// newFS makes the Log's seam, whose descriptors are budgeted by maxOpen (see fdCache).
func newFS(sys directio.Syscalls, maxOpen int) diskCalls {
	c := newFDCache(sys, maxOpen)
	f := diskCalls{sys: budgetedSys{sys, c}, dirs: osDirs{}, fds: c}
	if d, ok := sys.(dirSyscalls); ok {
		f.dirs = d
	}
	return f
}

// syncDir makes the entries of dir (creations, unlinks, renames) durable.
func (f diskCalls) syncDir(dir string) error {
	fd, err := f.sys.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	err = f.sys.Fsync(fd)
	if cerr := f.sys.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// mkdir creates dir; an existing directory is fine because recovery may find half-created trees.
func (f diskCalls) mkdir(dir string) error {
	if err := f.dirs.Mkdir(dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return nil
}

// removeTree removes dir and everything below it, children first. It is only used on tombstones,
// which nothing reads or writes any more.
func (f diskCalls) removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			err = f.removeTree(p)
		} else if err = f.dirs.Unlink(p); err != nil {
			err = fmt.Errorf("remove %s: %w", p, err)
		}
		if err != nil {
			return err
		}
	}
	if err := f.dirs.Rmdir(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// tombstonePrefix marks directories being deleted. Topic names and partition names cannot start with
// '.', so a tombstone never collides with a live name; recovery removes any it finds.
const tombstonePrefix = ".deleted-"

// bury renames dir to a tombstone next to it, makes that durable, then removes the tombstone. After a
// crash the directory is either whole (rename not durable) or a tombstone that recovery removes, never
// a partition with some of its segments gone.
func (f diskCalls) bury(dir string, seq uint64) error {
	parent := filepath.Dir(dir)
	tomb := filepath.Join(parent, fmt.Sprintf("%s%s-%d", tombstonePrefix, filepath.Base(dir), seq))
	if err := f.dirs.Rename(dir, tomb); err != nil {
		return fmt.Errorf("rename %s to %s: %w", dir, tomb, err)
	}
	if err := f.syncDir(parent); err != nil {
		return err
	}
	return f.removeTree(tomb)
}
