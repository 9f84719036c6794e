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

// sealedHandle is an open `<base>.log`, served from a descriptor of the backing file, which also keeps
// it readable after a purge. With passthrough the kernel holds the file, and the handle nothing.
type sealedHandle struct {
	reads  *atomic.Int64 // mountState.sealedReads
	onRead func()        // mountState.onSealedRead

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

// Read lets go-fuse splice from the backing file, which holds exactly the logical bytes.
func (h *sealedHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.reads.Add(1)
	h.onRead()
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

// passthroughHandle offers go-fuse the backing descriptor for passthrough; READ then never reaches
// this process. go-fuse registers a node's backing id at its first open and frees it at its last
// release. The kernel holds the file itself, so the descriptor is closed once the OPEN is answered.
type passthroughHandle struct {
	*sealedHandle
}

func (h *passthroughHandle) PassthroughFd() (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fd, h.fd >= 0
}

// passthroughOpens finds a handle by its OPEN request's cancel channel, unique among requests in
// flight.
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

func (p *passthroughOpens) answered(req <-chan struct{}, passthrough bool) {
	p.mu.Lock()
	h, ok := p.pending[req]
	delete(p.pending, req)
	p.mu.Unlock()
	if ok && passthrough {
		h.closeFD()
	}
}

// rawFS closes, once go-fuse has answered an OPEN with passthrough, the descriptor it registered: the
// fs API has no hook after the registration.
type rawFS struct {
	fuse.RawFileSystem
	ms *mountState
}

func (r rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	st := r.RawFileSystem.Open(cancel, in, out)
	r.ms.passthroughOpens.answered(cancel, st == fuse.OK && out.OpenFlags&fuse.FOPEN_PASSTHROUGH != 0)
	return st
}
