package metrics

import (
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// op is a FUSE operation as the wrapper counts it.
type op uint8

const (
	opLookup op = iota
	opForget
	opGetattr
	opSetattr
	opMknod
	opMkdir
	opUnlink
	opRmdir
	opRename
	opLink
	opSymlink
	opReadlink
	opAccess
	opGetxattr
	opListxattr
	opSetxattr
	opRemovexattr
	opCreate
	opTmpfile
	opOpen
	opRead
	opLseek
	opGetlk
	opSetlk
	opSetlkw
	opRelease
	opWrite
	opCopyFileRange
	opIoctl
	opFlush
	opFsync
	opFallocate
	opOpendir
	opReaddir
	opReaddirplus
	opReleasedir
	opFsyncdir
	opStatfs
	opStatx
	numOps
)

// String is the op label: the kernel's name of the FUSE opcode, in lower case.
func (o op) String() string {
	switch o {
	case opLookup:
		return "lookup"
	case opForget:
		return "forget"
	case opGetattr:
		return "getattr"
	case opSetattr:
		return "setattr"
	case opMknod:
		return "mknod"
	case opMkdir:
		return "mkdir"
	case opUnlink:
		return "unlink"
	case opRmdir:
		return "rmdir"
	case opRename:
		return "rename"
	case opLink:
		return "link"
	case opSymlink:
		return "symlink"
	case opReadlink:
		return "readlink"
	case opAccess:
		return "access"
	case opGetxattr:
		return "getxattr"
	case opListxattr:
		return "listxattr"
	case opSetxattr:
		return "setxattr"
	case opRemovexattr:
		return "removexattr"
	case opCreate:
		return "create"
	case opTmpfile:
		return "tmpfile"
	case opOpen:
		return "open"
	case opRead:
		return "read"
	case opLseek:
		return "lseek"
	case opGetlk:
		return "getlk"
	case opSetlk:
		return "setlk"
	case opSetlkw:
		return "setlkw"
	case opRelease:
		return "release"
	case opWrite:
		return "write"
	case opCopyFileRange:
		return "copy_file_range"
	case opIoctl:
		return "ioctl"
	case opFlush:
		return "flush"
	case opFsync:
		return "fsync"
	case opFallocate:
		return "fallocate"
	case opOpendir:
		return "opendir"
	case opReaddir:
		return "readdir"
	case opReaddirplus:
		return "readdirplus"
	case opReleasedir:
		return "releasedir"
	case opFsyncdir:
		return "fsyncdir"
	case opStatfs:
		return "statfs"
	case opStatx:
		return "statx"
	}
	return "unknown"
}

// maxErrno bounds the errno table; Linux's largest is 133 (EHWPOISON). Larger ones share a slot.
const maxErrno = 134

// fuseStats counts FUSE requests by op and errno in a table of atomics, turned into series only at
// scrape time, and times them with one histogram per op, created on the op's first request: a
// request costs two monotonic clock reads, one atomic add and one lock-free observe.
type fuseStats struct {
	m        *Metrics
	epoch    time.Time // now() counts from it: one monotonic clock read, where time.Now takes two
	counts   [numOps][maxErrno + 1]atomic.Uint64
	latency  [numOps]atomic.Pointer[observerBox]
	vec      *prometheus.HistogramVec
	requests *prometheus.Desc
}

type observerBox struct{ prometheus.Observer }

func newFUSEStats(m *Metrics) *fuseStats {
	return &fuseStats{
		m: m, epoch: time.Now(),
		vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "segfs_fuse_request_duration_seconds",
			Help:    "Time segfs took to answer a FUSE request, by operation (the kernel's queueing and the reply's copy not included).",
			Buckets: latencyBuckets(),
		}, []string{"op"}),
		requests: prometheus.NewDesc("segfs_fuse_requests_total",
			"FUSE requests answered, by operation and result (OK, or the errno name returned).", []string{"op", "errno"}, nil),
	}
}

func (f *fuseStats) now() time.Duration { return time.Since(f.epoch) }

func (f *fuseStats) done(o op, began time.Duration, s fuse.Status) {
	took := f.now() - began
	h := f.latency[o].Load()
	if h == nil {
		h = &observerBox{f.vec.WithLabelValues(o.String())}
		f.latency[o].Store(h)
	}
	h.Observe(took.Seconds())
	e := int(s)
	if e < 0 || e > maxErrno {
		e = maxErrno
	}
	f.counts[o][e].Add(1)
}

