// Package follow follows a segfs partition by partition offset, across every rotation, through the
// partition's .stream file. It is the client side of `segfs tail`.
//
// docs/architecture.md shows where this package sits among the others.
package follow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// StreamName is the file in every partition directory whose offsets are partition offsets.
const StreamName = ".stream"

// Options says where following starts and how often an idle partition is polled.
type Options struct {
	// From is the partition offset of the first byte to copy; ignored when FromStart or FromEnd.
	From int64
	// FromStart starts at the oldest byte retention kept.
	FromStart bool
	// FromEnd starts at the end: only bytes appended from now on.
	FromEnd bool
	// Poll is the wait between reads that found no new bytes; zero means 100ms.
	Poll time.Duration
}

// PurgedError says that the offset a follower needs was removed (by retention or rm of a segment).
type PurgedError struct {
	Partition      string
	Offset, Oldest int64
}

func (e *PurgedError) Error() string {
	return fmt.Sprintf("offset %d of %s was removed by retention; the oldest byte kept is at offset %d (--from %d)",
		e.Offset, e.Partition, e.Oldest, e.Oldest)
}

// Follow copies the partition at dir (MNT/<topic>/<p>) to w from the offset opts names until ctx is
// done (then it returns nil) or a read or write fails. It returns a *PurgedError when the next byte
// it needs is no longer kept.
func Follow(ctx context.Context, dir string, opts Options, w io.Writer) error {
	path := filepath.Join(dir, StreamName)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s is not a segfs partition directory: %w", dir, err)
		}
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	poll := opts.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	off := opts.From
	switch {
	case opts.FromEnd:
		if off, err = size(fd); err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
	case opts.FromStart:
		if off, err = oldest(fd); err != nil {
			return fmt.Errorf("seek %s: %w", path, err)
		}
	case off < 0:
		return fmt.Errorf("offset %d: offsets are not negative", off)
	}
	buf := make([]byte, 1<<20)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		n, err := unix.Pread(fd, buf, off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			off += int64(n)
			continue
		}
		switch {
		case errors.Is(err, unix.ENODATA):
			first, serr := oldest(fd)
			if serr != nil {
				return fmt.Errorf("offset %d of %s was removed: %w", off, dir, serr)
			}
			return &PurgedError{Partition: dir, Offset: off, Oldest: first}
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("read %s at %d: %w", path, off, err)
		}
		timer.Reset(poll)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
	}
}

func size(fd int) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

// oldest is the first offset the partition still keeps: SEEK_DATA from 0, or the end when nothing
// is kept (an empty partition, or every byte purged).
func oldest(fd int) (int64, error) {
	off, err := unix.Seek(fd, 0, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return size(fd)
	}
	return off, err
}
