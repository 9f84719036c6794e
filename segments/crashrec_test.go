package segments

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

// crashRecorder is a directio.Syscalls (and dirSyscalls) that runs every call on the real filesystem
// and logs each call that changes it (create, pwritev, ftruncate, mkdir, unlink, rmdir, rename) and
// each durability barrier (fdatasync, fsync, O_DSYNC writes), with copies of the data written. From
// the log, rebuild reconstructs the disk as a crash after any prefix of the calls would leave it.
type crashRecorder struct {
	root string
	sys  directio.OS

	mu    sync.Mutex
	fds   map[int]recFD
	ops   []recOp
	marks []recMark
}

type recFD struct {
	path  string // relative to root
	dsync bool
	dir   bool
}

type recKind int

const (
	recCreate recKind = iota
	recWrite
	recTrunc
	recSync // fdatasync/fsync of a file
	recMkdir
	recUnlink
	recRmdir
	recRename
	recDirSync
)

var recKindNames = [...]string{"create", "pwritev", "ftruncate", "fsync", "mkdir", "unlink", "rmdir", "rename", "dirsync"}

func (k recKind) String() string { return recKindNames[k] }

type recOp struct {
	kind  recKind
	path  string // relative; for rename the source
	to    string // rename target
	off   int64
	data  []byte
	size  int64
	dsync bool // a write through an O_DSYNC descriptor: durable when it completes
}

// namespace reports whether the op changes directory entries (its durability is the parent's fsync).
func (o recOp) namespace() bool {
	switch o.kind {
	case recCreate, recMkdir, recUnlink, recRmdir, recRename:
		return true
	}
	return false
}

// stream is the durability domain of an op: a file's content, or a directory's entries.
func (o recOp) stream() string {
	switch {
	case o.namespace():
		return "dir:" + filepath.Dir(o.path)
	case o.kind == recDirSync:
		return "dir:" + o.path
	}
	return "file:" + o.path
}

// recMark is a workload event (an acknowledged append, sync or seal) placed between recorded ops:
// every op of the call that produced it has index < at.
type recMark struct {
	at    int
	key   string
	kind  string
	value int64
}

func newCrashRecorder(root string) *crashRecorder {
	return &crashRecorder{root: filepath.Clean(root), fds: map[int]recFD{}}
}

func (r *crashRecorder) rel(path string) string {
	rel, err := filepath.Rel(r.root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		panic("crashRecorder: path outside the data dir: " + path)
	}
	return rel
}

func (r *crashRecorder) mark(key, kind string, value int64) {
	r.mu.Lock()
	r.marks = append(r.marks, recMark{at: len(r.ops), key: key, kind: kind, value: value})
	r.mu.Unlock()
}

// snapshot returns the log so far.
func (r *crashRecorder) snapshot() ([]recOp, []recMark) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recOp(nil), r.ops...), append([]recMark(nil), r.marks...)
}

func (r *crashRecorder) Open(path string, flags int, perm uint32) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rel := r.rel(path)
	_, statErr := os.Lstat(path)
	fd, err := r.sys.Open(path, flags, perm)
	if err != nil {
		return fd, err
	}
	if os.IsNotExist(statErr) && flags&unix.O_CREAT != 0 {
		r.ops = append(r.ops, recOp{kind: recCreate, path: rel})
	}
	r.fds[fd] = recFD{path: rel, dsync: flags&unix.O_DSYNC != 0, dir: flags&unix.O_DIRECTORY != 0}
	return fd, nil
}

func (r *crashRecorder) Pwritev(fd int, iovs [][]byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.sys.Pwritev(fd, iovs, off)
	if n > 0 {
		data := make([]byte, 0, n)
		for _, b := range iovs {
			data = append(data, b[:min(len(b), n-len(data))]...)
		}
		f := r.fds[fd]
		r.ops = append(r.ops, recOp{kind: recWrite, path: f.path, off: off, data: data, dsync: f.dsync})
	}
	return n, err
}

func (r *crashRecorder) Ftruncate(fd int, size int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.sys.Ftruncate(fd, size)
	if err == nil {
		r.ops = append(r.ops, recOp{kind: recTrunc, path: r.fds[fd].path, size: size})
	}
	return err
}

func (r *crashRecorder) sync(fd int, call func(int) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := call(fd)
	if err == nil {
		f := r.fds[fd]
		kind := recSync
		if f.dir {
			kind = recDirSync
		}
		r.ops = append(r.ops, recOp{kind: kind, path: f.path})
	}
	return err
}

func (r *crashRecorder) Fdatasync(fd int) error { return r.sync(fd, r.sys.Fdatasync) }
func (r *crashRecorder) Fsync(fd int) error     { return r.sync(fd, r.sys.Fsync) }

func (r *crashRecorder) Pread(fd int, p []byte, off int64) (int, error) {
	return r.sys.Pread(fd, p, off)
}
func (r *crashRecorder) Fstat(fd int, st *unix.Stat_t) error { return r.sys.Fstat(fd, st) }

// Fallocate is forwarded but not recorded: segments only allocates with FALLOC_FL_KEEP_SIZE, which
// changes neither the size nor any byte of a file, so a rebuilt disk is the same with or without it.
// A mode that does change content would have to be recorded; refuse it so that cannot slip by.
func (r *crashRecorder) Fallocate(fd int, mode uint32, off, length int64) error {
	if mode != unix.FALLOC_FL_KEEP_SIZE {
		panic("crashRecorder: fallocate mode that changes the file is not modelled")
	}
	return r.sys.Fallocate(fd, mode, off, length)
}

