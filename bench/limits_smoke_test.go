package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSmokeBenchLimitsQuick runs `segfs bench-limits --quick` through real mounts and checks that the
// report is well formed: every target present, every check either judged consistently with its own
// ratio or skipped with a reason, the table and the JSON telling the same story, nothing left behind.
// Timings are never asserted: on a shared machine they mean nothing to a test.
func TestSmokeBenchLimitsQuick(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		fmt.Fprintln(os.Stderr, "SKIP bench-limits smoke: /dev/fuse is absent, so segfs cannot mount here:", err)
		t.Skip("/dev/fuse is absent:", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "segfs")
	if out, err := exec.Command("go", "build", "-o", bin, "segfs").CombinedOutput(); err != nil {
		t.Fatalf("go build segfs: %v\n%s", err, out)
	}
	data, jsonPath := filepath.Join(dir, "data"), filepath.Join(dir, "limits.json")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	// No drop_caches: a test must not slow down everything else running on the machine.
	cmd := exec.Command(bin, "bench-limits", "--quick", "--drop-caches=false", "--quiet", "--data", data, "--json", jsonPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("segfs bench-limits: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}

	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep LimitsReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("JSON report does not parse: %v", err)
	}
	if len(rep.Targets) != 6 {
		t.Fatalf("%d targets, want 6", len(rep.Targets))
	}
	var rows []string
	for i, tg := range rep.Targets {
		if tg.ID != i+1 || tg.Title == "" || tg.Error != "" || len(tg.Checks) == 0 {
			t.Errorf("target %d: %+v", i+1, tg)
		}
		for _, c := range tg.Checks {
			checkWellFormed(t, tg.ID, c)
			rows = append(rows, fmt.Sprintf("| %d | %s |", tg.ID, c.Name))
		}
	}
	_, fioErr := exec.LookPath("fio")
	for _, id := range []int{1, 2} {
		if got := rep.Targets[id-1].Checks[0].Status; (got == StatusSkip) != (fioErr != nil) {
			t.Errorf("target %d: status %s with fio installed=%v", id, got, fioErr == nil)
		}
	}
	for _, c := range []LimitCheck{rep.Targets[3].Checks[0], rep.Targets[3].Checks[1], rep.Targets[5].Checks[1]} {
		if c.Status != StatusSkip || !strings.Contains(c.Reason, "drop-caches") {
			t.Errorf("cold check ran without drop_caches: %+v", c)
		}
	}
	// Targets 5 and 6 measure a curve: one point per count, and the growth between them.
	for _, id := range []int{5, 6} {
		points, _ := rep.Targets[id-1].Details["scale"].([]any)
		if len(points) != 2 {
			t.Errorf("target %d: scale curve %v, want the 2 quick counts", id, rep.Targets[id-1].Details["scale"])
		}
		for _, p := range points {
			if pt := p.(map[string]any); pt["error"] != nil || (id == 6 && pt["data_bytes"].(float64) <= 0) {
				t.Errorf("target %d: point %v", id, pt)
			}
		}
	}
	if g := rep.Targets[4].Details["idle_rss_growth_kib_per_partition"]; g == nil {
		t.Error("target 5 does not say how memory grows with partitions")
	}

	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) < 2+len(rows)+1+6 || lines[0] != "| # | Check | Measured | Baseline | Ratio | Target | Result |" {
		t.Fatalf("table:\n%s", stdout.String())
	}
	for i, want := range rows {
		l := lines[2+i]
		if !strings.HasPrefix(l, want) || strings.Count(l, " | ") != 6 || strings.Contains(l, "NaN") || strings.Contains(l, "Inf") {
			t.Errorf("table row %d %q does not match check %q", i, l, want)
		}
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Errorf("bench-limits left data behind: %v", entries)
	}
}

// checkWellFormed: a judged check has a positive baseline, the ratio of its two numbers and the status
// that ratio gives; a skipped one says why.
func checkWellFormed(t *testing.T, id int, c LimitCheck) {
	t.Helper()
	switch c.Status {
	case StatusPass, StatusMiss:
		finite := !math.IsNaN(c.Measured) && !math.IsInf(c.Measured, 0)
		if !finite || c.Measured < 0 || c.Baseline <= 0 || math.Abs(c.Ratio-c.Measured/c.Baseline) > 1e-9*c.Ratio {
			t.Errorf("target %d %q: numbers %+v", id, c.Name, c)
		}
		pass := c.Ratio >= c.Target
		if c.Op == "<=" {
			pass = c.Ratio <= c.Target
		} else if c.Op != ">=" {
			t.Errorf("target %d %q: op %q", id, c.Name, c.Op)
		}
		if pass != (c.Status == StatusPass) {
			t.Errorf("target %d %q: status %s but ratio %v %s %v", id, c.Name, c.Status, c.Ratio, c.Op, c.Target)
		}
	case StatusSkip:
		if c.Reason == "" {
			t.Errorf("target %d %q skipped without a reason", id, c.Name)
		}
	default:
		t.Errorf("target %d %q: status %q", id, c.Name, c.Status)
	}
}
