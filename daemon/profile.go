package daemon

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"segfs/internal/logfields"
)

// Opt-in profiling of a serving daemon, for performance work on the real mount (segfs bench-limits
// --profile-dir sets them for every daemon it starts). They are environment variables rather than
// flags so they reach a daemon through `segfs mount`, mount(8) and fstab unchanged. "%p" in a path is
// replaced by the daemon's pid, so several daemons can share one pattern. Paths should be absolute:
// a daemon runs in /.
const (
	// cpuProfileEnv: a CPU profile of the whole serving life, written when the daemon exits.
	cpuProfileEnv = "SEGFS_CPUPROFILE"
	// memProfileEnv: a heap profile written at exit; its alloc_space view shows every allocation site
	// of the daemon's life, which is what explains its peak RSS.
	memProfileEnv = "SEGFS_MEMPROFILE"
	// traceEnv: an execution trace (go tool trace) of the whole serving life, written as it runs and
	// closed at exit. It shows what a slow request waited for: the scheduler, GC, a syscall, a lock.
	traceEnv = "SEGFS_TRACE"
)

// startProfiles starts what the environment asks for and returns the function that writes the
// profiles; it is a no-op when none of the variables is set. A profile that cannot be created fails the
// mount: whoever asked for it would otherwise measure a run without noticing it is missing.
func startProfiles(log logrus.FieldLogger) (stop func(), err error) {
	cpuPath, memPath, tracePath := profilePath(cpuProfileEnv), profilePath(memProfileEnv), profilePath(traceEnv)
	var cpu, tr *os.File
	if cpuPath != "" {
		if cpu, err = os.Create(cpuPath); err != nil {
			return nil, fmt.Errorf("%s: %w", cpuProfileEnv, err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("%s: start CPU profile: %w", cpuProfileEnv, err)
		}
		log.WithField("path", cpuPath).Info("writing a CPU profile at exit")
	}
	if tracePath != "" {
		if tr, err = os.Create(tracePath); err != nil {
			stopCPU(cpu, log)
			return nil, fmt.Errorf("%s: %w", traceEnv, err)
		}
		if err := trace.Start(tr); err != nil {
			tr.Close()
			stopCPU(cpu, log)
			return nil, fmt.Errorf("%s: start trace: %w", traceEnv, err)
		}
		log.WithField("path", tracePath).Info("writing an execution trace")
	}
	return func() {
		if tr != nil {
			trace.Stop()
			if err := tr.Close(); err != nil {
				logfields.Err(log.WithField("op", "profile"), err).Error("close execution trace")
			}
		}
		stopCPU(cpu, log)
		if memPath != "" {
			if err := writeHeapProfile(memPath); err != nil {
				logfields.Err(log.WithField("op", "profile"), err).Error("write heap profile")
			}
		}
	}, nil
}

// stopCPU ends the CPU profile started on f, if any.
func stopCPU(f *os.File, log logrus.FieldLogger) {
	if f == nil {
		return
	}
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		logfields.Err(log.WithField("op", "profile"), err).Error("close CPU profile")
	}
}

func profilePath(env string) string {
	return strings.ReplaceAll(os.Getenv(env), "%p", strconv.Itoa(os.Getpid()))
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s: %w", memProfileEnv, err)
	}
	runtime.GC() // the in-use view is only up to date as of the last GC
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", memProfileEnv, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", memProfileEnv, err)
	}
	return nil
}
