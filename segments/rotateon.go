package segments

import (
	"bytes"
	"fmt"
)

// RotateOn selects where a full segment may end.
type RotateOn int

const (
	// RotateSize rotates before the append that would take the active segment past SegmentSize: an
	// append is never split, a line written in pieces may be.
	RotateSize RotateOn = iota
	// RotateNewline ends a full segment only after a newline, so that every sealed segment holds whole
	// lines even from writers that flush partial lines (stdio buffers, dd bs=4096): an append that does
	// not fit a segment ending inside a line goes into it up to its first newline, and the rest starts
	// the next segment. A segment may so pass SegmentSize by up to SegmentSize more; past that it
	// rotates inside the line, and the log says so.
	RotateNewline
)

// ParseRotateOn parses the rotate_on= option values "size" and "newline".
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

// ShortAppendError is what Append returns when only the first Written bytes of the append were
// appended: with RotateNewline an append is cut after a newline at a rotation, and the rotation or
// the append of the rest failed with Err. As for a short write(2), the caller may retry the rest.
type ShortAppendError struct {
	Written int
	Err     error
}

func (e *ShortAppendError) Error() string {
	return fmt.Sprintf("appended only the first %d bytes: %v", e.Written, e.Err)
}

func (e *ShortAppendError) Unwrap() error { return e.Err }

// endsInsideLine reports whether the non-empty segment seg ends inside a line.
func (w *writer) endsInsideLine(seg *segment) bool {
	var last [1]byte
	n, _ := seg.readAt(w.fs, last[:], seg.size.Load()-1)
	return n == 1 && last[0] != '\n'
}

// appendAtNewline appends b, which does not fit seg, the active segment, under RotateNewline: seg
// ends inside a line, so it takes b up to its first newline (all of b if it has none), and the rest
// goes into the next segment. seg takes at most SegmentSize bytes past the point where it was full
// (w.lineWait counts them); beyond that the rotation comes first, inside the line. Caller holds
// appendMu.
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
		return off, nil, nil // the next append that does not fit rotates, at this line's end
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
