package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLongNames: a name longer than 255 bytes gets ENAMETOOLONG, as ext4 answers, from every operation
// a shell reaches with it, at every level of the namespace; 255 bytes is still a valid topic name.
func TestLongNames(t *testing.T) {
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "")
	mkdir(t, filepath.Join(mnt, "T"))
	const msg = "File name too long"
	for _, n := range []int{256, 300, 1024} {
		long := strings.Repeat("a", n)
		env := []string{"M=" + mnt, "L=" + long}
		for _, script := range []string{
			`mkdir "$M/$L"`,
			`stat "$M/$L"`,
			`rmdir "$M/$L"`,
			`mkdir "$M/T/$L"`,
			`stat "$M/T/$L"`,
			`touch "$M/T/0/$L"`,
			`cat "$M/T/0/$L"`,
			`rm "$M/T/0/$L"`,
			`mv "$M/T/0/current" "$M/T/0/$L"`,
			`ln -s current "$M/T/0/$L"`,
			`mkfifo "$M/T/0/$L"`,
		} {
			res := sh(t, script, env...)
			if res.code == 0 || !strings.Contains(res.stderr, msg) {
				t.Errorf("%d-byte name: %s: %v; want %q", n, strings.ReplaceAll(script, long, "<long>"), res, msg)
			}
		}
	}
	max := strings.Repeat("b", 255)
	mustSh(t, `mkdir "$M/$L" && echo x >> "$M/$L/0/current"`, "M="+mnt, "L="+max)
}
