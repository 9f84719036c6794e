package fusefs

import (
	"github.com/hanwen/go-fuse/v2/fs"
)

// staleEntries makes the kernel forget names of segments that are gone (retention purges segments behind
// the kernel's back, and sealed names are cached for long). The notifications go out on one goroutine that
// the mount owns: a notification must not wait on directory locks from inside a request handler, and one
// goroutine per stale lookup would have no owner. The queue is bounded; a name that does not fit stays
// cached until its entry timeout, which costs a stale ENOENT, never wrong data.
type staleEntries struct {
	queue chan staleEntry
	stop  chan struct{}
	done  chan struct{}
}

type staleEntry struct {
	parent *fs.Inode
	name   string
}

const staleQueue = 256

func newStaleEntries() *staleEntries {
	s := &staleEntries{queue: make(chan staleEntry, staleQueue), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// drop queues the forgetting of name in parent and returns at once.
func (s *staleEntries) drop(parent *fs.Inode, name string) {
	select {
	case s.queue <- staleEntry{parent, name}:
	default:
	}
}

func (s *staleEntries) run() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case e := <-s.queue:
			_ = e.parent.NotifyEntry(e.name)
		}
	}
}

// close stops the worker; it is called once the server has stopped serving, when notifications have
// nowhere to go.
func (s *staleEntries) close() {
	close(s.stop)
	<-s.done
}
