package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"segfs/daemon"
	"segfs/internal/clitest"
)

// TestStatusRefusesWhatIsNotASegfsMount: one line saying why, exit 1.
func TestStatusRefusesWhatIsNotASegfsMount(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"status"}, []string{"usage: segfs status [--json] MOUNTPOINT"}},
		{[]string{"status", dir}, []string{dir + " is not a segfs mount: nothing is mounted there"}},
		{[]string{"status", "--json", "/proc"}, []string{"/proc is not a segfs mount (proc from proc)"}},
		{[]string{"status", filepath.Join(dir, "nope"), "--json"}, []string{filepath.Join(dir, "nope") + " does not exist"}},
	} {
		code, stderr := runCLI(t, c.args...)
		clitest.CheckOneLineFailure(t, c.args, code, stderr, c.want...)
	}
}

// TestMountFailsOnATakenMetricsAddress: the endpoint is bound before anything is mounted, so a taken
// address fails the mount with the address and the reason, and leaves nothing mounted.
func TestMountFailsOnATakenMetricsAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"mount", "--foreground", "--data", filepath.Join(dir, "data"), "-o", "metrics=" + ln.Addr().String(), mnt}
	code, stderr := runCLI(t, args...)
	clitest.CheckOneLineFailure(t, args, code, stderr, "metrics endpoint "+ln.Addr().String(), "address already in use")
}

// TestStatusTable: the table a pipe gets is plain text: no escape sequence, one line per partition,
// every column present; a terminal gets the health in color.
func TestStatusTable(t *testing.T) {
	st := &daemon.Status{
		Schema: 1, Mountpoint: "/mnt/log", DataDir: "/var/lib/segfs", PID: 42, Version: "v1", Revision: "abc",
		Options: "segment_size=1GiB,metrics=off", UptimeSeconds: 3725,
		Partitions: []daemon.PartitionStatus{
			{Topic: "orders", Partition: 0, EndOffset: 1 << 30, Segments: 2, SizeBytes: 1 << 30, LastAppendAgeSeconds: 2, Health: "ok"},
			{Topic: "orders", Partition: 1, EndOffset: 5, Segments: 1, SizeBytes: 5, UnsyncedBytes: 5,
				LastAppendAgeSeconds: 90061, Health: "stalled", Error: "no space left on device"},
		},
	}
	var plain bytes.Buffer
	if err := writeStatus(&plain, st, false); err != nil {
		t.Fatal(err)
	}
	out := plain.String()
	for _, want := range []string{
		"segfs v1 (revision abc), pid 42, up 1h02m\n", "metrics  off\n",
		"TOPIC   PARTITION  END OFFSET  SEGMENTS  SIZE      LAST APPEND  UNSYNCED  HEALTH\n",
		"orders  0          1073741824  2         1.00 GiB  2s ago       0 B       ok\n",
		"orders  1          5           1         5 B       1d01h ago    5 B       stalled: no space left on device\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("plain table has escape sequences: %q", out)
	}
	var color bytes.Buffer
	if err := writeStatus(&color, st, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(color.String(), "\x1b[33mstalled") {
		t.Errorf("terminal table does not color the health: %q", color.String())
	}
}

// TestStatusColorOnlyOnATerminal: a pipe never gets color; a terminal does unless NO_COLOR is set or
// TERM is dumb.
func TestStatusColorOnlyOnATerminal(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if useColor(w, env("TERM", "xterm")) {
		t.Error("color on a pipe")
	}
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skip("no pseudo-terminal here:", err)
	}
	defer ptmx.Close()
	if !useColor(ptmx, env("TERM", "xterm")) || useColor(ptmx, env("TERM", "xterm", "NO_COLOR", "1")) ||
		useColor(ptmx, env("TERM", "dumb")) {
		t.Error("a terminal gets color unless NO_COLOR or TERM=dumb")
	}
}