func (r *crashRecorder) Close(fd int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.fds, fd)
	return r.sys.Close(fd)
}

func (r *crashRecorder) namespaceOp(op recOp, call func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := call()
	if err == nil {
		r.ops = append(r.ops, op)
	}
	return err
}

func (r *crashRecorder) Mkdir(path string, perm uint32) error {
	return r.namespaceOp(recOp{kind: recMkdir, path: r.rel(path)}, func() error { return unix.Mkdir(path, perm) })
}

func (r *crashRecorder) Unlink(path string) error {
	return r.namespaceOp(recOp{kind: recUnlink, path: r.rel(path)}, func() error { return unix.Unlink(path) })
}

func (r *crashRecorder) Rmdir(path string) error {
	return r.namespaceOp(recOp{kind: recRmdir, path: r.rel(path)}, func() error { return unix.Rmdir(path) })
}

func (r *crashRecorder) Rename(from, to string) error {
	return r.namespaceOp(recOp{kind: recRename, path: r.rel(from), to: r.rel(to)}, func() error { return unix.Rename(from, to) })
}

// crashState is a rebuilt disk: directories and file contents, relative to the data dir.
type crashState struct {
	dirs  map[string]bool
	files map[string][]byte
}

// rebuild replays the ops for which keep(i) is true, in order, onto an empty data dir.
func rebuild(ops []recOp, keep func(i int) bool) crashState {
	st := crashState{dirs: map[string]bool{".": true}, files: map[string][]byte{}}
	for i, op := range ops {
		if !keep(i) {
			continue
		}
		switch op.kind {
		case recCreate:
			if _, ok := st.files[op.path]; !ok && st.dirs[filepath.Dir(op.path)] {
				st.files[op.path] = []byte{}
			}
		case recWrite:
			if b, ok := st.files[op.path]; ok {
				if end := op.off + int64(len(op.data)); end > int64(len(b)) {
					b = append(b, make([]byte, end-int64(len(b)))...)
				}
				copy(b[op.off:], op.data)
				st.files[op.path] = b
			}
		case recTrunc:
			if b, ok := st.files[op.path]; ok {
				if op.size <= int64(len(b)) {
					b = b[:op.size]
				} else {
					b = append(b, make([]byte, op.size-int64(len(b)))...)
				}
				st.files[op.path] = b
			}
		case recMkdir:
			if st.dirs[filepath.Dir(op.path)] {
				st.dirs[op.path] = true
			}
		case recUnlink:
			delete(st.files, op.path)
		case recRmdir:
			delete(st.dirs, op.path)
		case recRename:
			st.rename(op.path, op.to)
		}
	}
	return st
}

func (st crashState) rename(from, to string) {
	move := func(p string) (string, bool) {
		if p == from {
			return to, true
		}
		if strings.HasPrefix(p, from+"/") {
			return to + p[len(from):], true
		}
		return p, false
	}
	for p, b := range st.files {
		if np, ok := move(p); ok {
			delete(st.files, p)
			st.files[np] = b
		}
	}
	for p := range st.dirs {
		if np, ok := move(p); ok {
			delete(st.dirs, p)
			st.dirs[np] = true
		}
	}
}

// digest identifies a state, so identical states from different crash points are checked once.
func (st crashState) digest() [32]byte {
	h := sha256.New()
	var names []string
	for d := range st.dirs {
		names = append(names, "d "+d)
	}
	for f := range st.files {
		names = append(names, "f "+f)
	}
	sort.Strings(names)
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		if n[0] == 'f' {
			h.Write(st.files[n[2:]])
			h.Write([]byte{0})
		}
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// materialize writes the state into dir (which exists and is empty).
func (st crashState) materialize(dir string) error {
	var dirs []string
	for d := range st.dirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs) // parents before children
	for _, d := range dirs {
		if d != "." {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
	}
	for f, b := range st.files {
		if !st.dirs[filepath.Dir(f)] {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// durability computes, for a crash after ops[:k], which ops a power loss keeps: an op on a file's
// content survives if a later fdatasync/fsync of that file (before k) covers it or it was an O_DSYNC
// write; a directory change survives if a later fsync of that directory covers it.
func durability(ops []recOp, k int) []bool {
	durable := make([]bool, k)
	barrier := map[string]int{} // stream -> index of its last barrier before k
	for i := 0; i < k; i++ {
		switch ops[i].kind {
		case recSync, recDirSync:
			barrier[ops[i].stream()] = i
		}
	}
	for i := 0; i < k; i++ {
		op := ops[i]
		if b, ok := barrier[op.stream()]; ok && i < b || op.kind == recWrite && op.dsync {
			durable[i] = true
		}
	}
	return durable
}

// noSyncSyscalls skips fdatasync and fsync: the crash checks open thousands of rebuilt directories
// whose durability does not matter, only what recovery makes of them.
type noSyncSyscalls struct{ directio.OS }

func (noSyncSyscalls) Fdatasync(int) error { return nil }
func (noSyncSyscalls) Fsync(int) error     { return nil }
