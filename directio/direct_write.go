package directio

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// planner's slices are reused so the write path does not allocate.
type planner struct {
	iovs   [][]byte
	blocks [][]byte
	cur    []byte
	start  int // filled, not yet in iovs
	fill   int
}

func (f *directFile) Write(p []byte) (int, error) {
	f.one[0] = p
	n, err := f.WriteV(f.one[:])
	f.one[0] = nil
	return n, err
}

func (f *directFile) WriteV(bufs [][]byte) (int, error) {
	if f.closed {
		return 0, errClosed("write", f.path)
	}
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	if total == 0 {
		return 0, nil
	}
	if f.tl+total < f.bs {
		f.mu.Lock()
		for _, b := range bufs {
			f.tl += copy(f.tail[f.tl:], b)
		}
		f.size.Store(f.base + int64(f.tl))
		f.mu.Unlock()
		return total, nil
	}
	written, rem := f.build(bufs)
	err := f.pwrite(f.plan.iovs, f.base)
	if err == nil {
		// rem may sit in a scratch block just written, so copy it only now.
		f.advance(written, rem)
		if f.fileSize >= 0 {
			f.fileSize = f.base
		}
		f.flushed = 0
	}
	f.release()
	if err != nil {
		return 0, f.rollback(fmt.Errorf("write %s at %d: %w", f.path, f.base, err))
	}
	return total, nil
}

// WriteFlush writes the full blocks and the padded tail in one pwritev, after BeforePad.
func (f *directFile) WriteFlush(p []byte) (int, error) {
	if f.closed {
		return 0, errClosed("write", f.path)
	}
	if f.tl+len(p) < f.bs {
		oldTl := f.tl
		if _, err := f.Write(p); err != nil {
			return 0, err
		}
		if err := f.Flush(); err != nil {
			f.mu.Lock()
			f.tl = oldTl
			f.size.Store(f.base + int64(f.tl))
			f.mu.Unlock()
			return 0, err
		}
		return len(p), nil
	}
	f.one[0] = p
	written, rem := f.build(f.one[:])
	f.one[0] = nil
	if len(rem) > 0 {
		blk := f.pool.Get()
		f.plan.blocks = append(f.plan.blocks, blk)
		pad := blk[:f.bs]
		clear(pad[copy(pad, rem):])
		f.plan.iovs = append(f.plan.iovs, pad)
		if f.beforePad != nil {
			if err := f.beforePad(f.base+written+int64(len(rem)), pad); err != nil {
				f.release()
				return 0, fmt.Errorf("write %s: before pad: %w", f.path, err)
			}
		}
	}
	err := f.pwrite(f.plan.iovs, f.base)
	if err == nil {
		f.advance(written, rem)
		if f.fileSize >= 0 {
			f.fileSize = f.base
			if f.tl > 0 {
				f.fileSize += int64(f.bs)
			}
		}
		f.flushed = f.tl
	}
	f.release()
	if err != nil {
		return 0, f.rollback(fmt.Errorf("write %s at %d: %w", f.path, f.base, err))
	}
	return len(p), nil
}

// build fills f.plan.iovs with full blocks from f.base and returns their length and the new tail.
func (f *directFile) build(bufs [][]byte) (written int64, rem []byte) {
	pl := &f.plan
	pl.iovs, pl.cur, pl.start, pl.fill = pl.iovs[:0], nil, 0, 0
	bi, bo := 0, 0
	if f.tl > 0 {
		// Readers may be copying tail[:tl].
		f.mu.Lock()
		n := f.tl
		for n < f.bs {
			c := copy(f.tail[n:], bufs[bi][bo:])
			n, bo = n+c, bo+c
			if bo == len(bufs[bi]) {
				bi, bo = bi+1, 0
			}
		}
		f.mu.Unlock()
		pl.iovs = append(pl.iovs, f.tail)
	}
	mask := f.bs - 1
	for bi < len(bufs) {
		b := bufs[bi][bo:]
		if len(b) == 0 {
			bi, bo = bi+1, 0
			continue
		}
		if partial := (pl.fill - pl.start) & mask; partial != 0 {
			c := copy(pl.cur[pl.fill:pl.fill+min(f.bs-partial, len(b))], b)
			pl.fill, bo = pl.fill+c, bo+c
			f.emitIfFull()
			continue
		}
		if len(b) >= f.bs && IsAligned(b, f.align.Memory) {
			f.emitPending()
			k := len(b) &^ mask
			pl.iovs = append(pl.iovs, b[:k])
			bo += k
			continue
		}
		if bi == len(bufs)-1 && len(b) < f.bs {
			rem = b
			break
		}
		if pl.cur == nil {
			pl.cur = f.pool.Get()
			pl.blocks = append(pl.blocks, pl.cur)
			pl.start, pl.fill = 0, 0
		}
		c := copy(pl.cur[pl.fill:], b)
		pl.fill, bo = pl.fill+c, bo+c
		f.emitIfFull()
	}
	if pl.cur != nil {
		full := pl.start + (pl.fill-pl.start)&^mask
		if full > pl.start {
			pl.iovs = append(pl.iovs, pl.cur[pl.start:full])
		}
		if rem == nil {
			rem = pl.cur[full:pl.fill]
		}
	}
	for _, v := range pl.iovs {
		written += int64(len(v))
	}
	return written, rem
}

