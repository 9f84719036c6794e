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

// The daemon of a mount listens on an abstract unix socket named after its mount point. `segfs umount` connects
// before unmounting and then reads until EOF: the kernel closes the daemon's end only when the daemon process
// exits, which is after the log was closed, so EOF means "every partition is synced and the daemon is gone".
// An abstract socket needs no file, so a killed daemon leaves nothing stale behind, and it is found from the
// mount point alone, whatever data dir, environment or user the daemon was started with.
//
// A client may also send one request line after the greeting: "status" is answered with one line,
// "status <JSON of Status>", and the connection is closed. A client that sends nothing waits for the exit.

// controlAddr is the socket address of the daemon serving mnt (resolved, absolute). Hashed because abstract
// names are limited to 107 bytes and mount points are not.
func controlAddr(mnt string) string {
	sum := sha256.Sum256([]byte(mnt))
	return "@segfs/mount/" + hex.EncodeToString(sum[:16])
}

// controlServer holds every accepted connection open until the daemon exits, unless its client asks for
// something else; finish reports the outcome of closing the log to each of them and stops accepting.
type controlServer struct {
	ln       net.Listener
	log      logrus.FieldLogger
	status   func() *Status
	stop     chan struct{}
	accepted chan struct{}  // closed when the accept loop has returned
	requests sync.WaitGroup // one reader per connection, waiting for a request line
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
			// Out of descriptors (EMFILE, ENFILE) is a moment, not the end: a umount that cannot connect
			// would not be able to wait for the sync. Back off as net/http does and accept again.
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
		// Only the daemon's own user and root may learn its state or when it exits; others are told why.
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

// serve answers the request line of c, if its client sends one. finish wakes it with a read deadline,
// leaving the connection to wait for the exit.
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
	// Answered, or the client went away: nothing waits on this connection any more.
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// finish stops accepting and tells every waiting `segfs umount` how closing the log went. The connections stay
// open: the daemon's exit closes them, and that EOF is what the client waits for. A client connecting after
// this is refused, and by then the mount is gone from the mount table.
func (s *controlServer) finish(closeErr error) {
	close(s.stop)
	s.ln.Close()
	<-s.accepted
	s.mu.Lock()
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Now()) // wakes its request reader, which leaves it open
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

// dialControl connects to the daemon serving mnt. An error means no live daemon serves it.
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
	// The greeting proves the daemon accepted us; a connection still in the backlog when it exits would be
	// reset without a word.
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
		return nil, fmt.Errorf("daemon (pid %d) did not answer: %v", pid, err)
	}
	return &controlClient{conn: c, r: r, pid: pid}, nil
}

// waitExit blocks until the daemon has exited and returns what it reported about closing the log.
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

// request sends one request line and returns the daemon's answer to it, without its leading word.
func (cc *controlClient) request(req, want string) (string, error) {
	defer cc.conn.Close()
	_ = cc.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(cc.conn, "%s\n", req); err != nil {
		return "", fmt.Errorf("daemon (pid %d): send %s request: %w", cc.pid, req, err)
	}
	line, err := cc.r.ReadString('\n')
	if err != nil {
		// A daemon of a segfs before status requests never answers; one that is exiting closes.
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
