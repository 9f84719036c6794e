package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// limitsMount is a segfs daemon serving a fresh data dir under --data for one target.
type limitsMount struct {
	*mounted
	dir, data string // dir holds data, the mount point and anything else the target needs
	opts      string // the -o options it was mounted with
}

// mount starts `segfs mount --foreground` with opts on a fresh data dir. label names the profiles.
func (r *limitsRun) mount(ctx context.Context, label, opts string) (*limitsMount, error) {
	dir, err := os.MkdirTemp(r.cfg.DataDir, "segfs-limits-"+label+"-")
	if err != nil {
		return nil, fmt.Errorf("temp dir under --data: %w", err)
	}
	m := &limitsMount{dir: dir, data: filepath.Join(dir, "data"), opts: opts}
	mnt := filepath.Join(dir, "mnt")
	for _, d := range []string{m.data, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("temp dir: %w", err)
		}
	}
	r.pr.note("mounting segfs -o " + opts)
	if m.mounted, err = mountSegfs(ctx, r.cfg.Binary, m.data, mnt, opts, r.profileEnv(label)...); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return m, nil
}

func (m *limitsMount) pid() int { return m.cmd.Process.Pid }

// close unmounts (the daemon syncs every partition) and removes everything the target made.
func (m *limitsMount) close() error {
	err := m.unmount()
	if rerr := os.RemoveAll(m.dir); rerr != nil && err == nil {
		err = fmt.Errorf("remove %s: %w", m.dir, rerr)
	}
	return err
}

// procStats is what /proc says about a process: the evidence next to each measurement (how much CPU
// the daemon burnt, how many requests it read from /dev/fuse, how much it read from disk, its memory).
type procStats struct {
	UserS      float64 `json:"user_s"`
	SysS       float64 `json:"sys_s"`
	RChar      int64   `json:"rchar"`       // bytes read by read(2)-family calls, /dev/fuse included
	WChar      int64   `json:"wchar"`       // bytes written, replies to /dev/fuse included
	SysCR      int64   `json:"syscr"`       // read(2)-family calls
	SysCW      int64   `json:"syscw"`       // write(2)-family calls
	ReadBytes  int64   `json:"read_bytes"`  // bytes the block layer read for it (cold reads)
	WriteBytes int64   `json:"write_bytes"` // bytes it caused to be written to the block layer
	VmRSS      int64   `json:"vm_rss"`
	VmHWM      int64   `json:"vm_hwm"`
	Threads    int     `json:"threads"`
	FDs        int     `json:"fds"`
}

// userHZ is the unit of /proc/<pid>/stat times: USER_HZ, 100 on every Linux ABI.
const userHZ = 100

func readProc(pid int) (procStats, error) {
	var st procStats
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	raw, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return st, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	// comm may hold spaces and parentheses; the fields after the last ')' are fixed: utime is the 14th
	// field of the line, the 12th after comm.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 13 {
		return st, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	sy, _ := strconv.ParseFloat(f[12], 64)
	st.UserS, st.SysS = ut/userHZ, sy/userHZ
	kv := func(name string, f func(k string, v int64)) error {
		file, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("read /proc/%d/%s: %w", pid, name, err)
		}
		defer file.Close()
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			fields := strings.Fields(v)
			if len(fields) == 0 {
				continue
			}
			n, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				continue
			}
			if len(fields) > 1 && fields[1] == "kB" {
				n <<= 10
			}
			f(k, n)
		}
		return sc.Err()
	}
	if err := kv("io", func(k string, v int64) {
		if p := map[string]*int64{"rchar": &st.RChar, "wchar": &st.WChar, "syscr": &st.SysCR, "syscw": &st.SysCW,
			"read_bytes": &st.ReadBytes, "write_bytes": &st.WriteBytes}[k]; p != nil {
			*p = v
		}
	}); err != nil {
		return st, err
	}
	if err := kv("status", func(k string, v int64) {
		switch k {
		case "VmRSS":
			st.VmRSS = v
		case "VmHWM":
			st.VmHWM = v
		case "Threads":
			st.Threads = int(v)
		}
	}); err != nil {
		return st, err
	}
	if fds, err := os.ReadDir(filepath.Join(dir, "fd")); err == nil {
		st.FDs = len(fds)
	}
	return st, nil
}

// ProcDelta is a daemon's work between two snapshots of its /proc: CPU, syscalls and disk traffic.
type ProcDelta struct {
	CPUSeconds float64 `json:"cpu_s"`
	UserS      float64 `json:"user_s"`
	SysS       float64 `json:"sys_s"`
	Reads      int64   `json:"reads"`      // read(2)-family calls: FUSE requests plus preads
	ReadChars  int64   `json:"read_chars"` // their bytes: WRITE payloads arrive here
	Writes     int64   `json:"writes"`     // write(2)-family calls: FUSE replies plus pwrites
	WriteChars int64   `json:"write_chars"`
	ReadBytes  int64   `json:"read_bytes"`
	WriteBytes int64   `json:"write_bytes"`
}

func (a procStats) delta(b procStats) ProcDelta {
	return ProcDelta{
		CPUSeconds: (b.UserS + b.SysS) - (a.UserS + a.SysS), UserS: b.UserS - a.UserS, SysS: b.SysS - a.SysS,
		Reads: b.SysCR - a.SysCR, ReadChars: b.RChar - a.RChar, Writes: b.SysCW - a.SysCW,
		WriteChars: b.WChar - a.WChar, ReadBytes: b.ReadBytes - a.ReadBytes, WriteBytes: b.WriteBytes - a.WriteBytes,
	}
}

func (d ProcDelta) add(e ProcDelta) ProcDelta {
	return ProcDelta{
		CPUSeconds: d.CPUSeconds + e.CPUSeconds, UserS: d.UserS + e.UserS, SysS: d.SysS + e.SysS,
		Reads: d.Reads + e.Reads, ReadChars: d.ReadChars + e.ReadChars, Writes: d.Writes + e.Writes,
		WriteChars: d.WriteChars + e.WriteChars, ReadBytes: d.ReadBytes + e.ReadBytes, WriteBytes: d.WriteBytes + e.WriteBytes,
	}
}

// watch runs f and returns the daemon's work during it.
func watch(pid int, f func() error) (ProcDelta, error) {
	before, err := readProc(pid)
	if err != nil {
		return ProcDelta{}, err
	}
	if err := f(); err != nil {
		return ProcDelta{}, err
	}
	after, err := readProc(pid)
	if err != nil {
		return ProcDelta{}, err
	}
	return before.delta(after), nil
}

// dropCaches writes back dirty pages and drops the page, dentry and inode caches, for a cold read.
func dropCaches() error {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("drop caches: %w", err)
	}
	return nil
}

// canDropCaches says why cold measurements cannot run, or "" when they can.
func (r *limitsRun) canDropCaches() string {
	if !r.cfg.DropCaches {
		return "cold measurement disabled (--drop-caches=false)"
	}
	if unix.Access("/proc/sys/vm/drop_caches", unix.W_OK) != nil {
		return "/proc/sys/vm/drop_caches is not writable (not root?)"
	}
	return ""
}

// timeCommand runs a command to completion, output discarded unless it fails, and returns its wall time.
func timeCommand(ctx context.Context, name string, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr tailBuffer
	stderr.max = 4 << 10
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return took, nil
}
