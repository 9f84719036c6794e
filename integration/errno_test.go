package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"segfs/integration/internal/recstream"
)

const (
	msgEPERM   = "Operation not permitted"
	msgEINVAL  = "Invalid argument"
	msgENOENT  = "No such file or directory"
	msgENOTSUP = "Operation not supported"
)

// TestErrnoMatrix: issue 5 §3.3 over issue 4 §1 and §2. Shell commands get the errors a Linux user expects from
// an append-only (chattr +a) log, and none of the refused operations changes a byte. $M is the mount, $P the
// partition, $CUR its current and $SEALED a sealed segment.
func TestErrnoMatrix(t *testing.T) {
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=1MiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	cur := filepath.Join(part, "current")
	want := recstream.StreamBytes(12, mib+mib/2)
	appendFile(t, cur, want[:mib-100])
	appendFile(t, cur, want[mib-100:])
	_, segs := readPartition(t, part)
	if len(segs) != 2 {
		t.Fatalf("want one sealed segment and current, got %v", segs)
	}
	sealed := filepath.Join(part, segs[0].Name)
	env := []string{"M=" + mnt, "P=" + part, "CUR=" + cur, "SEALED=" + sealed}
	py := func(code string) string { return `python3 -c 'import os, sys` + "\n" + code + `' "$CUR" "$SEALED"` }

	cases := []struct {
		name, script string
		msgs         []string // any of them
	}{
		{"truncating redirect to current", `echo x > "$CUR"`, []string{msgEPERM}},
		{"write without O_APPEND", `dd if=/dev/zero of="$CUR" bs=1 count=1 conv=notrunc status=none`, []string{msgEPERM}},
		{"O_APPEND with O_TRUNC", py(`os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_TRUNC)`), []string{msgEPERM}},
		{"O_RDWR without O_APPEND", py(`os.open(sys.argv[1], os.O_RDWR)`), []string{msgEPERM}},
		{"topic name with a space", `mkdir "$M/bad name"`, []string{msgEINVAL}},
		{"topic name with a leading dot", `mkdir "$M/.hidden"`, []string{msgEINVAL}},
		{"topic name with a leading dash", `mkdir -- "$M/-x"`, []string{msgEINVAL}},
		{"topic name with a colon", `mkdir "$M/a:b"`, []string{msgEINVAL}},
		{"nested path under a missing topic", `mkdir "$M/bad/name"`, []string{msgENOENT}},
		{"partition with a leading zero", `mkdir "$M/T/01"`, []string{msgEINVAL}},
		{"partition not a number", `mkdir "$M/T/x"`, []string{msgEINVAL}},
		{"negative partition", `mkdir -- "$M/T/-1"`, []string{msgEINVAL}},
		{"directory in a partition", `mkdir "$P/sub"`, []string{msgEPERM}},
		{"truncate current to 0", `truncate -s 0 "$CUR"`, []string{msgEPERM}},
		{"truncate current larger", `truncate -s 10M "$CUR"`, []string{msgEPERM}},
		{"truncate sealed", `truncate -s 0 "$SEALED"`, []string{msgEPERM}},
		{"rename current", `mv "$CUR" "$P/renamed"`, []string{msgEPERM}},
		{"rename sealed", `mv "$SEALED" "$P/00000000000000000001.log"`, []string{msgEPERM}},
		{"rename topic", `mv "$M/T" "$M/U"`, []string{msgEPERM}},
		{"hard link current", `ln "$CUR" "$P/hard"`, []string{msgEPERM}},
		{"hard link sealed", `ln "$SEALED" "$P/hard"`, []string{msgEPERM}},
		{"symlink in partition", `ln -s current "$P/sym"`, []string{msgEPERM}},
		{"mknod fifo", `mknod "$P/fifo" p`, []string{msgEPERM}},
		{"mkfifo", `mkfifo "$P/fifo"`, []string{msgEPERM}},
		{"chmod current", `chmod 600 "$CUR"`, []string{msgEPERM}},
		{"chmod sealed", `chmod 644 "$SEALED"`, []string{msgEPERM}},
		{"chown current", `chown 1:1 "$CUR"`, []string{msgEPERM}},
		{"chown sealed", `chown 1:1 "$SEALED"`, []string{msgEPERM}},
		{"setxattr current", py(`os.setxattr(sys.argv[1], "user.test", b"1")`), []string{msgEPERM, msgENOTSUP}},
		{"setxattr sealed", py(`os.setxattr(sys.argv[2], "user.test", b"1")`), []string{msgEPERM, msgENOTSUP}},
		{"touch a new file", `touch "$P/newfile"`, []string{msgEPERM}},
		{"create by redirect", `echo x > "$P/newfile"`, []string{msgEPERM}},
		{"create by append", `echo x >> "$P/newfile.log"`, []string{msgEPERM}},
		{"append to sealed", `echo x >> "$SEALED"`, []string{msgEPERM}},
		{"overwrite sealed", `echo x > "$SEALED"`, []string{msgEPERM}},
		{"cat missing file", `cat "$P/missing"`, []string{msgENOENT}},
		{"cat missing segment", `cat "$P/00000000000000000007.log"`, []string{msgENOENT}},
		{"cat in missing topic", `cat "$M/nope/0/current"`, []string{msgENOENT}},
		{"ls missing partition", `ls "$M/T/5"`, []string{msgENOENT}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := sh(t, tc.script, env...)
			ok := false
			for _, m := range tc.msgs {
				ok = ok || strings.Contains(res.stderr, m)
			}
			if res.code == 0 || !ok {
				t.Errorf("%s: %v; want failure with %q", tc.script, res, strings.Join(tc.msgs, " or "))
			}
		})
	}
	got, after := readPartition(t, part)
	if !bytes.Equal(got, want) || !sameSegments(segs, after) {
		t.Fatalf("refused operations changed the partition: %d bytes %v, was %d bytes %v", len(got), after, len(want), segs)
	}
	if names := dirNames(t, part); len(names) != 2 {
		t.Errorf("partition lists %v after the refused creations, want only the two segments", names)
	}

	// What is allowed.
	mustSh(t, `echo ok >> "$CUR"`, env...)
	want = append(want, "ok\n"...)
	if got, _ := readPartition(t, part); !bytes.Equal(got, want) {
		t.Errorf("echo >> current: partition does not end with the line")
	}
	mustSh(t, `rm "$SEALED"`, env...)
	if _, err := os.Stat(sealed); !os.IsNotExist(err) {
		t.Errorf("rm of sealed %s (purge): still there: %v", sealed, err)
	}
	if _, err := os.Stat(filepath.Join(data, "T", "0", segs[0].Name)); !os.IsNotExist(err) {
		t.Errorf("rm of sealed %s: backing file still in the data dir: %v", segs[0].Name, err)
	}
	for _, dir := range []string{"T/1", "R"} {
		mustSh(t, `mkdir "$M/$D"`, append(env, "D="+dir)...)
	}
	appendFile(t, filepath.Join(mnt, "T", "1", "current"), []byte("partition one\n"))
	appendFile(t, filepath.Join(mnt, "R", "0", "current"), []byte("topic R\n"))
	mustSh(t, `rmdir "$M/T/1" && rmdir "$M/R"`, env...)
	for _, p := range []string{filepath.Join(mnt, "T", "1"), filepath.Join(data, "T", "1")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("rmdir of partition 1: %s still there: %v", p, err)
		}
	}
	mustSh(t, `rm -r "$M/T"`, env...)
	for _, gone := range []string{"T", "R"} {
		if _, err := os.Stat(filepath.Join(mnt, gone)); !os.IsNotExist(err) {
			t.Errorf("topic %s still visible after removal: %v", gone, err)
		}
		if _, err := os.Stat(filepath.Join(data, gone)); !os.IsNotExist(err) {
			t.Errorf("topic %s still in the data dir after removal: %v", gone, err)
		}
	}
	if names := dirNames(t, mnt); len(names) != 0 {
		t.Errorf("mount root lists %v after removing every topic", names)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
