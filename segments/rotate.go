package segments

import (
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// sealLocked makes seg, which the caller made exact with FlushAndTruncate, durable and switches its
// readers to a read-only descriptor: fsync of the file, stale-record check, and with syncDir an fsync
// of the directory. Only after all of that does anything reach the next segment, so recovery can
// trust every segment but the last by its size. The File is closed here, so nothing can write to a
// sealed segment again.
func (w *writer) sealLocked(seg *segment, syncDir bool) error {
	f := seg.wfile
	rfd, err := w.fs.sys.Open(seg.path, unix.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("seal %s: open: %w", seg.path, err)
	}
	if err := w.fs.sys.Fsync(rfd); err != nil {
		_ = w.fs.sys.Close(rfd)
		return fmt.Errorf("seal %s: fsync: %w", seg.path, err)
	}
	if err := w.settleCommit(seg); err != nil {
		_ = w.fs.sys.Close(rfd)
		return err
	}
	seg.mu.Lock()
	buf := seg.buf
	seg.file, seg.buf, seg.rfd = nil, nil, rfd
	seg.size.Store(f.Size())
	seg.mtime.Store(time.Now().UnixNano())
	seg.sealed.Store(true)
	seg.mu.Unlock()
	if buf != nil {
		w.budget.discard(w, buf)
	}
	seg.wfile = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("seal %s: %w", seg.path, err)
	}
	if !syncDir {
		return nil
	}
	return w.fs.syncDir(w.dir)
}

// openFile opens seg's file for appending (creating it if missing).
func (w *writer) openFile(seg *segment) (directio.File, error) {
	l := w.log
	f, err := directio.Open(seg.path, directio.Options{
		Mode: l.cfg.IO, Syscalls: l.cfg.Syscalls, Alignment: l.align, Pool: l.scratch,
		BeforePad: func(size int64, padded []byte) error { return w.beforePad(seg, size, padded) },
	})
	if err != nil {
		return nil, err
	}
	seg.wfile, seg.file = f, f
	if l.cfg.Persist == Deferred {
		seg.buf = newDirtyBuf(l.chunk, f.Size())
	}
	seg.size.Store(f.Size())
	seg.mtime.Store(time.Now().UnixNano())
	var st unix.Stat_t
	if err := unix.Stat(seg.path, &st); err == nil {
		seg.ino = st.Ino
	}
	return f, nil
}

// createSegment creates the empty segment file at base and, with syncDir, makes its directory entry
// durable.
func (w *writer) createSegment(base int64, syncDir bool) (*segment, error) {
	seg := &segment{base: base, path: filepath.Join(w.dir, SegmentName(base)), rfd: -1}
	f, err := w.openFile(seg)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if !syncDir {
		return seg, nil
	}
	if err := w.fs.syncDir(w.dir); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("create segment %s: %w", seg.path, err)
	}
	return seg, nil
}
