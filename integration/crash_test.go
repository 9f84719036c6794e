package integration

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"segfs/integration/internal/recstream"
)

const crashMaxPayload = 16 << 10

// TestCrashKill9: issue 5 §2. A writer process appends checksummed, numbered records, fsyncs at random points
// and logs (durably, outside the mount) the offset each fsync acknowledged. The daemon is SIGKILLed at a random
// moment; `segfs mount` must clear the stale mount by itself; then the recovered log must be a byte-exact prefix
// of what the writer wrote (no zero-fill, padding, torn record in the middle, or foreign bytes), at least as
// long as the last fsync acknowledged, and with persist=inline at most alignment−1 bytes shorter than what
// write() acknowledged (issue 3 §3.2.d; 0 with io=buffered, which keeps no tail in memory).
//
// SEGFS_CRASH_ITERATIONS kill points run per io×persist mode (default 20: 120 in all, about a minute);
// SEGFS_CRASH_SEED replays a run.
func TestCrashKill9(t *testing.T) {
	iters := 20
	if s := os.Getenv("SEGFS_CRASH_ITERATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SEGFS_CRASH_ITERATIONS=%q: want a positive integer", s)
		}
		iters = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SEGFS_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SEGFS_CRASH_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("SEGFS_CRASH_SEED=%d SEGFS_CRASH_ITERATIONS=%d", seed, iters)
	// -o sync (persist=sync): every write() is durable when it returns, and fsync is answered by the
	// kernel itself after the first ENOSYS, so a kill -9 right after a write() loses nothing.
	// The -idle modes release a partition after 10 ms without appends and the writer pauses now and then,
	// so kill points also fall while a partition syncs, closes its files or reopens them.
	modes := append(ioPersistModes[:len(ioPersistModes):len(ioPersistModes)], []struct{ name, opts string }{
		{"dsync-sync", "io=dsync,sync"},
		{"dsync-inline-idle", "io=dsync,persist=inline,idle_release=10ms"},
		{"dsync-deferred-idle", "io=dsync,persist=deferred,idle_release=10ms"},
	}...)
	for i, mode := range modes {
		t.Run(mode.name, func(t *testing.T) { testCrash(t, mode.opts, iters, seed+uint64(i)) })
	}
}

func testCrash(t *testing.T, modeOpts string, iters int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0))
	data, mnt := newDirs(t)
	opts := "segment_size=256KiB," + modeOpts
	lossBound := int64(-1) // deferred: anything after the last fsync may go
	switch {
	case strings.HasSuffix(modeOpts, ",sync"):
		lossBound = 0 // write() returned only once its bytes were durable
	case strings.Contains(modeOpts, "persist=inline"):
		lossBound = 0
		if !strings.Contains(modeOpts, "io=buffered") {
			lossBound = writeBlock(t, filepath.Dir(data)) - 1
		}
	}
	idle := strings.Contains(modeOpts, "idle_release")
	writerArgs := []string{"-fsync-prob", "0.1"}
	if idle {
		writerArgs = append(writerArgs, "-pause-prob", "0.2", "-pause", "15ms")
		t.Setenv("SEGFS_LOG_LEVEL", "debug") // the daemon logs each release at debug level
	}
	releases := 0
	m := mountFS(t, data, mnt, opts)
	type recovered struct {
		log  []byte
		segs []segment
	}
	topics := map[string]recovered{}
	for i := 0; i < iters; i++ {
		topic := fmt.Sprintf("c%d", i)
		mkdir(t, filepath.Join(mnt, topic))
		part := filepath.Join(mnt, topic, "0")
		wseed := r.Uint64()
		ackPath := filepath.Join(t.TempDir(), "ack")
		var out lockedBuffer
		args := append([]string{"records", "-path", filepath.Join(part, "current"),
			"-seed", strconv.FormatUint(wseed, 10), "-writer", "0", "-max-payload", strconv.Itoa(crashMaxPayload),
			"-ack", ackPath}, writerArgs...)
		writer := exec.Command(binaries.appender, args...)
		writer.Stdout, writer.Stderr = &out, &out
		if err := writer.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(r.IntN(500)) * time.Millisecond
		time.Sleep(delay)
		// Cache the root's attributes in the kernel, as any ls -ld or df of the mount does: after the kill,
		// stat of the root is then answered from that cache, and the remount must still see the mount dead.
		if _, err := os.Stat(mnt); err != nil {
			t.Fatalf("kill point %d: stat of the live mount: %v", i, err)
		}
		m.Kill9()
		if err := waitProcess(writer, exitTimeout); err != nil {
			t.Fatalf("kill point %d: writer: %v: %s", i, err, out.String())
		}
		ack := readAck(t, ackPath)
		releases += strings.Count(m.Log(), "released idle partition")

		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); !errors.Is(err, unix.ENOTCONN) {
			t.Fatalf("kill point %d: statfs of the dead mount: %v, want ENOTCONN (no stale mount to clear?)", i, err)
		}
		m = mountFS(t, data, mnt, opts) // must clear the stale mount itself (mountFS checks only one is left)
		if !strings.Contains(strings.ToLower(m.Log()), "stale") {
			t.Errorf("kill point %d: segfs mount cleared the stale mount without a log line saying so (issue 4 §4.5)\n%s", i, m.Log())
		}

		log, segs := readPartition(t, part)
		t.Logf("kill point %d after %v: fsync acked %d, write acked %d, attempted %d (%s); recovered %d bytes in %d segments",
			i, delay, ack.synced, ack.acked, ack.attempted, ack.reason, len(log), len(segs))
		verifyCrashLog(t, log, wseed, ack, lossBound)
		checkContiguous(t, segs)
		if t.Failed() {
			t.FailNow()
		}
		topics[topic] = recovered{log, segs}
	}

	if idle && releases == 0 {
		t.Errorf("no partition was released while idle in %d kill points: the test never met a release", iters)
	}
	t.Logf("%d idle releases before the kill points", releases)

	// What one recovery produced must survive later crashes and a clean unmount, through the mount and on disk.
	for topic, rec := range topics {
		got, segs := readPartition(t, filepath.Join(mnt, topic, "0"))
		if !bytes.Equal(got, rec.log) || !sameSegments(segs, rec.segs) {
			t.Errorf("%s changed after later crashes: %d bytes %v, was %d bytes %v", topic, len(got), segs, len(rec.log), rec.segs)
		}
	}
	m.Unmount()
	for topic, rec := range topics {
		checkBacking(t, filepath.Join(data, topic, "0"), rec.segs, rec.log)
	}
}

