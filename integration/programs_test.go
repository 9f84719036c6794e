package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestKnownPrograms backs docs/namespace.md "Known programs": what fails with which error, and the way
// that works.
func TestKnownPrograms(t *testing.T) {
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=64KiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	cur := filepath.Join(part, "current")
	env := []string{"M=" + mnt, "P=" + part, "CUR=" + cur}

	t.Run("python RotatingFileHandler", func(t *testing.T) {
		// Its rollover renames current to current.1: refused, and logging reports the error.
		res := sh(t, `python3 -c 'import logging, logging.handlers, sys
h = logging.handlers.RotatingFileHandler(sys.argv[1], maxBytes=100, backupCount=2)
h.handleError = lambda record: (_ for _ in ()).throw(sys.exc_info()[1])
log = logging.getLogger("x"); log.addHandler(h)
for i in range(20): log.error("line %d of a rotating log", i)' "$CUR"`, env...)
		if res.code == 0 || !strings.Contains(res.stderr, "PermissionError") || !strings.Contains(res.stderr, "Operation not permitted") {
			t.Errorf("RotatingFileHandler: %v; want PermissionError: Operation not permitted", res)
		}
	})
	t.Run("python WatchedFileHandler and FileHandler", func(t *testing.T) {
		before := countLines(catPartition(t, part))
		mustSh(t, `python3 -c 'import logging, logging.handlers, sys
log = logging.getLogger("x")
log.addHandler(logging.handlers.WatchedFileHandler(sys.argv[1]))
log.addHandler(logging.FileHandler(sys.argv[1]))
for i in range(5000): log.error("line %05d of a watched log, long enough to rotate a small segment", i)' "$CUR"`, env...)
		if got := countLines(catPartition(t, part)) - before; got != 10000 {
			t.Errorf("WatchedFileHandler + FileHandler: %d lines, want 10000", got)
		}
		if segs := listPartition(t, part); len(segs) < 3 {
			t.Errorf("want segfs to have rotated the log, got %v", segs)
		}
	})
	t.Run("svlogd and multilog lock", func(t *testing.T) {
		// Both create and flock DIR/lock; segfs refuses creating names.
		if res := sh(t, `python3 -c 'import fcntl, os, sys
fd = os.open(os.path.join(sys.argv[1], "lock"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)' "$P"`, env...); res.code == 0 || !strings.Contains(res.stderr, "Operation not permitted") {
			t.Errorf("create and lock DIR/lock: %v; want Operation not permitted", res)
		}
	})
	t.Run("restore with cp -a fails, cat >> works", func(t *testing.T) {
		backup := t.TempDir()
		mustSh(t, `cp -a "$P"/. "$B"/`, append(env, "B="+backup)...)
		want := catPartition(t, part)
		if res := sh(t, `cp -a "$B"/. "$M/T/1/"`, append(env, "B="+backup)...); res.code == 0 || !strings.Contains(res.stderr, "Operation not permitted") {
			t.Errorf("cp -a restore: %v; want Operation not permitted", res)
		}
		mustSh(t, `cat "$B"/* >> "$M/T/1/current"`, append(env, "B="+backup)...)
		if got := catPartition(t, filepath.Join(mnt, "T", "1")); string(got) != string(want) {
			t.Errorf("cat >> restore: %d bytes, want %d", len(got), len(want))
		}
	})
	t.Run("another user needs allow_other", func(t *testing.T) {
		requireRoot(t)
		res := sh(t, `runuser -u nobody -- cat "$CUR"`, env...)
		if res.code == 0 || !strings.Contains(res.stderr, "Permission denied") {
			t.Errorf("read by another user without allow_other: %v; want Permission denied", res)
		}
	})
}

// catPartition is `cat DIR/*`.
func catPartition(t *testing.T, dir string) []byte {
	t.Helper()
	got, _ := readPartition(t, dir)
	return got
}
