package directio

import (
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// maxStalls bounds how often a pwritev may return a count that makes no progress a retry can resume
// from, before the short write is surfaced instead of spinning.
const maxStalls = 3

// pwritevAll writes iovs at off, in several pwritev calls when there are more than IOV_MAX of them,
// retrying short writes. A retry resumes at the last multiple of unit that was written: for O_DIRECT a
// short count inside a block cannot be resumed mid-block, so that block is written again (unit is the
// block size), while buffered I/O resumes at the exact byte (unit 1). iovs' entries are resliced.
func pwritevAll(sys Syscalls, fd int, iovs [][]byte, off int64, unit int) error {
	for len(iovs) > 0 {
		chunk := iovs[:min(len(iovs), maxIovecs)]
		n, err := pwritevChunk(sys, fd, chunk, off, unit)
		if err != nil {
			return err
		}
		off += n
		iovs = iovs[len(chunk):]
	}
	return nil
}

func pwritevChunk(sys Syscalls, fd int, iovs [][]byte, off int64, unit int) (int64, error) {
	var want int64
	for _, b := range iovs {
		want += int64(len(b))
	}
	var done int64
	stalls := 0
	for done < want {
		n, err := sys.Pwritev(fd, iovs, off+done)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		if int64(n) >= want-done {
			return want, nil
		}
		adv := int64(n) &^ int64(unit-1)
		if adv <= 0 {
			if stalls++; stalls >= maxStalls {
				return done, fmt.Errorf("pwritev at %d wrote %d of %d bytes: %w", off+done, n, want-done, io.ErrShortWrite)
			}
			continue
		}
		stalls = 0
		done += adv
		iovs = advance(iovs, adv)
	}
	return done, nil
}

// advance drops the first n bytes from iovs.
func advance(iovs [][]byte, n int64) [][]byte {
	for n > 0 && len(iovs) > 0 {
		if int64(len(iovs[0])) > n {
			iovs[0] = iovs[0][n:]
			return iovs
		}
		n -= int64(len(iovs[0]))
		iovs = iovs[1:]
	}
	return iovs
}
