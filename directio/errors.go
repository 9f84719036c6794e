package directio

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// ErrDirectIOUnsupported is wrapped when the filesystem rejects O_DIRECT, at open or first write.
var ErrDirectIOUnsupported = errors.New("filesystem does not support O_DIRECT")

// maxIovecs is IOV_MAX on Linux.
const maxIovecs = 1024

func directUnsupported(err error) error {
	return fmt.Errorf("%w (%w); use io=buffered on this filesystem", ErrDirectIOUnsupported, err)
}

func errClosed(op, path string) error {
	return fmt.Errorf("%s %s: %w", op, path, fs.ErrClosed)
}

// retryEINTR retries EINTR, which FUSE and NFS return.
func retryEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
