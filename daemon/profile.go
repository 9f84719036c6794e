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

// Opt-in profiling of a serving daemon. Environment variables, not flags, so they pass through
// `segfs mount`, mount(8) and fstab. "%p" in a path is the daemon's pid. Paths should be absolute:
// a daemon runs in /.
const (
	// cpuProfileEnv: a CPU profile of the serving life, written at exit.
	cpuProfileEnv = "SEGFS_CPUPROFILE"
	// memProfileEnv: a heap profile written at exit; alloc_space explains the peak RSS.
	memProfileEnv = "SEGFS_MEMPROFILE"
	// traceEnv: an execution trace of the serving life, showing what a slow request waited for.
	traceEnv = "SEGFS_TRACE"
)

// startProfiles returns the function that writes the profiles. A profile that cannot be created
// fails the mount, or a run would be measured without it unnoticed.
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
