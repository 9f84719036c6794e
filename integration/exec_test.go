package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// cmdResult is what a finished command printed and how it exited.
type cmdResult struct {
	stdout, stderr string
	code           int
}

func (r cmdResult) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, trimForLog(r.stdout), trimForLog(r.stderr))
}

func trimForLog(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "..."
	}
	return s
}

// runCmd runs a program with LC_ALL=C (so messages are the English strerror texts) and extra env vars,
// failing the test only if it cannot be started or runs past timeout.
func runCmd(t *testing.T, timeout time.Duration, env []string, name string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cmdResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %q: still running after %v (%v)", name, args, timeout, res)
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return res
}

// sh runs a shell script with sh -c; env holds NAME=value pairs the script refers to as $NAME, which avoids
// quoting paths into the script.
func sh(t *testing.T, script string, env ...string) cmdResult {
	t.Helper()
	return runCmd(t, 5*time.Minute, env, "sh", "-c", script)
}

// mustSh is sh that fails the test unless the script exits 0.
func mustSh(t *testing.T, script string, env ...string) cmdResult {
	t.Helper()
	res := sh(t, script, env...)
	if res.code != 0 {
		t.Fatalf("sh -c %q (%q): %v", script, env, res)
	}
	return res
}

// lockedBuffer collects output of a child process that may be read while the child runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
