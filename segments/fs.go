package segments

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// dirSyscalls lets a Config.Syscalls (the tests' crash recorder) see directory operations too.
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

type diskCalls struct {
	sys  directio.Syscalls
	dirs dirSyscalls
	fds  *fdCache
}

func newFS(sys directio.Syscalls, maxOpen int) diskCalls {
	c := newFDCache(sys, maxOpen)
	f := diskCalls{sys: budgetedSys{sys, c}, dirs: osDirs{}, fds: c}
	if d, ok := sys.(dirSyscalls); ok {
		f.dirs = d
	}
	return f
}

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

// mkdir accepts an existing dir: recovery may find half-created trees.
func (f diskCalls) mkdir(dir string) error {
	if err := f.dirs.Mkdir(dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return nil
}

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

// bury renames dir to a tombstone before removing it, so a crash never leaves it partly deleted.
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
