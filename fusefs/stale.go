package fusefs

import (
	"github.com/hanwen/go-fuse/v2/fs"
)

// staleEntries makes the kernel forget long-cached names of purged segments, from one goroutine: a
// request handler must not wait on directory locks. A name that overflows the queue costs a stale
// ENOENT until its timeout, never wrong data.
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

// close stops the worker once the server has stopped.
func (s *staleEntries) close() {
	close(s.stop)
	<-s.done
}
