package segments

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

const lockName = ".lock"

// lockDir takes an exclusive, non-blocking flock on dir/.lock. It belongs to the open file
// description, so a second Open in the process fails too, and a crashed segfs leaves no stale lock.
func lockDir(dir string) (int, error) {
	path := filepath.Join(dir, lockName)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return -1, fmt.Errorf("open lock file %s: %w", path, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		_ = unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return -1, fmt.Errorf("%w: %s is in use by another segfs (flock on %s is held); unmount it first", ErrLocked, dir, path)
		}
		return -1, fmt.Errorf("lock %s: %w", path, err)
	}
	return fd, nil
}

func unlockDir(fd int) error {
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("release lock: %w", err)
	}
	return nil
}
