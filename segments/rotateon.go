package segments

import (
	"bytes"
	"fmt"
)

// RotateOn selects where a full segment may end.
type RotateOn int

const (
	// RotateSize rotates before an append would pass SegmentSize: appends stay whole, lines may not.
	RotateSize RotateOn = iota
	// RotateNewline ends a full segment only after a newline, so sealed segments hold whole lines
	// even from writers flushing partial lines (4 KiB stdio buffers rarely end in one): the append
	// fills the segment up to its first newline. After SegmentSize more bytes without one it
	// rotates inside the line, and logs it.
	RotateNewline
)

// ParseRotateOn parses "size" and "newline".
func ParseRotateOn(s string) (RotateOn, error) {
	switch s {
	case "size":
		return RotateSize, nil
	case "newline":
		return RotateNewline, nil
	}
	return 0, fmt.Errorf("invalid rotation rule %q: want size or newline", s)
}

// String is the inverse of ParseRotateOn.
func (r RotateOn) String() string {
	switch r {
	case RotateSize:
		return "size"
	case RotateNewline:
		return "newline"
	}
	return fmt.Sprintf("RotateOn(%d)", int(r))
}

// ShortAppendError: only Written bytes were appended, then the rest failed with Err
// (RotateNewline). As after a short write(2), the caller may retry the rest.
type ShortAppendError struct {
	Written int
	Err     error
}

func (e *ShortAppendError) Error() string {
	return fmt.Sprintf("appended only the first %d bytes: %v", e.Written, e.Err)
}

func (e *ShortAppendError) Unwrap() error { return e.Err }

func (w *writer) endsInsideLine(seg *segment) bool {
	var last [1]byte
	n, _ := seg.readAt(w.fs, last[:], seg.size.Load()-1)
	return n == 1 && last[0] != '\n'
}

// appendAtNewline lets seg take b up to its first newline and the next segment the rest; lineWait
// counts what seg took past full. Caller holds appendMu.
func (w *writer) appendAtNewline(seg *segment, b []byte) (int64, *rotation, error) {
	if w.lineWait.seg != seg {
		w.lineWait.seg, w.lineWait.n = seg, 0
	}
	head := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		head = b[:i+1]
	}
	if w.lineWait.n+int64(len(head)) > w.log.cfg.SegmentSize {
		w.log.cfg.Logger.WithFields(map[string]any{"partition": w.name, "segment": seg.base, "size": seg.size.Load()}).
			Warn("rotate_on=newline: no newline within segment_size bytes past the segment's size; rotating inside a line")
		rot, err := w.policy.rotate(w, seg)
		if err != nil {
			return 0, nil, err
		}
		off, err := w.policy.append(w, w.list.active(), b)
		return off, rot, err
	}
	off, err := w.policy.append(w, seg, head)
	if err != nil {
		return 0, nil, err
	}
	w.lineWait.n += int64(len(head))
	rest := b[len(head):]
	if len(rest) == 0 {
		return off, nil, nil // the next append that does not fit rotates
	}
	rot, err := w.policy.rotate(w, seg)
	if err == nil {
		_, err = w.policy.append(w, w.list.active(), rest)
	}
	if err != nil {
		return off, rot, &ShortAppendError{Written: len(head), Err: err}
	}
	return off, rot, nil
}
