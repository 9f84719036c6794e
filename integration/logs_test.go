package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDaemonLogsJSONWithFields: --log-format json makes the daemon's log one JSON object per line,
// and a warning about a partition carries topic and partition as fields of their own.
func TestDaemonLogsJSONWithFields(t *testing.T) {
	data, mnt := newDirs(t)
	if err := os.MkdirAll(filepath.Join(data, "T", "0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "T", "0", "stray.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	daemonMount(t, mnt, "--log-format", "json", "mount", "--data", data, mnt)
	daemonUnmount(t, mnt)
	b, err := os.ReadFile(data + ".log")
	if err != nil {
		t.Fatal(err)
	}
	var warning map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		if entry["level"] == "warning" && strings.Contains(fmt.Sprint(entry["msg"]), "unexpected entry") {
			warning = entry
		}
	}
	if warning == nil || warning["topic"] != "T" || warning["partition"] != 0.0 ||
		warning["path"] != filepath.Join(data, "T", "0", "stray.txt") {
		t.Errorf("warning about the stray file: %v\n%s", warning, b)
	}
}
