package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"segfs/integration/internal/recstream"
)

// TestLongWriterWithReaders: issue 5 §1.4. One process holds current open with O_APPEND and writes 50 MiB in
// random-size chunks across ~50 rotations while readers follow the partition through the mount. Every byte
// every reader sees, and the final log, equal the writer's deterministic stream: nothing lost or reordered.
func TestLongWriterWithReaders(t *testing.T) {
	const total = 50 * mib
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=1MiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	seed := uint64(time.Now().UnixNano())
	t.Logf("stream seed %d", seed)
	want := recstream.StreamBytes(seed, total)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out lockedBuffer
	writer := exec.CommandContext(ctx, binaries.appender, "stream", "-path", filepath.Join(part, "current"),
		"-seed", strconv.FormatUint(seed, 10), "-bytes", strconv.Itoa(total), "-max-chunk", strconv.Itoa(256<<10))
	writer.Stdout, writer.Stderr = &out, &out
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}

	type followResult struct {
		st  followStats
		err error
	}
	followErrs := make(chan followResult, 2)
	for i := 0; i < 2; i++ {
		go func() { st, err := follow(ctx, part, want); followErrs <- followResult{st, err} }()
	}
	stopCheck, checkErr := make(chan struct{}), make(chan error, 1)
	var checks int
	go func() {
		n, err := checkSealedRepeatedly(part, want, stopCheck)
		checks = n
		checkErr <- err
	}()

	if err := writer.Wait(); err != nil {
		t.Errorf("writer: %v: %s", err, out.String())
		cancel() // the followers would wait for bytes that never come
	}
	for i := 0; i < 2; i++ {
		res := <-followErrs
		if res.err != nil {
			t.Errorf("reader: %v", res.err)
		}
		t.Logf("reader %d: %d bytes read from current, %d from sealed segments, %d opens of current during a rotation", i, res.st.fromCurrent, res.st.fromSealed, res.st.retries)
	}
	close(stopCheck)
	if err := <-checkErr; err != nil {
		t.Errorf("sealed-segment checker: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("sealed-segment checker verified %d segment reads", checks)

	got, segs := readPartition(t, part)
	if !bytes.Equal(got, want) {
		t.Fatalf("final log (%d bytes) differs from the stream (%d bytes) at byte %d", len(got), len(want), firstDiff(got, want))
	}
	if len(segs) < 45 {
		t.Errorf("only %d segments for 50 MiB with segment_size=1MiB", len(segs))
	}
	checkBacking(t, filepath.Join(data, "T", "0"), segs, want)
}

// follow reads the partition at dir from offset 0 to len(want) through the mount while it is being written,
// the way a consumer does: sealed segments by name, then current until it is sealed. It finds the segment an
// open current belongs to by its inode, which keeps its number when it becomes <base>.log.
// followStats says how a follower got its bytes, to show the readers really overlapped the writer.
type followStats struct{ fromCurrent, fromSealed, retries int64 }

func follow(ctx context.Context, dir string, want []byte) (st followStats, err error) {
	var pos int64
	total := int64(len(want))
	buf := make([]byte, 256<<10)
	var cur *os.File
	var curIno uint64
	var curBase int64
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	check := func(b []byte, at int64) error {
		if !bytes.Equal(b, want[at:at+int64(len(b))]) {
			return fmt.Errorf("read %d bytes at partition offset %d that differ from what was written (at +%d)", len(b), at, firstDiff(b, want[at:at+int64(len(b))]))
		}
		return nil
	}
	for pos < total {
		if ctx.Err() != nil {
			return st, fmt.Errorf("stopped at offset %d of %d (open current: inode %d base %d): %w", pos, total, curIno, curBase, ctx.Err())
		}
		if cur == nil {
			segs, err := readPartitionDir(dir)
			if err != nil {
				return st, err
			}
			if s, ok := sealedAt(segs, pos); ok {
				b, err := os.ReadFile(filepath.Join(dir, s.Name))
				if err != nil {
					return st, err
				}
				if int64(len(b)) != s.Size {
					return st, fmt.Errorf("sealed %s: listed %d bytes, read %d", s.Name, s.Size, len(b))
				}
				if err := check(b[pos-s.Base:], pos); err != nil {
					return st, err
				}
				st.fromSealed += s.Base + s.Size - pos
				pos = s.Base + s.Size
				continue
			}
			f, err := os.Open(filepath.Join(dir, "current"))
			if err != nil {
				return st, err
			}
			info, err := f.Stat()
			if err != nil {
				f.Close()
				return st, err
			}
			ino := info.Sys().(*syscall.Stat_t).Ino
			if isSealedIno(segs, ino) {
				// current resolved to a segment already sealed: TestRotationIsAtomicRename fails on that; here
				// it only means "rotation in progress", so look again.
				f.Close()
				st.retries++
				time.Sleep(time.Millisecond)
				continue
			}
			segs, err = readPartitionDir(dir)
			if err != nil {
				f.Close()
				return st, err
			}
			base := segs[len(segs)-1].Base
			for _, s := range segs {
				if !s.Current && s.Ino == ino {
					base = s.Base
				}
			}
			if base != pos {
				f.Close()
				if base < pos {
					return st, fmt.Errorf("current (inode %d) starts at %d, but offsets up to %d were already read", ino, base, pos)
				}
				continue // bytes before base are in a segment sealed meanwhile
			}
			cur, curIno, curBase = f, ino, base
		}
		n, err := cur.ReadAt(buf, pos-curBase)
		if n > 0 {
			if err := check(buf[:n], pos); err != nil {
				return st, err
			}
			pos += int64(n)
			st.fromCurrent += int64(n)
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return st, fmt.Errorf("read current at %d: %w", pos-curBase, err)
		}
		segs, err := readPartitionDir(dir)
		if err != nil {
			return st, err
		}
		for _, s := range segs {
			if !s.Current && s.Ino == curIno {
				if s.Base != curBase {
					return st, fmt.Errorf("current opened at base %d became sealed %s", curBase, s.Name)
				}
				if pos == s.Base+s.Size {
					cur.Close()
					cur = nil
				}
			}
		}
		if cur != nil {
			time.Sleep(2 * time.Millisecond)
		}
	}
	return st, nil
}

func isSealedIno(segs []segment, ino uint64) bool {
	for _, s := range segs {
		if !s.Current && s.Ino == ino {
			return true
		}
	}
	return false
}

func sealedAt(segs []segment, pos int64) (segment, bool) {
	for _, s := range segs {
		if !s.Current && s.Base <= pos && pos < s.Base+s.Size {
			return s, true
		}
	}
	return segment{}, false
}

// checkSealedRepeatedly rereads random sealed segments until stop and compares them with want.
func checkSealedRepeatedly(dir string, want []byte, stop <-chan struct{}) (int, error) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 0
	for {
		select {
		case <-stop:
			return n, nil
		default:
		}
		segs, err := readPartitionDir(dir)
		if err != nil {
			return n, err
		}
		if len(segs) < 2 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		s := segs[r.IntN(len(segs)-1)]
		b, err := os.ReadFile(filepath.Join(dir, s.Name))
		if err != nil {
			return n, err
		}
		if int64(len(b)) != s.Size || s.Base+s.Size > int64(len(want)) || !bytes.Equal(b, want[s.Base:s.Base+s.Size]) {
			return n, fmt.Errorf("sealed %s (%d bytes listed, %d read) differs from what was written", s.Name, s.Size, len(b))
		}
		n++
	}
}

