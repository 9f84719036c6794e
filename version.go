package main

import (
	"runtime"
	"runtime/debug"

	"segfs/daemon"
)

// version and revision are set by the Makefile (-ldflags -X); empty in a plain go build.
var (
	version  string
	revision string
)

// buildInfo: the link-time values, else what the toolchain stamped (nothing with -buildvcs=false),
// else "devel" and "unknown".
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

func thisBuild() daemon.Build {
	bi, _ := debug.ReadBuildInfo()
	return buildInfo(version, revision, bi)
}

func versionLine(b daemon.Build) string {
	return b.Version + " (revision " + b.Revision + ", " + b.GoVersion + ")"
}
