package segments

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// writeGuardSyscalls is a fault-detecting Syscalls: it tracks which path every descriptor refers to
// and records a violation whenever a write or truncate targets a file that is deleted (unlinked, or
// below a directory renamed to a tombstone) or sealed (a segment with a higher base in the same
// directory was written since: a deferred rotation creates the successor before it seals the old
// segment, but nothing may reach the successor until that seal is done, which is what recovery
// relies on).
type writeGuardSyscalls struct {
	directio.OS

	mu         sync.Mutex
	fds        map[int]string
	dead       map[string]bool   // unlinked files and renamed-away directories
	newest     map[string]int64  // partition dir -> highest segment base written
	tombs      map[string]string // last rename of each path
	violations []string
	writes     int
}

func newWriteGuard() *writeGuardSyscalls {
	return &writeGuardSyscalls{fds: map[int]string{}, dead: map[string]bool{}, newest: map[string]int64{}, tombs: map[string]string{}}
}

func (g *writeGuardSyscalls) Open(path string, flags int, perm uint32) (int, error) {
	var st unix.Stat_t
	fresh := unix.Lstat(path, &st) != nil
	fd, err := g.OS.Open(path, flags, perm)
	if err != nil {
		return fd, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fds[fd] = path
	if fresh {
		delete(g.dead, path) // a new file at a purged segment's path (its partition was re-created)
	}
	if base, ok := ParseSegmentName(filepath.Base(path)); ok && fresh && base < g.newest[filepath.Dir(path)] {
		// Recovery removed an empty successor and a partition directory was re-created: start over.
		delete(g.newest, filepath.Dir(path))
	}
	return fd, nil
}

func (g *writeGuardSyscalls) Close(fd int) error {
	g.mu.Lock()
	delete(g.fds, fd) // before the real close: the number may be reused right after
	g.mu.Unlock()
	return g.OS.Close(fd)
}

// check records a violation if path may not be written now.
func (g *writeGuardSyscalls) check(op string, fd int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes++
	path, ok := g.fds[fd]
	if !ok {
		g.violations = append(g.violations, fmt.Sprintf("%s on unknown descriptor %d", op, fd))
		return
	}
	for p := path; p != "/" && p != "."; p = filepath.Dir(p) {
		if g.dead[p] {
			g.violations = append(g.violations, fmt.Sprintf("%s to deleted %s\n%s", op, path, debugStack()))
			return
		}
	}
	base, ok := ParseSegmentName(filepath.Base(path))
	if !ok {
		return
	}
	dir := filepath.Dir(path)
	if base < g.newest[dir] {
		g.violations = append(g.violations, fmt.Sprintf("%s to sealed segment %s", op, path))
	}
	if op != "fallocate" && base > g.newest[dir] {
		g.newest[dir] = base
	}
}

func (g *writeGuardSyscalls) Pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	g.check("pwritev", fd)
	n, err := g.OS.Pwritev(fd, iovs, off)
	g.check("pwritev (completed)", fd)
	return n, err
}

func (g *writeGuardSyscalls) Ftruncate(fd int, size int64) error {
	g.check("ftruncate", fd)
	err := g.OS.Ftruncate(fd, size)
	g.check("ftruncate (completed)", fd)
	return err
}

// Fallocate reserves space for writes, so it is held to the same rule as a write.
func (g *writeGuardSyscalls) Fallocate(fd int, mode uint32, off, length int64) error {
	g.check("fallocate", fd)
	return g.OS.Fallocate(fd, mode, off, length)
}

func (g *writeGuardSyscalls) Mkdir(path string, perm uint32) error { return unix.Mkdir(path, perm) }
func (g *writeGuardSyscalls) Rmdir(path string) error              { return unix.Rmdir(path) }

func (g *writeGuardSyscalls) Unlink(path string) error {
	g.mu.Lock()
	g.dead[path] = true
	g.mu.Unlock()
	return unix.Unlink(path)
}

func (g *writeGuardSyscalls) Rename(from, to string) error {
	g.mu.Lock()
	g.dead[from] = true
	g.mu.Unlock()
	if err := unix.Rename(from, to); err != nil {
		return err
	}
	// The name may come back (a partition re-created); only what is below the tombstone stays dead.
	g.mu.Lock()
	delete(g.dead, from)
	g.dead[to] = true
	g.tombs[from] = to
	moved := func(p string) (string, bool) {
		if p == from || strings.HasPrefix(p, from+"/") {
			return to + p[len(from):], true
		}
		return p, false
	}
	for fd, p := range g.fds {
		if np, ok := moved(p); ok {
			g.fds[fd] = np
		}
	}
	for dir, base := range g.newest {
		if np, ok := moved(dir); ok {
			delete(g.newest, dir)
			g.newest[np] = base
		}
	}
	g.mu.Unlock()
	return nil
}

func (g *writeGuardSyscalls) report() ([]string, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.violations...), g.writes
}

// Durability is not what the stress test checks (the crash tests do), and skipping the barriers lets
// it run many more interleavings per second.
func (g *writeGuardSyscalls) Fdatasync(int) error { return nil }
func (g *writeGuardSyscalls) Fsync(int) error     { return nil }

func (g *writeGuardSyscalls) tombstone(path string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tombs[path]
}

// debugStack tells which path made a write a violation.
func debugStack() string { b := make([]byte, 8192); return string(b[:runtime.Stack(b, false)]) }