// TestConcurrentAppenders: issue 5 §1.5. Several processes append checksummed records to one partition at
// once, reopening current now and then (so some hold a sealed inode); every write() appears whole and
// contiguous, each writer's records in its order, and nothing else is in the log.
func TestConcurrentAppenders(t *testing.T) {
	for _, mode := range ioPersistModes {
		if mode.name == "dsync-deferred" || mode.name == "direct-inline" || mode.name == "buffered-inline" {
			t.Run(mode.name, func(t *testing.T) { testConcurrentAppenders(t, mode.opts) })
		}
	}
}

func testConcurrentAppenders(t *testing.T, mode string) {
	const writers, records = 4, 400
	// 128 KiB keeps each record in one FUSE WRITE even without negotiated max_pages, so atomicity is segfs's.
	const maxPayload = 128<<10 - recstream.HeaderSize
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=1MiB,"+mode)
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	seed := uint64(time.Now().UnixNano())
	t.Logf("record seed %d", seed)

	cmds := make([]*exec.Cmd, writers)
	outs := make([]*lockedBuffer, writers)
	for w := range cmds {
		outs[w] = &lockedBuffer{}
		cmds[w] = exec.Command(binaries.appender, "records", "-path", filepath.Join(part, "current"),
			"-seed", strconv.FormatUint(seed, 10), "-writer", strconv.Itoa(w), "-count", strconv.Itoa(records),
			"-max-payload", strconv.Itoa(maxPayload), "-reopen-prob", "0.02")
		cmds[w].Stdout, cmds[w].Stderr = outs[w], outs[w]
		if err := cmds[w].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for w, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("writer %d: %v: %s", w, err, outs[w].String())
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	log, segs := readPartition(t, part)
	next := make([]uint64, writers)
	for off := 0; off < len(log); {
		h, n, err := recstream.Parse(log[off:])
		if err != nil {
			t.Fatalf("log offset %d of %d: %v", off, len(log), err)
		}
		if int(h.Writer) >= writers || h.Seq != next[h.Writer] {
			t.Fatalf("log offset %d: record writer %d seq %d, want that writer's seq %v", off, h.Writer, h.Seq, next)
		}
		if !bytes.Equal(log[off:off+n], recstream.Record(seed, h.Writer, h.Seq, maxPayload)) {
			t.Fatalf("log offset %d: writer %d seq %d has valid framing but not the bytes written", off, h.Writer, h.Seq)
		}
		next[h.Writer]++
		off += n
	}
	for w, n := range next {
		if n != records {
			t.Errorf("writer %d: %d records in the log, wrote %d", w, n, records)
		}
	}
	if len(segs) < 5 {
		t.Errorf("only %d segments: the writers did not cross rotations", len(segs))
	}
	checkBacking(t, filepath.Join(data, "T", "0"), segs, log)
}