func (f *fuseStats) Describe(ch chan<- *prometheus.Desc) {
	f.vec.Describe(ch)
	ch <- f.requests
}

func (f *fuseStats) Collect(ch chan<- prometheus.Metric) {
	f.vec.Collect(ch)
	for o := op(0); o < numOps; o++ {
		for e := range f.counts[o] {
			if n := f.counts[o][e].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(f.requests, prometheus.CounterValue, float64(n), o.String(), errnoLabel(e))
			}
		}
	}
}

func errnoLabel(e int) string {
	switch {
	case e == 0:
		return "OK"
	case e == maxErrno:
		return "other"
	}
	if name := unix.ErrnoName(syscall.Errno(e)); name != "" {
		return name
	}
	return "other"
}

// WrapFUSE returns fs with every request counted and timed; fusefs.Options.WrapFS takes it.
func (m *Metrics) WrapFUSE(fs fuse.RawFileSystem) fuse.RawFileSystem {
	return &rawFS{RawFileSystem: fs, f: m.fuse}
}

// rawFS is the wrapper. Methods it does not override (Init, String, SetDebug, OnUnmount) are not
// requests and pass through.
type rawFS struct {
	fuse.RawFileSystem
	f *fuseStats
}

func (r *rawFS) Lookup(c <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Lookup(c, h, name, out)
	r.f.done(opLookup, t, s)
	return s
}

func (r *rawFS) Forget(nodeid, nlookup uint64) {
	t := r.f.now()
	r.RawFileSystem.Forget(nodeid, nlookup)
	r.f.done(opForget, t, fuse.OK)
}

func (r *rawFS) GetAttr(c <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.GetAttr(c, in, out)
	r.f.done(opGetattr, t, s)
	return s
}

func (r *rawFS) SetAttr(c <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.SetAttr(c, in, out)
	r.f.done(opSetattr, t, s)
	return s
}

func (r *rawFS) Mknod(c <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Mknod(c, in, name, out)
	r.f.done(opMknod, t, s)
	return s
}

func (r *rawFS) Mkdir(c <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Mkdir(c, in, name, out)
	r.f.done(opMkdir, t, s)
	return s
}

func (r *rawFS) Unlink(c <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Unlink(c, h, name)
	r.f.done(opUnlink, t, s)
	return s
}

func (r *rawFS) Rmdir(c <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Rmdir(c, h, name)
	r.f.done(opRmdir, t, s)
	return s
}

func (r *rawFS) Rename(c <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Rename(c, in, oldName, newName)
	r.f.done(opRename, t, s)
	return s
}

func (r *rawFS) Link(c <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Link(c, in, name, out)
	r.f.done(opLink, t, s)
	return s
}

func (r *rawFS) Symlink(c <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Symlink(c, h, target, name, out)
	r.f.done(opSymlink, t, s)
	return s
}

func (r *rawFS) Readlink(c <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	t := r.f.now()
	b, s := r.RawFileSystem.Readlink(c, h)
	r.f.done(opReadlink, t, s)
	return b, s
}

func (r *rawFS) Access(c <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Access(c, in)
	r.f.done(opAccess, t, s)
	return s
}

func (r *rawFS) GetXAttr(c <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	t := r.f.now()
	n, s := r.RawFileSystem.GetXAttr(c, h, attr, dest)
	r.f.done(opGetxattr, t, s)
	return n, s
}

func (r *rawFS) ListXAttr(c <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	t := r.f.now()
	n, s := r.RawFileSystem.ListXAttr(c, h, dest)
	r.f.done(opListxattr, t, s)
	return n, s
}

func (r *rawFS) SetXAttr(c <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.SetXAttr(c, in, attr, data)
	r.f.done(opSetxattr, t, s)
	return s
}

func (r *rawFS) RemoveXAttr(c <-chan struct{}, h *fuse.InHeader, attr string) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.RemoveXAttr(c, h, attr)
	r.f.done(opRemovexattr, t, s)
	return s
}

func (r *rawFS) Create(c <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Create(c, in, name, out)
	r.f.done(opCreate, t, s)
	return s
}

