package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// layers places every package of the module: a package may import only packages of a higher number, so data
// flows one way, main → daemon → fusefs → segments → directio, with bench and mountopts beside them.
// A new package must be placed here, deliberately, before it builds into the tree.
func layers() map[string]int {
	return map[string]int{
		"segfs":                                0, // the CLI
		"segfs/daemon":                         1,
		"segfs/bench":                          1, // drives mounts through the binary, like a user
		"segfs/follow":                         1, // segfs tail: a client of a mount
		"segfs/integration":                    1,
		"segfs/fusefs":                         2,
		"segfs/metrics":                        2, // the registry; fusefs gets its hooks from daemon, never imports it
		"segfs/mountopts":                      2, // builds the configs of the layers below
		"segfs/segments":                       3,
		"segfs/directio":                       4,
		"segfs/tier":                           4, // the object store; segments reaches it through segments.Remote
		"segfs/integration/internal/appender":  8,
		"segfs/integration/internal/recstream": 9,
		"segfs/internal/clitest":               9,
		"segfs/internal/logfields":             9,
		"segfs/internal/promcheck":             9, // promtool and a parser, for tests of metrics // the errno and error fields every package logs alike
		"segfs/internal/s3test":                9, // versitygw for tests
		"segfs/internal/tty":                   9,
		"segfs/units":                          9, // size syntax, for options and flags alike
	}
}

// importViolations checks lines of `go list -f '{{.ImportPath}} {{join .Imports ","}} ...'` against place.
func importViolations(golist string, place map[string]int) (violations []string, checked int) {
	for _, line := range strings.Split(strings.TrimSpace(golist), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := fields[0]
		rank, ok := place[pkg]
		if !ok {
			violations = append(violations, fmt.Sprintf("package %s has no place in layers(): decide which packages it may import", pkg))
			continue
		}
		checked++
		for _, list := range fields[1:] {
			for _, imp := range strings.Split(list, ",") {
				if imp == pkg || (imp != "segfs" && !strings.HasPrefix(imp, "segfs/")) {
					continue
				}
				if r, ok := place[imp]; ok && r <= rank {
					violations = append(violations, fmt.Sprintf("%s (layer %d) imports %s (layer %d): imports must point down", pkg, rank, imp, r))
				}
			}
		}
	}
	return violations, checked
}

// TestImportDirection reads the package graph with go list and fails on any import of a package that is not
// further down, in the code or in its tests.
func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f",
		`{{.ImportPath}} {{join .Imports ","}} {{join .TestImports ","}} {{join .XTestImports ","}}`,
		"segfs/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	violations, checked := importViolations(string(out), layers())
	for _, v := range violations {
		t.Error(v)
	}
	if checked < 8 {
		t.Fatalf("go list showed %d known packages; the graph was not read", checked)
	}
}

// TestImportViolations proves the rule rejects the imports the architecture forbids.
func TestImportViolations(t *testing.T) {
	for _, bad := range []string{
		"segfs/directio golang.org/x/sys/unix,segfs/segments",
		"segfs/segments segfs/directio segfs/fusefs",
		"segfs/segments  segfs/daemon",
		"segfs/fusefs segfs/daemon",
		"segfs/daemon segfs",
		"segfs/newpkg segfs/directio",
	} {
		if v, _ := importViolations(bad, layers()); len(v) != 1 {
			t.Errorf("%q: violations %q; want one", bad, v)
		}
	}
	if v, _ := importViolations("segfs/daemon segfs/fusefs,segfs/mountopts segfs/segments", layers()); len(v) != 0 {
		t.Errorf("downward imports rejected: %q", v)
	}
}
