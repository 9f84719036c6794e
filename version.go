package main

import (
	"runtime"
	"runtime/debug"

	"segfs/daemon"
)

// version and revision are set at link time by the Makefile (-ldflags "-X main.version=... -X
// main.revision=..."); a plain go build or go install leaves them empty and the Go toolchain's build
// information answers instead.
var (
	version  string
	revision string
)

// buildInfo is what `segfs --version`, `segfs status` and the metrics report about this binary: the
// link-time values when set, else the module version and VCS revision the toolchain stamped (absent
// when built with -buildvcs=false), else "devel" and "unknown".
func buildInfo(linkVersion, linkRevision string, bi *debug.BuildInfo) daemon.Build {
	b := daemon.Build{Version: linkVersion, Revision: linkRevision, GoVersion: runtime.Version()}
	if bi != nil {
		b.GoVersion = bi.GoVersion
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		if b.Revision == "" {
			modified := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					b.Revision = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if b.Revision != "" && modified {
				b.Revision += "-dirty"
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	if b.Revision == "" {
		b.Revision = "unknown"
	}
	return b
}

// thisBuild is buildInfo of the running binary.
func thisBuild() daemon.Build {
	bi, _ := debug.ReadBuildInfo()
	return buildInfo(version, revision, bi)
}

// versionLine is what --version prints after "segfs version ".
func versionLine(b daemon.Build) string {
	return b.Version + " (revision " + b.Revision + ", " + b.GoVersion + ")"
}
