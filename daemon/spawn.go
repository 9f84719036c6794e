package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// readyFDEnv names the descriptor on which the daemon reports "ready" or "error <reason>", so
// `segfs mount` (and mount(8)) returns once the mount is live.
const readyFDEnv = "SEGFS_READY_FD"

// Spec is what the parent hands the daemon: resolved paths and canonical options, so the child
// mounts exactly what the parent validated.
type Spec struct {
	LogLevel, LogFormat, LogFile string
	DataDir, Mountpoint, Options string
}

func (d Spec) Args() []string {
	return []string{
		"--log-level", d.LogLevel, "--log-format", d.LogFormat, "--log-file", d.LogFile,
		"mount", "--foreground", "--data", d.DataDir, "-o", d.Options, "--", d.Mountpoint,
	}
}

// startDaemon re-executes segfs detached (new session, stdio on the log file, cwd /) and waits for
// its readiness line.
func startDaemon(spec Spec) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	logf, err := os.OpenFile(spec.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("daemon pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, spec.Args()...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf // panics reach the log too
	cmd.ExtraFiles = []*os.File{w}      // fd 3 in the child
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close() // the parent's copy: EOF on r must mean the child closed or died
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	line, readErr := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case line == "ready":
		return cmd.Process.Release()
	case strings.HasPrefix(line, "error "):
		_ = cmd.Wait()
		return errors.New(strings.TrimPrefix(line, "error "))
	}
	if readErr != nil && readErr != io.EOF {
		return fmt.Errorf("daemon readiness: %w", readErr)
	}
	werr := cmd.Wait()
	return fmt.Errorf("daemon exited before the mount was ready (%v); see %s", werr, spec.LogFile)
}

// readyReporter is the daemon's end of the readiness pipe; a plain --foreground run has none.
type readyReporter struct{ f *os.File }

func readyFromEnv() *readyReporter {
	v := os.Getenv(readyFDEnv)
	if v == "" {
		return &readyReporter{}
	}
	os.Unsetenv(readyFDEnv) // not for anything we start
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return &readyReporter{}
	}
	// fusermount3 must not inherit the pipe, or the parent would miss EOF if we died.
	unix.CloseOnExec(fd)
	return &readyReporter{f: os.NewFile(uintptr(fd), "ready")}
}

func (r *readyReporter) ready() { r.send("ready") }

func (r *readyReporter) fail(err error) { r.send("error " + oneLine(err.Error())) }

// send reports once; a parent already gone is no reason to stop.
func (r *readyReporter) send(line string) {
	if r.f == nil {
		return
	}
	_, _ = io.WriteString(r.f, line+"\n")
	r.f.Close()
	r.f = nil
}