func (f *directFile) emitPending() {
	pl := &f.plan
	if pl.fill > pl.start {
		pl.iovs = append(pl.iovs, pl.cur[pl.start:pl.fill])
		pl.start = pl.fill
	}
}

func (f *directFile) emitIfFull() {
	if pl := &f.plan; pl.cur != nil && pl.fill == len(pl.cur) {
		f.emitPending()
		pl.cur = nil
	}
}

func (f *directFile) release() {
	pl := &f.plan
	for i, b := range pl.blocks {
		f.pool.Put(b)
		pl.blocks[i] = nil
	}
	pl.blocks = pl.blocks[:0]
	clear(pl.iovs)
	pl.iovs, pl.cur = pl.iovs[:0], nil
}

func (f *directFile) pwrite(iovs [][]byte, off int64) error {
	err := pwritevAll(f.sys, f.fd, iovs, off, f.bs)
	if err == nil {
		f.verified = true
		return nil
	}
	if !f.verified && errors.Is(err, unix.EINVAL) {
		return directUnsupported(err)
	}
	return err
}

// rollback restores [base, fileSize); if that fails, the next Flush and FlushAndTruncate repair it.
func (f *directFile) rollback(cause error) error {
	if f.fileSize >= 0 {
		err := f.restore()
		if err == nil {
			return cause
		}
		cause = errors.Join(cause, fmt.Errorf("restore %s to %d bytes: %w", f.path, f.fileSize, err))
	}
	f.fileSize, f.flushed = -1, 0
	return cause
}

func (f *directFile) restore() error {
	if f.fileSize > f.base {
		blk := f.pool.Get()
		pad := blk[:f.bs]
		clear(pad[copy(pad, f.tail[:f.flushed]):])
		f.plan.iovs = append(f.plan.iovs[:0], pad)
		err := pwritevAll(f.sys, f.fd, f.plan.iovs, f.base, f.bs)
		f.plan.iovs[0] = nil
		f.pool.Put(blk)
		if err != nil {
			return err
		}
	}
	err := retryEINTR(func() error { return f.sys.Ftruncate(f.fd, f.fileSize) })
	if err != nil {
		f.res.lost()
		return err
	}
	f.res.released()
	return nil
}

func (f *directFile) Flush() error {
	if f.closed {
		return errClosed("flush", f.path)
	}
	if f.tl == f.flushed {
		return nil
	}
	f.mu.Lock()
	clear(f.tail[f.tl:])
	f.mu.Unlock()
	if f.beforePad != nil {
		if err := f.beforePad(f.base+int64(f.tl), f.tail); err != nil {
			return fmt.Errorf("flush %s: before pad: %w", f.path, err)
		}
	}
	f.plan.iovs = append(f.plan.iovs[:0], f.tail)
	err := f.pwrite(f.plan.iovs, f.base)
	f.plan.iovs[0] = nil
	if err != nil {
		return f.rollback(fmt.Errorf("flush %s at %d: %w", f.path, f.base, err))
	}
	if f.fileSize >= 0 {
		f.fileSize = max(f.fileSize, f.base+int64(f.bs))
	}
	f.flushed = f.tl
	return nil
}

func (f *directFile) FlushAndTruncate() error {
	if err := f.Flush(); err != nil {
		return err
	}
	size := f.base + int64(f.tl)
	if f.fileSize == size {
		return nil
	}
	if err := retryEINTR(func() error { return f.sys.Ftruncate(f.fd, size) }); err != nil {
		f.res.lost()
		return fmt.Errorf("truncate %s to %d: %w", f.path, size, err)
	}
	f.fileSize, f.truncDirty = size, true
	f.res.released()
	return nil
}

// advance records a successful pwritev: written bytes are on disk and rem is the new tail.
func (f *directFile) advance(written int64, rem []byte) {
	f.mu.Lock()
	f.base += written
	f.tl = copy(f.tail, rem)
	f.size.Store(f.base + int64(f.tl))
	f.mu.Unlock()
}
