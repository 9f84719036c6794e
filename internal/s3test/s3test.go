// Package s3test runs a real S3 engine for tests: versitygw, an S3 gateway over a local directory, on a
// loopback port with generated root credentials and one bucket. Tests stop and restart it to see what
// segfs does while its object store is down.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the region versitygw answers for.
const Region = "us-east-1"

// Server is one versitygw process. Its endpoint, credentials and bucket stay the same across Restart.
type Server struct {
	t         testing.TB
	bin       string
	dir       string // the gateway's backing directory; the bucket is a directory in it
	logPath   string
	Endpoint  string // http://127.0.0.1:PORT
	Bucket    string
	AccessKey string
	SecretKey string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Find returns the path of versitygw: PATH first, then $(go env GOPATH)/bin, where
// scripts/install-deps.sh installs it.
func Find() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "versitygw")
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", errors.New("versitygw is not on PATH nor in $(go env GOPATH)/bin; run scripts/install-deps.sh")
}

// Start runs versitygw for the test and creates its bucket; a cleanup stops it. Without versitygw the
// test is skipped, or fails when SEGFS_REQUIRE_FUSE is set (CI, where everything must run).
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Find()
	if err != nil {
		if os.Getenv("SEGFS_REQUIRE_FUSE") != "" {
			t.Fatalf("%v (SEGFS_REQUIRE_FUSE is set: tests must not skip)", err)
		}
		t.Skip(err)
	}
	base := t.TempDir()
	s := &Server{
		t: t, bin: bin, dir: filepath.Join(base, "gw"), logPath: filepath.Join(base, "versitygw.log"),
		Bucket: "segfs-test", AccessKey: "segfs" + randHex(6), SecretKey: randHex(20),
	}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	t.Cleanup(s.Stop)
	s.run()
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v\n%s", s.Bucket, err, s.Log())
	}
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// run starts the process and waits until it accepts connections.
func (s *Server) run() {
	s.t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	hostport := strings.TrimPrefix(s.Endpoint, "http://")
	cmd := exec.Command(s.bin, "--quiet", "--port", hostport, "posix", s.dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies, the gateway goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start versitygw: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", hostport, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			s.t.Fatalf("versitygw exited at start\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw not listening on %s after 20s\n%s", hostport, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the gateway (SIGKILL: the store vanishes as a crashed or unreachable one would) and waits
// for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts a stopped gateway again on the same port, over the same directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.run()
}

// Log is the gateway's output so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// Env is the environment a segfs daemon needs to reach the store with the standard AWS credential chain.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey, "AWS_REGION=" + Region,
		// No shared config of the machine may change what the tests see.
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
	}
}

// Client is a plain SDK client of the gateway, for tests that look at the bucket behind segfs's back.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// Keys lists every object key in the bucket with its size.
func (s *Server) Keys(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	return out, nil
}

// Dir is the gateway's backing directory: the posix backend keeps bucket B's object K at Dir/B/K, so
// a test can damage an object on the store's disk.
func (s *Server) Dir() string { return s.dir }
