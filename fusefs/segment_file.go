package fusefs

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// sealedHandle is an open `<base>.log`, served from a read-only descriptor of the backing file. The
// descriptor also keeps the data readable after the segment is purged, as for any unlinked file.
// Read through passthrough, the kernel holds the backing file itself and the handle none.
type sealedHandle struct {
	reads *atomic.Int64 // mountState.sealedReads

	mu sync.Mutex
	fd int // -1 once closed
}

var (
	_ = (fs.FileReader)((*sealedHandle)(nil))
	_ = (fs.FileFlusher)((*sealedHandle)(nil))
	_ = (fs.FileFsyncer)((*sealedHandle)(nil))
	_ = (fs.FileReleaser)((*sealedHandle)(nil))
	_ = (fs.FilePassthroughFder)((*passthroughHandle)(nil))
)

// Read lets go-fuse splice (or pread) straight from the backing file: a sealed file holds exactly the
// logical bytes, no padding. READs reach a handle only if it kept its descriptor.
func (h *sealedHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.reads.Add(1)
	h.mu.Lock()
	fd := h.fd
	h.mu.Unlock()
	if fd < 0 {
		return nil, syscall.EBADF
	}
	return fuse.ReadResultFd(uintptr(fd), off, len(dest)), 0
}

func (h *sealedHandle) Flush(ctx context.Context) syscall.Errno { return 0 }

// Fsync: a sealed segment was made durable and exact when it was sealed.
func (h *sealedHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }

func (h *sealedHandle) Release(ctx context.Context) syscall.Errno {
	h.closeFD()
	return 0
}

func (h *sealedHandle) closeFD() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fd >= 0 {
		_ = unix.Close(h.fd)
		h.fd = -1
	}
}

// passthroughHandle offers go-fuse the backing descriptor for FUSE passthrough: the kernel then reads
// the backing file itself and READ never reaches this process. go-fuse registers it only when the
// node has no backing id yet (the first of its concurrent opens) and frees the id when the node's
// last handle is released. The kernel keeps its own reference to the file, so the descriptor is only
// needed until the OPEN is answered (passthroughOpens closes it then): open sealed segments cost the
// daemon no descriptor.
type passthroughHandle struct {
	*sealedHandle
}

func (h *passthroughHandle) PassthroughFd() (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fd, h.fd >= 0
}

// passthroughOpens tracks the passthrough handles whose OPEN go-fuse is answering, by the request's
// cancel channel (unique among requests in flight), so that rawFS.Open finds them once go-fuse has
// registered the backing file.
type passthroughOpens struct {
	mu      sync.Mutex
	pending map[<-chan struct{}]*sealedHandle
}

func (p *passthroughOpens) add(req <-chan struct{}, h *sealedHandle) {
	if req == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending == nil {
		p.pending = make(map[<-chan struct{}]*sealedHandle)
	}
	p.pending[req] = h
}

// answered runs once go-fuse has answered the OPEN of req: a handle the kernel now reads through
// passthrough gives up its descriptor.
func (p *passthroughOpens) answered(req <-chan struct{}, passthrough bool) {
	p.mu.Lock()
	h, ok := p.pending[req]
	delete(p.pending, req)
	p.mu.Unlock()
	if ok && passthrough {
		h.closeFD()
	}
}

// rawFS is the node tree's RawFileSystem with one addition, which the fs API has no hook for: after
// go-fuse answered an OPEN, and registered the passthrough backing file if it did, the descriptor
// that served the registration is closed (passthroughOpens).
type rawFS struct {
	fuse.RawFileSystem
	ms *mountState
}

func (r rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	st := r.RawFileSystem.Open(cancel, in, out)
	r.ms.passthroughOpens.answered(cancel, st == fuse.OK && out.OpenFlags&fuse.FOPEN_PASSTHROUGH != 0)
	return st
}
