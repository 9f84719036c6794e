package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMountPointErrors: issue 5 §3.4 and issue 4 §4.7. A mount point that does not exist, is not a directory
// or is already mounted, and a second daemon on a data dir in use, each fail with exit code 1 and a one-line
// reason naming the culprit, in the foreground and in the (default) daemonizing form, and disturb nothing.
func TestMountPointErrors(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, mnt := newDirs(t)
	m := mountFS(t, data, mnt, "")
	mkdir(t, filepath.Join(mnt, "T"))
	otherData, _ := newDirs(t)
	freeMnt := t.TempDir()

	cases := []struct {
		name, data, mnt, mentions string
	}{
		{"missing", otherData, filepath.Join(base, "nope"), filepath.Join(base, "nope")},
		{"not-a-directory", otherData, file, file},
		{"already-mounted", otherData, mnt, mnt},
		{"data-dir-in-use", data, freeMnt, data},
	}
	for _, tc := range cases {
		for _, fg := range []bool{true, false} {
			name := tc.name + "/daemon"
			args := []string{"mount", "--data", tc.data, tc.mnt}
			if fg {
				name = tc.name + "/foreground"
				args = append([]string{"mount", "--foreground"}, args[1:]...)
			}
			t.Run(name, func(t *testing.T) {
				before := len(mountEntries(t, tc.mnt))
				if tc.mnt == freeMnt {
					t.Cleanup(func() { unmountLeftovers(t, freeMnt) })
				}
				expectMountError(t, args, tc.mentions)
				if after := len(mountEntries(t, tc.mnt)); after != before {
					t.Errorf("failed mount changed the mounts at %s: %d before, %d after", tc.mnt, before, after)
					if after > before {
						_ = unix.Unmount(tc.mnt, unix.MNT_DETACH) // the topmost, stacked by mistake
					}
				}
			})
		}
	}

	// The mount that was in the way still works.
	want := []byte("still serving\n")
	appendFile(t, filepath.Join(mnt, "T", "0", "current"), want)
	if got, _ := readPartition(t, filepath.Join(mnt, "T", "0")); !bytes.Equal(got, want) {
		t.Errorf("existing mount after the failed attempts: read %q, want %q", got, want)
	}
	m.Unmount()
}

// expectMountError runs segfs with args and fails unless it exits 1 with exactly one line on stderr that
// contains every mention.
func expectMountError(t *testing.T, args []string, mentions ...string) cmdResult {
	t.Helper()
	res := runCmd(t, 30*time.Second, nil, binaries.segfs, args...)
	msg := strings.TrimSpace(res.stderr)
	if res.code != 1 {
		t.Errorf("segfs %q: exit %d, want 1 (%v)", args, res.code, res)
	}
	if msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("segfs %q: want a one-line reason on stderr, got %q", args, res.stderr)
	}
	for _, m := range mentions {
		if !strings.Contains(msg, m) {
			t.Errorf("segfs %q: reason %q does not mention %q", args, msg, m)
		}
	}
	return res
}
