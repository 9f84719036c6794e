package daemon

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"segfs/internal/logfields"
)

// A daemon listens on an abstract unix socket named after its mount point. `segfs umount` connects
// before unmounting and reads until EOF, which the kernel sends only when the daemon exits, after the
// log was closed: EOF means every partition is synced. An abstract socket leaves no stale file and is
// found from the mount point alone.
//
// After the greeting a client may send "status", answered with "status <JSON of Status>" and a close.

// controlAddr hashes mnt (resolved): abstract names are limited to 107 bytes, mount points are not.
func controlAddr(mnt string) string {
	sum := sha256.Sum256([]byte(mnt))
	return "@segfs/mount/" + hex.EncodeToString(sum[:16])
}

// controlServer holds each connection open until the daemon exits, unless its client sends a request.
type controlServer struct {
	ln       net.Listener
	log      logrus.FieldLogger
	status   func() *Status
	stop     chan struct{}
	accepted chan struct{}  // closed when the accept loop has returned
	requests sync.WaitGroup // one request reader per connection
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func listenControl(mnt string, status func() *Status, log logrus.FieldLogger) (*controlServer, error) {
	ln, err := net.Listen("unix", controlAddr(mnt))
	if err != nil {
		return nil, fmt.Errorf("control socket for %s: %w", mnt, err)
	}
	s := &controlServer{
		ln: ln, log: log, status: status, stop: make(chan struct{}), accepted: make(chan struct{}),
		conns: map[net.Conn]struct{}{},
	}
	go s.accept()
	return s, nil
}

func (s *controlServer) accept() {
	defer close(s.accepted)
	backoff := time.Duration(0)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.stop:
				return
			default:
			}
			// Running out of descriptors passes, and umount needs the socket: back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			logfields.Err(s.log.WithField("op", "accept"), err).Warnf("control socket: accept failed; retrying in %v", backoff)
			select {
			case <-s.stop:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		// Only the daemon's user and root may connect; others are told why.
		if uid, _, err := peerCred(c); err != nil || (uid != 0 && uid != uint32(os.Getuid())) {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			fmt.Fprintf(c, "refused only uid %d (the daemon's user) and root may use it\n", os.Getuid())
			c.Close()
			continue
		}
		s.mu.Lock()
		fmt.Fprintf(c, "pid %d\n", os.Getpid())
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.requests.Add(1)
		go s.serve(c)
	}
}

// serve answers c's request line, if any; finish wakes it with a read deadline, leaving c open.
func (s *controlServer) serve(c net.Conn) {
	defer s.requests.Done()
	line, err := bufio.NewReader(c).ReadString('\n')
	select {
	case <-s.stop:
		return
	default:
	}
	if err == nil {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		switch req := strings.TrimSpace(line); req {
		case "status":
			b, err := json.Marshal(s.status())
			if err != nil {
				fmt.Fprintf(c, "error %s\n", oneLine(err.Error()))
				break
			}
			fmt.Fprintf(c, "status %s\n", b)
		default:
			fmt.Fprintf(c, "error unknown request %q\n", req)
		}
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// finish stops accepting and tells every waiting `segfs umount` how closing the log went; the
// daemon's exit then closes the connections.
func (s *controlServer) finish(closeErr error) {
	close(s.stop)
	s.ln.Close()
	<-s.accepted
	s.mu.Lock()
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	s.requests.Wait()
	msg := "ok\n"
	if closeErr != nil {
		msg = "error " + oneLine(closeErr.Error()) + "\n"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		fmt.Fprint(c, msg)
	}
}

// controlClient is umount's end of the socket.
type controlClient struct {
	conn net.Conn
	r    *bufio.Reader
	pid  int32
}

// refusedError: a daemon answered, but not to this user.
type refusedError string

func (e refusedError) Error() string { return string(e) }

// dialControl connects to the daemon serving mnt and reads its greeting; a refusedError means it
// refused this user.
func dialControl(mnt string) (*controlClient, error) {
	c, err := net.Dial("unix", controlAddr(mnt))
	if err != nil {
		return nil, err
	}
	_, pid, err := peerCred(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	// The greeting proves the daemon accepted us; a backlogged connection would be reset silently.
	r := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadString('\n')
	_ = c.SetReadDeadline(time.Time{})
	if reason, ok := strings.CutPrefix(line, "refused "); ok {
		c.Close()
		return nil, refusedError(fmt.Sprintf("daemon (pid %d) refused this user (uid %d): %s", pid, os.Getuid(), strings.TrimSpace(reason)))
	}
	if err != nil || !strings.HasPrefix(line, "pid ") {
		c.Close()
		return nil, silentError{pid: int(pid), err: err}
	}
	return &controlClient{conn: c, r: r, pid: pid}, nil
}

// silentError: the daemon accepted the connection but sent no greeting.
type silentError struct {
	pid int
	err error
}

func (e silentError) Error() string {
	return fmt.Sprintf("daemon (pid %d) did not answer: %v", e.pid, e.err)
}

// waitExit returns, once the daemon has exited, what it reported about closing the log.
func (cc *controlClient) waitExit() error {
	defer cc.conn.Close()
	var status string
	sc := bufio.NewScanner(cc.r)
	for sc.Scan() {
		if line := sc.Text(); !strings.HasPrefix(line, "pid ") {
			status = line
		}
	}
	switch {
	case status == "ok":
		return nil
	case strings.HasPrefix(status, "error "):
		return fmt.Errorf("daemon (pid %d) failed to close the log: %s", cc.pid, strings.TrimPrefix(status, "error "))
	default:
		return fmt.Errorf("daemon (pid %d) exited without confirming that every partition was synced", cc.pid)
	}
}

func peerCred(c net.Conn) (uid uint32, pid int32, err error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, 0, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, err
	}
	if credErr != nil {
		return 0, 0, credErr
	}
	return cred.Uid, cred.Pid, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// request returns the daemon's answer to one request, without its leading word.
func (cc *controlClient) request(req, want string) (string, error) {
	defer cc.conn.Close()
	_ = cc.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(cc.conn, "%s\n", req); err != nil {
		return "", fmt.Errorf("daemon (pid %d): send %s request: %w", cc.pid, req, err)
	}
	line, err := cc.r.ReadString('\n')
	if err != nil {
		// An older daemon never answers; one that is exiting closes.
		return "", fmt.Errorf("daemon (pid %d) did not answer the %s request (%v); is it an older segfs?", cc.pid, req, err)
	}
	word, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	switch word {
	case want:
		return rest, nil
	case "error":
		return "", fmt.Errorf("daemon (pid %d): %s", cc.pid, rest)
	}
	return "", fmt.Errorf("daemon (pid %d) answered the %s request with %q", cc.pid, req, firstLine(line))
}
