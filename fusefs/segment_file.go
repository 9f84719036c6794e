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

// sealedHandle serves `<base>.log` from a descriptor, which keeps it readable after a purge.
type sealedHandle struct {
	reads  *atomic.Int64
	onRead func()

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

// Read lets go-fuse splice: the backing file holds exactly the logical bytes.
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

// Fsync: sealing made the segment durable.
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

// passthroughHandle offers go-fuse the descriptor; the kernel then holds the file itself.
type passthroughHandle struct {
	*sealedHandle
}

func (h *passthroughHandle) PassthroughFd() (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fd, h.fd >= 0
}

// passthroughOpens keys handles by their OPEN's cancel channel, unique in flight.
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

// rawFS closes a passthrough descriptor once go-fuse has answered its OPEN: the fs API has no hook.
type rawFS struct {
	fuse.RawFileSystem
	ms *mountState
}

func (r rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	st := r.RawFileSystem.Open(cancel, in, out)
	r.ms.passthroughOpens.answered(cancel, st == fuse.OK && out.OpenFlags&fuse.FOPEN_PASSTHROUGH != 0)
	return st
}
