package fusefs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"segfs/segments"
)

// testSegmentSize is small so that tests rotate many times with little data.
const testSegmentSize = 64 << 10

// testMount is a real FUSE mount of a fresh log in temp dirs, unmounted in t.Cleanup.
type testMount struct {
	t        *testing.T
	mnt      string
	data     string
	log      *segments.Log
	server   *fuse.Server
	ms       *mountState
	notifier *RotateNotifier
}

func requireFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("SKIPPED: fusefs tests need a real FUSE mount and /dev/fuse is not available: %v", err)
	}
}

// testLogger discards logs unless SEGFS_TEST_LOG=1: go-fuse goroutines may log after the test ended,
// which t.Log does not allow.
func testLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if os.Getenv("SEGFS_TEST_LOG") == "1" {
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
	}
	return l
}

// newTestMount opens a log with cfg (SegmentSize and Partitions defaulted for tests) and mounts it.
func newTestMount(t *testing.T, cfg segments.Config, opts Options, prepare ...func(*segments.Log)) *testMount {
	t.Helper()
	requireFUSE(t)
	if cfg.SegmentSize == 0 {
		cfg.SegmentSize = testSegmentSize
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 2
	}
	logger := testLogger()
	cfg.Logger = logger
	opts.Logger = logger
	m := &testMount{t: t, data: t.TempDir(), mnt: t.TempDir(), notifier: NewRotateNotifier()}
	cfg.OnRotate = m.notifier.Func()
	opts.Notifier = m.notifier
	l, err := segments.Open(m.data, cfg)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	m.log = l
	for _, p := range prepare {
		p(l)
	}
	server, ms, err := mount(m.mnt, l, opts)
	if err != nil {
		_ = l.Close()
		t.Fatalf("mount: %v", err)
	}
	m.server, m.ms = server, ms
	t.Cleanup(m.unmount)
	return m
}

// unmount runs even when the test failed; a lazy unmount is the fallback so the temp dirs can go.
func (m *testMount) unmount() {
	if err := m.server.Unmount(); err != nil {
		m.t.Errorf("unmount %s: %v (detaching)", m.mnt, err)
		_ = unix.Unmount(m.mnt, unix.MNT_DETACH)
	}
	if err := m.log.Close(); err != nil {
		m.t.Errorf("close log: %v", err)
	}
}

func (m *testMount) path(parts ...string) string {
	return filepath.Join(append([]string{m.mnt}, parts...)...)
}

// partition returns the segments partition behind MNT/topic/p.
func (m *testMount) partition(topic string, p int) *segments.Partition {
	m.t.Helper()
	tp, err := m.log.Topic(topic)
	if err != nil {
		m.t.Fatalf("topic %s: %v", topic, err)
	}
	part, err := tp.Partition(p)
	if err != nil {
		m.t.Fatalf("partition %s/%d: %v", topic, p, err)
	}
	return part
}

func (m *testMount) mkdir(parts ...string) {
	m.t.Helper()
	if err := unix.Mkdir(m.path(parts...), 0o755); err != nil {
		m.t.Fatalf("mkdir %s: %v", filepath.Join(parts...), err)
	}
}

// wantErrno fails unless err is exactly errno.
func wantErrno(t *testing.T, what string, err error, errno unix.Errno) {
	t.Helper()
	if !errors.Is(err, errno) {
		t.Errorf("%s: got error %v, want %v (%d)", what, err, errno, int(errno))
	}
}

// appendTo opens name with O_APPEND, writes b in one write() and closes.
func appendTo(t *testing.T, name string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("open %s for append: %v", name, err)
	}
	if n, err := f.Write(b); err != nil || n != len(b) {
		t.Fatalf("append %d bytes to %s: n=%d err=%v", len(b), name, n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}
}

// listDir returns the sorted names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("readdir %s: %v", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// readPartition concatenates MNT/topic/p/* in glob order, as `cat MNT/T/0/*` does.
func (m *testMount) readPartition(topic string, p int) []byte {
	m.t.Helper()
	names, err := filepath.Glob(m.path(topic, fmt.Sprint(p), "*"))
	if err != nil {
		m.t.Fatal(err)
	}
	var all bytes.Buffer
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			m.t.Fatalf("read %s: %v", n, err)
		}
		all.Write(b)
	}
	return all.Bytes()
}

func statIno(t *testing.T, name string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		t.Fatalf("stat %s: %v", name, err)
	}
	return st.Ino
}

// pattern returns n bytes that identify their position: a diff shows where data went wrong.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(seed+i)%36]
	}
	return b
}

// eventually polls cond for up to 5s: the kernel applies some invalidations asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
