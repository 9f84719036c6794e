package bench

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"segfs/segments"
)

// readFile is what a consumer needs of an open segment; *os.File is one. Tests wrap it to inject faults.
type readFile interface {
	io.ReadCloser
	Stat() (os.FileInfo, error)
}

func openOS(path string) (readFile, error) { return os.Open(path) }

// tailer follows one partition directory the way `tail -F` follows a multilog directory: it reads `current`
// and, when `current` is replaced by rotation (a new inode), finishes the old file and moves on. Sealed
// segments are named by their first byte offset in the partition ("%020d.log"), so the tailer always knows
// which file holds its next byte even when several rotations happened between two polls.
type tailer struct {
	dir    string
	open   func(string) (readFile, error)
	f      readFile
	ino    uint64 // inode of f
	base   int64  // partition offset of f's first byte
	pos    int64  // bytes read from f
	sealed bool   // f can no longer grow, so EOF means its end
}

func newTailer(dir string, open func(string) (readFile, error)) *tailer {
	return &tailer{dir: dir, open: open}
}

// Offset is the partition offset of the next byte the tailer will return.
func (t *tailer) Offset() int64 { return t.base + t.pos }

// Next reads new bytes into buf with at most one read() that returns data, and reports how long that read()
// took. n == 0 with a nil error means nothing new yet: the caller polls again later.
func (t *tailer) Next(buf []byte) (n int, took time.Duration, err error) {
	for {
		if t.f == nil {
			ok, err := t.openNext()
			if err != nil || !ok {
				return 0, 0, err
			}
		}
		start := time.Now()
		n, err := t.f.Read(buf)
		took = time.Since(start)
		if n > 0 {
			t.pos += int64(n)
			return n, took, nil
		}
		if err != nil && err != io.EOF {
			return 0, 0, fmt.Errorf("read %s at partition offset %d: %w", t.dir, t.Offset(), err)
		}
		if t.sealed {
			if t.pos == 0 {
				// Reopening would find this same file again and spin: segfs never seals an empty segment.
				return 0, 0, fmt.Errorf("%s: the segment at partition offset %d is sealed but empty", t.dir, t.base)
			}
			t.closeFile()
			continue
		}
		rotated, err := t.rotated()
		if err != nil || !rotated {
			return 0, 0, err
		}
		// Rotation seals the old file before it creates the new `current`, so from now on EOF is its end.
		t.sealed = true
	}
}

// rotated reports whether `current` is no longer the file the tailer holds.
func (t *tailer) rotated() (bool, error) {
	st, err := os.Stat(filepath.Join(t.dir, "current"))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil // between a rename-style rotation's two steps
	}
	if err != nil {
		return false, fmt.Errorf("stat %s/current: %w", t.dir, err)
	}
	return inode(st) != t.ino, nil
}

// openNext opens the file that starts at Offset(): the sealed segment of that name if it exists, else
// `current`. It returns false when neither is there yet.
func (t *tailer) openNext() (bool, error) {
	off := t.Offset()
	sealedPath := filepath.Join(t.dir, segments.SegmentName(off))
	if f, ino, err := t.openIno(sealedPath); err == nil {
		t.use(f, ino, true)
		return true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	f, ino, err := t.openIno(filepath.Join(t.dir, "current"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// The segment at off may have been sealed between the two opens; then `current` is either that same
	// inode (fine) or a later segment, and the sealed file must be read first.
	st, err := os.Stat(sealedPath)
	switch {
	case err == nil && inode(st) != ino:
		f.Close()
		return t.openNext()
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		f.Close()
		return false, fmt.Errorf("stat %s: %w", sealedPath, err)
	}
	t.use(f, ino, err == nil)
	return true, nil
}

func (t *tailer) openIno(path string) (readFile, uint64, error) {
	f, err := t.open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("fstat %s: %w", path, err)
	}
	return f, inode(st), nil
}

func (t *tailer) use(f readFile, ino uint64, sealed bool) { t.f, t.ino, t.sealed = f, ino, sealed }

func (t *tailer) closeFile() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	t.base += t.pos
	t.pos = 0
}

// Close releases the open segment, if any.
func (t *tailer) Close() { t.closeFile() }

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
