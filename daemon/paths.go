package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultDataDir is the data dir without --data: $SEGFS_DATA, else per the XDG base directory spec.
func DefaultDataDir(getenv func(string) string) (string, error) {
	if d := getenv("SEGFS_DATA"); d != "" {
		return d, nil
	}
	if d := getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "segfs"), nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("no data dir: set --data, $SEGFS_DATA or $HOME")
		}
	}
	return filepath.Join(home, ".local", "share", "segfs"), nil
}

// DefaultLogFile is the log without --log-file: a sibling of the data dir, surviving a wipe of it.
func DefaultLogFile(dataDir string) string {
	return filepath.Clean(dataDir) + ".log"
}

// ResolveMountpoint resolves p as the kernel will, to compare with /proc/self/mountinfo. The last
// component is resolved only if it is a symlink: stat of a dead FUSE mount fails with ENOTCONN.
func ResolveMountpoint(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty mountpoint")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", p, err)
	}
	if abs == "/" {
		return abs, nil
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("mountpoint %s does not exist", p)
		}
		return "", fmt.Errorf("mountpoint %s: %w", p, err)
	}
	full := filepath.Join(dir, filepath.Base(abs))
	// A mount point is never a symlink, and lstat of one asks its daemon, which may serve nothing.
	if _, mounted, err := mountAt(full); err == nil && mounted {
		return full, nil
	}
	if fi, err := os.Lstat(full); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if full, err = filepath.EvalSymlinks(full); err != nil {
			return "", fmt.Errorf("mountpoint %s: %w", p, err)
		}
	}
	return full, nil
}
