package directio

import (
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

const maxStalls = 3

// pwritevAll retries short writes from the last multiple of unit: O_DIRECT cannot resume mid-block.
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
