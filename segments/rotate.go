package segments

import (
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// sealLocked makes seg durable with its directory entry, moves readers to a read-only descriptor
// and closes its File. Nothing reaches the next segment before.
func (w *writer) sealLocked(seg *segment, syncDir bool) error {
	f := seg.wfile
	rfd, err := w.fs.sys.Open(seg.path, unix.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("seal %s: open: %w", seg.path, err)
	}
	// Take the directory's descriptor first: out of descriptors, the seal fails before changing anything.
	dfd := -1
	if syncDir {
		if dfd, err = w.fs.sys.Open(w.dir, unix.O_RDONLY|unix.O_DIRECTORY, 0); err != nil {
			_ = w.fs.sys.Close(rfd)
			return fmt.Errorf("seal %s: open %s: %w", seg.path, w.dir, err)
		}
		defer func() { _ = w.fs.sys.Close(dfd) }()
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
	seg.file, seg.buf = nil, nil
	w.fs.fds.adopt(&seg.rfd, rfd)
	seg.size.Store(f.Size())
	seg.sealed.Store(true)
	seg.mu.Unlock()
	if buf != nil {
		w.budget.discard(&w.mem, buf)
	}
	seg.wfile = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("seal %s: %w", seg.path, err)
	}
	if err := seg.keepMtime(); err != nil {
		w.log.cfg.Logger.WithError(err).Debug("seal")
	}
	w.log.tierSealed() // the uploader may take it once listed as sealed
	if !syncDir {
		return nil
	}
	if err := w.fs.sys.Fsync(dfd); err != nil {
		return fmt.Errorf("sync dir %s: %w", w.dir, err)
	}
	return nil
}

func (w *writer) openFile(seg *segment) (directio.File, error) {
	l := w.log
	f, err := directio.Open(seg.path, directio.Options{
		Mode: l.cfg.IO, Syscalls: w.fs.sys, Alignment: l.align, Pool: l.scratch,
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
		seg.mtime.Store(time.Unix(st.Mtim.Unix()).UnixNano()) // keepMtime
	}
	return f, nil
}

func (w *writer) createSegment(base int64, syncDir bool) (*segment, error) {
	seg := newSegment(base, filepath.Join(w.dir, SegmentName(base)))
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