type ackLog struct {
	synced    int64 // offset acknowledged by the last successful fsync
	acked     int64 // bytes acknowledged by write()
	attempted int64 // acked plus the write in flight when the writer got its error
	reason    string
}

// readAck parses the writer's acknowledgement log: "sync OFF" lines, then one "end ACKED ATTEMPTED REASON".
func readAck(t *testing.T, path string) ackLog {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var a ackLog
	ended := false
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.SplitN(line, " ", 4)
		switch {
		case ended:
			t.Fatalf("ack log %s: line %q after the end line", path, line)
		case len(f) == 2 && f[0] == "sync":
			a.synced = mustInt(t, f[1])
		case len(f) == 4 && f[0] == "end":
			a.acked, a.attempted, a.reason, ended = mustInt(t, f[1]), mustInt(t, f[2]), f[3], true
		default:
			t.Fatalf("ack log %s: bad line %q", path, line)
		}
	}
	if !ended {
		t.Fatalf("ack log %s has no end line: %q", path, b)
	}
	return a
}

func mustInt(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("ack log: %v", err)
	}
	return n
}

// verifyCrashLog checks a recovered log against the writer's deterministic records and its acknowledgements.
// lossBound < 0 means no bound on write()-acknowledged bytes (deferred persistence).
func verifyCrashLog(t *testing.T, log []byte, seed uint64, a ackLog, lossBound int64) {
	t.Helper()
	n := int64(len(log))
	if n > a.attempted {
		t.Errorf("recovered %d bytes, but the writer only ever wrote %d: bytes that were never written follow", n, a.attempted)
	}
	want := recstream.Records(seed, 0, crashMaxPayload, len(log))
	if d := firstDiff(log, want[:len(log)]); d >= 0 {
		t.Errorf("recovered log is not a prefix of what was written: first wrong byte at %d, %s", d, describeRecordAt(want, log, d))
	}
	if n < a.synced {
		t.Errorf("lost fsync-acknowledged bytes: recovered %d, the last fsync acknowledged %d", n, a.synced)
	}
	if lossBound >= 0 && n < a.acked-lossBound {
		t.Errorf("after kill -9: recovered %d bytes, write() acknowledged %d: lost %d, allowed %d", n, a.acked, a.acked-n, lossBound)
	}
	// Framing view of the same log, for the report: whole records, then at most one torn record at the end.
	off, records := 0, 0
	for off < len(log) {
		_, size, err := recstream.Parse(log[off:])
		if errors.Is(err, recstream.ErrShort) {
			break
		}
		if err != nil {
			t.Errorf("record %d at offset %d: %v", records, off, err)
			return
		}
		off += size
		records++
	}
	if off < len(log) && int64(off) < a.synced {
		t.Errorf("torn record at offset %d, before the fsync-acknowledged offset %d", off, a.synced)
	}
}

// describeRecordAt names the record of want that contains offset d and shows the bytes there.
func describeRecordAt(want, got []byte, d int) string {
	off, seq := 0, 0
	for off < len(want) {
		_, size, err := recstream.Parse(want[off:])
		if err != nil || off+size > d {
			break
		}
		off += size
		seq++
	}
	end := min(d+16, len(got), len(want))
	return fmt.Sprintf("inside record seq %d (starts at %d): got % x, wrote % x", seq, off, got[d:end], want[d:end])
}

// writeBlock is the block segfs writes in on the file system holding dir: the O_DIRECT offset
// alignment raised to the file system's preferred I/O size (issue 3's "alignment").
func writeBlock(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.CreateTemp(dir, "align-probe-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var st unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN|unix.STATX_BASIC_STATS, &st); err == nil && st.Mask&unix.STATX_DIOALIGN != 0 && st.Dio_offset_align > 0 {
		block := int64(st.Dio_offset_align)
		if bs := int64(st.Blksize); bs > block && bs <= 64<<10 && bs&(bs-1) == 0 {
			block = bs
		}
		return block
	}
	return 4096
}

// waitProcess waits for a started command, killing it past timeout.
func waitProcess(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		return fmt.Errorf("%s still running after %v: %w", cmd.Path, timeout, <-done)
	}
}
