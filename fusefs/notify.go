package fusefs

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/sirupsen/logrus"

	"segfs/internal/logfields"
)

// RotateNotifier invalidates the kernel's dentry of `current` after each rotation. Not
// FUSE_NOTIFY_DELETE: that locks the old inode, which a blocked write() holds, so a killed daemon
// would never exit and the mount would hang instead of failing with ENOTCONN.
//
// Pass Func() to segments.Config.OnRotate, then the notifier to Mount in Options.Notifier.
type RotateNotifier struct {
	mu       sync.Mutex
	root     *fs.Inode // nil while not mounted
	logger   logrus.FieldLogger
	pending  map[partitionKey]struct{}
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	notified atomic.Int64 // invalidations the kernel accepted
}

type partitionKey struct {
	topic     string
	partition int
}

// NewRotateNotifier returns a notifier not yet attached to a mount.
func NewRotateNotifier() *RotateNotifier {
	return &RotateNotifier{pending: make(map[partitionKey]struct{}), wake: make(chan struct{}, 1)}
}

// Func returns the callback for segments.Config.OnRotate.
func (n *RotateNotifier) Func() func(topic string, partition int, sealed, active int64) {
	return n.rotated
}

// rotated only queues: a notification sent from a WRITE's goroutine can deadlock against a request
// holding the directory lock. Rotations of a partition coalesce, so the queue stays bounded.
func (n *RotateNotifier) rotated(topic string, partition int, sealed, active int64) {
	n.mu.Lock()
	if n.root == nil {
		n.mu.Unlock()
		return
	}
	n.pending[partitionKey{topic, partition}] = struct{}{}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *RotateNotifier) attach(root *fs.Inode, logger logrus.FieldLogger) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.root != nil {
		return errors.New("rotate notifier is already attached to a mount")
	}
	n.root, n.logger = root, logger
	n.stop, n.done = make(chan struct{}), make(chan struct{})
	go n.run(n.stop, n.done)
	return nil
}

// detach stops the worker after the server; later rotations are dropped.
func (n *RotateNotifier) detach() {
	n.mu.Lock()
	if n.root == nil {
		n.mu.Unlock()
		return
	}
	n.root = nil
	stop, done := n.stop, n.done
	n.pending = make(map[partitionKey]struct{})
	n.mu.Unlock()
	close(stop)
	<-done
}

func (n *RotateNotifier) run(stop, done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case <-n.wake:
		}
		n.mu.Lock()
		root, logger, batch := n.root, n.logger, n.pending
		n.pending = make(map[partitionKey]struct{})
		n.mu.Unlock()
		for k := range batch {
			n.invalidate(root, logger, k)
		}
	}
}

// invalidate drops the kernel's dentry of <topic>/<p>/current, if the kernel holds the directory.
func (n *RotateNotifier) invalidate(root *fs.Inode, logger logrus.FieldLogger, k partitionKey) {
	if root == nil {
		return
	}
	t := root.GetChild(k.topic)
	if t == nil {
		return
	}
	p := t.GetChild(strconv.Itoa(k.partition))
	if p == nil {
		return
	}
	switch errno := p.NotifyEntry(currentName); errno {
	case 0:
		n.notified.Add(1)
	case syscall.ENOENT:
	default:
		logger.WithFields(logrus.Fields{"topic": k.topic, "partition": k.partition, "errno": logfields.Errno(errno)}).
			Debug("invalidate current after rotation")
	}
}