func (r *rawFS) Tmpfile(c <-chan struct{}, in *fuse.CreateIn, out *fuse.CreateOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Tmpfile(c, in, out)
	r.f.done(opTmpfile, t, s)
	return s
}

// Open also counts the opens go-fuse turned into FUSE passthrough: only sealed segments offer it.
func (r *rawFS) Open(c <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Open(c, in, out)
	r.f.done(opOpen, t, s)
	if s == fuse.OK && out.OpenFlags&fuse.FOPEN_PASSTHROUGH != 0 {
		r.f.m.passthroughOpens.Inc()
	}
	return s
}

func (r *rawFS) Read(c <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	t := r.f.now()
	res, s := r.RawFileSystem.Read(c, in, buf)
	r.f.done(opRead, t, s)
	return res, s
}

func (r *rawFS) Lseek(c <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Lseek(c, in, out)
	r.f.done(opLseek, t, s)
	return s
}

func (r *rawFS) GetLk(c <-chan struct{}, in *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.GetLk(c, in, out)
	r.f.done(opGetlk, t, s)
	return s
}

func (r *rawFS) SetLk(c <-chan struct{}, in *fuse.LkIn) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.SetLk(c, in)
	r.f.done(opSetlk, t, s)
	return s
}

func (r *rawFS) SetLkw(c <-chan struct{}, in *fuse.LkIn) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.SetLkw(c, in)
	r.f.done(opSetlkw, t, s)
	return s
}

func (r *rawFS) Release(c <-chan struct{}, in *fuse.ReleaseIn) {
	t := r.f.now()
	r.RawFileSystem.Release(c, in)
	r.f.done(opRelease, t, fuse.OK)
}

func (r *rawFS) Write(c <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	t := r.f.now()
	n, s := r.RawFileSystem.Write(c, in, data)
	r.f.done(opWrite, t, s)
	return n, s
}

// Writev is how go-fuse hands over every WRITE; ENOSYS makes it call Write, which counts it then.
func (r *rawFS) Writev(c <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	t := r.f.now()
	n, s := r.RawFileSystem.Writev(c, in, data)
	if s != fuse.ENOSYS {
		r.f.done(opWrite, t, s)
	}
	return n, s
}

func (r *rawFS) CopyFileRange(c <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	t := r.f.now()
	n, s := r.RawFileSystem.CopyFileRange(c, in)
	r.f.done(opCopyFileRange, t, s)
	return n, s
}

func (r *rawFS) Ioctl(c <-chan struct{}, in *fuse.IoctlIn, inbuf []byte, out *fuse.IoctlOut, outbuf []byte) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Ioctl(c, in, inbuf, out, outbuf)
	r.f.done(opIoctl, t, s)
	return s
}

func (r *rawFS) Flush(c <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Flush(c, in)
	r.f.done(opFlush, t, s)
	return s
}

func (r *rawFS) Fsync(c <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Fsync(c, in)
	r.f.done(opFsync, t, s)
	return s
}

func (r *rawFS) Fallocate(c <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Fallocate(c, in)
	r.f.done(opFallocate, t, s)
	return s
}

func (r *rawFS) OpenDir(c <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.OpenDir(c, in, out)
	r.f.done(opOpendir, t, s)
	return s
}

func (r *rawFS) ReadDir(c <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.ReadDir(c, in, out)
	r.f.done(opReaddir, t, s)
	return s
}

func (r *rawFS) ReadDirPlus(c <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.ReadDirPlus(c, in, out)
	r.f.done(opReaddirplus, t, s)
	return s
}

func (r *rawFS) ReleaseDir(in *fuse.ReleaseIn) {
	t := r.f.now()
	r.RawFileSystem.ReleaseDir(in)
	r.f.done(opReleasedir, t, fuse.OK)
}

func (r *rawFS) FsyncDir(c <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.FsyncDir(c, in)
	r.f.done(opFsyncdir, t, s)
	return s
}

func (r *rawFS) StatFs(c <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.StatFs(c, h, out)
	r.f.done(opStatfs, t, s)
	return s
}

func (r *rawFS) Statx(c <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	t := r.f.now()
	s := r.RawFileSystem.Statx(c, in, out)
	r.f.done(opStatx, t, s)
	return s
}
