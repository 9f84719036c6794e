package fusefs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"segfs/segments"
)

// The mount's readahead is the max_readahead segfs asked for (1 MiB), not the kernel's 128 KiB start:
// a page-cache read reaches the daemon in requests of up to 1 MiB.
func TestMountReadahead(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("SKIPPED: setting a mount's readahead needs root")
	}
	m := newTestMount(t, segments.Config{}, Options{})
	var st unix.Stat_t
	if err := unix.Stat(m.mnt, &st); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		t.Fatal(err)
	}
	if kb, _ := strconv.Atoi(strings.TrimSpace(string(raw))); kb < maxWrite>>10 {
		t.Fatalf("read_ahead_kb %d, want %d", kb, maxWrite>>10)
	}
}
