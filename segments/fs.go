package segments

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// dirSyscalls is the directory half of the syscall seam. A Config.Syscalls that implements it too
// (the tests' crash recorder and fault injectors) sees every mkdir, unlink, rmdir and rename.
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

// diskCalls is the seam, with the descriptor budget its opens and closes count against.
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

// syncDir makes dir's entries durable.
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

// mkdir creates dir; an existing one is fine: recovery may find half-created trees.
func (f diskCalls) mkdir(dir string) error {
	if err := f.dirs.Mkdir(dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return nil
}

// removeTree removes a tombstone and everything below it.
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

// tombstonePrefix marks directories being deleted; no topic or partition name starts with '.'.
const tombstonePrefix = ".deleted-"

// bury renames dir to a tombstone, makes that durable and removes it, so that a crash leaves the
// directory whole or a tombstone, never partly deleted.
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
