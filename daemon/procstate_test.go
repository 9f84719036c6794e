package daemon

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestProcessState: /proc/PID/stat tells a stopped process from a running one, which is what
// segfs umount names when a daemon serves nothing.
func TestProcessState(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	if got := processState(pid); got != "" {
		t.Fatalf("sleeping process: state %q, want none", got)
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for processState(pid) != "stopped" {
		if time.Now().After(deadline) {
			t.Fatalf("stopped process: state %q, want stopped", processState(pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := processState(1 << 30); got != "" {
		t.Fatalf("no such process: state %q, want none", got)
	}
}
