package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSmokeBenchThroughRealMount is the `make test` smoke of segfs bench: the real binary, a real mount in the
// default mode for one second, and a check that the table and JSON are well formed and that consumers read
// exactly what producers wrote. It asserts no number but byte counts.
func TestSmokeBenchThroughRealMount(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		fmt.Fprintln(os.Stderr, "SKIP bench smoke: /dev/fuse is absent, so segfs cannot mount here:", err)
		t.Skip("/dev/fuse is absent:", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "segfs")
	build := exec.Command("go", "build", "-o", bin, "segfs")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build segfs: %v\n%s", err, out)
	}
	jsonPath, plotPath := filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.svg")
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "bench", "--duration", "1s", "--modes", "dsync-deferred",
		"--data", data, "--json", jsonPath, "--plot", plotPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("segfs bench: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}

	// stderr is a pipe here, not a terminal: progress must come as complete lines.
	if strings.Contains(stderr.String(), "\r") || !strings.Contains(stderr.String(), "dsync-deferred  done") {
		t.Errorf("progress on a pipe is not one complete line per update:\n%q", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 26 || lines[0] != "| Metric | dsync-deferred |" || lines[1] != "| --- | ---: |" {
		t.Fatalf("table is not the seed's layout:\n%s", stdout.String())
	}
	for i, l := range lines {
		if strings.Count(l, "|") != 3 || strings.Contains(l, "NaN") {
			t.Errorf("table line %d malformed: %q", i, l)
		}
	}

	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("JSON report does not parse: %v", err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Mode.Name != "dsync-deferred" {
		t.Fatalf("JSON results: %+v", rep.Results)
	}
	r := rep.Results[0]
	if r.MountOptions == "" || !strings.Contains(r.MountOptions, "io=dsync") || !strings.Contains(r.MountOptions, "persist=deferred") {
		t.Errorf("mount options %q", r.MountOptions)
	}
	v := r.Verification
	if v == nil || !v.Exact || v.Bytes == 0 || v.Bytes != v.ExpectedBytes || v.Bytes != v.Messages*int64(rep.Config.MessageSize) {
		t.Fatalf("consumers did not read exactly what producers wrote: %+v", v)
	}
	if r.Producer == nil || r.Producer.Bytes == 0 || r.ProducerLatency == nil || r.ConsumerLatency == nil || r.EndToEnd == nil {
		t.Fatalf("missing measurements: %+v", r)
	}
	if rep.Machine.Kernel == "" || rep.Machine.DataFSType == "" || rep.Config.Producers != 4 {
		t.Errorf("machine/config: %+v %+v", rep.Machine, rep.Config)
	}
	if svg, err := os.ReadFile(plotPath); err != nil || !bytes.Contains(svg, []byte("<svg")) {
		t.Errorf("plot: %v", err)
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Errorf("bench left data behind: %v", entries)
	}
}
