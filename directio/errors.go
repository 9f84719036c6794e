package directio

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// ErrDirectIOUnsupported is wrapped by the error returned when the filesystem rejects O_DIRECT,
// either at open or on the first write.
var ErrDirectIOUnsupported = errors.New("filesystem does not support O_DIRECT")

// maxIovecs is IOV_MAX on Linux; longer vectors are split into several pwritev calls.
const maxIovecs = 1024

// directUnsupported is wrapped by the caller with the operation and the path.
func directUnsupported(err error) error {
	return fmt.Errorf("%w (%w); use io=buffered on this filesystem", ErrDirectIOUnsupported, err)
}

func errClosed(op, path string) error {
	return fmt.Errorf("%s %s: %w", op, path, fs.ErrClosed)
}

// retryEINTR runs fn until it stops failing with EINTR; some filesystems (FUSE, NFS) return it.
func retryEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
