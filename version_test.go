package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
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

// TestVersionOfBuiltBinaries builds segfs the two ways users do and runs --version: with the
// Makefile's -X values, and with a plain go build that records VCS information (-buildvcs=true;
// this environment's GOFLAGS turn it off). Whatever the toolchain recorded (go version -m), the
// output names it; a git worktree gets no VCS stamp from the toolchain, and then devel/unknown.
func TestVersionOfBuiltBinaries(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	dir := t.TempDir()
	build := func(name string, args ...string) string {
		bin := filepath.Join(dir, name)
		out, err := exec.Command(goTool, append(append([]string{"build"}, args...), "-o", bin, ".")...).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
		return bin
	}
	version := func(bin string) string {
		out, err := exec.Command(bin, "--version").Output()
		if err != nil {
			t.Fatalf("%s --version: %v", bin, err)
		}
		return string(out)
	}
	made := build("made", "-ldflags", "-X main.version=v9.8.7 -X main.revision=0123abcd")
	if got := version(made); !strings.HasPrefix(got, "segfs version v9.8.7 (revision 0123abcd, go") {
		t.Errorf("Makefile-style build: %q", got)
	}
	plain := build("plain", "-buildvcs=true")
	out, err := exec.Command(goTool, "version", "-m", plain).Output()
	if err != nil {
		t.Fatal(err)
	}
	var modVersion, rev string
	dirty := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "mod" && f[1] == "segfs":
			modVersion = f[2]
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			rev = strings.TrimPrefix(f[1], "vcs.revision=")
		case len(f) == 2 && f[0] == "build" && f[1] == "vcs.modified=true":
			dirty = true
		}
	}
	want := "segfs version devel (revision unknown, go"
	if rev != "" {
		if dirty {
			rev += "-dirty"
		}
		want = "segfs version " + modVersion + " (revision " + rev + ", go"
	}
	if got := version(plain); !strings.HasPrefix(got, want) {
		t.Errorf("plain go build (toolchain recorded version %q, revision %q): %q; want prefix %q", modVersion, rev, got, want)
	}
	t.Logf("plain go build: %s", version(plain))
}
