package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

// TestBuildInfo: link-time values (the Makefile) win; otherwise the toolchain's module version and
// VCS stamp (a plain go build in a clone), marked dirty when modified; otherwise devel and unknown
// (-buildvcs=false).
func TestBuildInfo(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "segfs", Version: "v0.0.0-20260101000000-abcdef012345"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "abcdef0123456789"}, {Key: "vcs.modified", Value: "true"}}}
	devel := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "segfs", Version: "(devel)"}}
	for _, c := range []struct {
		name         string
		ver, rev     string
		bi           *debug.BuildInfo
		wantV, wantR string
	}{
		{"make build", "v1.2.0-3-gabcdef0", "abcdef0123", stamped, "v1.2.0-3-gabcdef0", "abcdef0123"},
		{"go build with VCS", "", "", stamped, "v0.0.0-20260101000000-abcdef012345", "abcdef0123456789-dirty"},
		{"go build -buildvcs=false", "", "", devel, "devel", "unknown"},
	} {
		b := buildInfo(c.ver, c.rev, c.bi)
		if b.Version != c.wantV || b.Revision != c.wantR || b.GoVersion != "go1.26.8" {
			t.Errorf("%s: %+v; want version %q, revision %q", c.name, b, c.wantV, c.wantR)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"segfs", "--version"}, &out, &out); code != 0 ||
		!strings.HasPrefix(out.String(), "segfs version "+versionLine(thisBuild())+"\n") {
		t.Errorf("segfs --version: exit %d, %q", code, out.String())
	}
}
