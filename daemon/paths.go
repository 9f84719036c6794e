package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultDataDir is the data dir when --data is not given. It follows the XDG base directory spec, with
// $SEGFS_DATA first so one variable moves everything.
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

// DefaultLogFile is where a daemon logs when --log-file is not given: a sibling of the data dir, so it is found
// next to the data it talks about and survives a wipe of the data dir's contents.
func DefaultLogFile(dataDir string) string {
	return filepath.Clean(dataDir) + ".log"
}

// ResolveMountpoint makes p absolute and resolves symlinks in its parent the way the kernel will, so that it can
// be compared with /proc/self/mountinfo. The last component is resolved only if it is a symlink: on a dead FUSE
// mount stat of the mount point itself fails with ENOTCONN, and that case must still resolve.
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
	if fi, err := os.Lstat(full); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if full, err = filepath.EvalSymlinks(full); err != nil {
			return "", fmt.Errorf("mountpoint %s: %w", p, err)
		}
	}
	return full, nil
}
