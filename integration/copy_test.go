package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// numberedLines returns whole lines "line %08d <letters>\n", at least n bytes; every line is unique.
func numberedLines(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 11))
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %08d ", i)
		for k := 10 + r.IntN(190); k > 0; k-- {
			b.WriteByte(byte('a' + r.IntN(26)))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// TestCopyTools: issue 5 §1.3. cp -a, rsync -a and tar c of a topic reproduce it byte for byte; grep, wc -c and
// head -c work on sealed segments and on current.
func TestCopyTools(t *testing.T) {
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=1MiB")
	topic := filepath.Join(mnt, "T")
	mkdir(t, topic)
	part := filepath.Join(topic, "0")
	want := numberedLines(3, 3*mib+mib/2)
	// Pieces cut mid-line, so lines straddle writes and segments as they do in real logs.
	for _, cut := range [][2]int{{0, 1000}, {1000, 700001}, {700001, 2*mib + 3}, {2*mib + 3, len(want)}} {
		appendFile(t, filepath.Join(part, "current"), want[cut[0]:cut[1]])
	}
	got, segs := readPartition(t, part)
	if !bytes.Equal(got, want) {
		t.Fatalf("partition differs from what was appended at byte %d", firstDiff(got, want))
	}
	if len(segs) < 4 {
		t.Fatalf("want ≥ 3 sealed segments and current, got %v", segs)
	}

	dst := t.TempDir()
	mustSh(t, `cp -a "$M/T" "$D/cp"`, "M="+mnt, "D="+dst)
	mustSh(t, `rsync -a "$M/T/" "$D/rsync/"`, "M="+mnt, "D="+dst)
	mustSh(t, `tar -C "$M" -cf "$D/t.tar" T && mkdir "$D/tar" && tar -C "$D/tar" -xf "$D/t.tar"`, "M="+mnt, "D="+dst)
	for _, copyDir := range []string{"cp", "rsync", "tar/T"} {
		checkCopy(t, copyDir, filepath.Join(dst, copyDir, "0"), segs, want)
	}

	for _, s := range segs {
		f := filepath.Join(part, s.Name)
		seg := want[s.Base : s.Base+s.Size]
		if res := mustSh(t, `wc -c < "$F"`, "F="+f); strings.TrimSpace(res.stdout) != strconv.FormatInt(s.Size, 10) {
			t.Errorf("wc -c %s = %s, want %d", s.Name, strings.TrimSpace(res.stdout), s.Size)
		}
		for _, n := range []int{1, 1000, 4097} {
			res := mustSh(t, `head -c "$N" "$F"`, "F="+f, "N="+strconv.Itoa(n))
			if !bytes.Equal([]byte(res.stdout), seg[:min(n, len(seg))]) {
				t.Errorf("head -c %d %s differs from the appended bytes", n, s.Name)
			}
		}
		if res := mustSh(t, `grep -c '' "$F"`, "F="+f); strings.TrimSpace(res.stdout) != strconv.Itoa(countLines(seg)) {
			t.Errorf("grep -c '' %s = %s, want %d lines", s.Name, strings.TrimSpace(res.stdout), countLines(seg))
		}
		line := wholeLineIn(seg)
		if line == "" {
			t.Fatalf("segment %s holds no whole line", s.Name)
		}
		if res := mustSh(t, `grep -n -x -F -e "$L" "$F"`, "F="+f, "L="+line); strings.Count(res.stdout, "\n") != 1 {
			t.Errorf("grep -x -F %q %s: %q, want one match", line, s.Name, res.stdout)
		}
	}
	res := mustSh(t, `cat "$P"/* | grep -c '^line '`, "P="+part)
	if got, want := strings.TrimSpace(res.stdout), strconv.Itoa(bytes.Count(want, []byte("\n"))); got != want {
		t.Errorf("cat | grep -c '^line ' = %s, want %s", got, want)
	}
	res = mustSh(t, `wc -c "$P"/* | tail -n 1`, "P="+part)
	if got := strings.Fields(res.stdout)[0]; got != strconv.Itoa(len(want)) {
		t.Errorf("wc -c total = %s, want %d", got, len(want))
	}
}

// checkCopy compares a copied partition dir with the mounted listing: same names, sizes, modes and bytes.
func checkCopy(t *testing.T, tool, dir string, segs []segment, want []byte) {
	t.Helper()
	copied, err := readPartitionDir(dir)
	if err != nil {
		t.Fatalf("%s copy: %v", tool, err)
	}
	if len(copied) != len(segs) {
		t.Fatalf("%s copy has %d files %v, mount %d %v", tool, len(copied), copied, len(segs), segs)
	}
	var got []byte
	for i, c := range copied {
		if c.Name != segs[i].Name || c.Size != segs[i].Size || c.Mode != segs[i].Mode {
			t.Errorf("%s copy: %s %d bytes %v; mount: %s %d bytes %v", tool, c.Name, c.Size, c.Mode, segs[i].Name, segs[i].Size, segs[i].Mode)
		}
		b, err := os.ReadFile(filepath.Join(dir, c.Name))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s copy differs from the partition at byte %d", tool, firstDiff(got, want))
	}
}

func countLines(b []byte) int {
	n := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// wholeLineIn returns the first line of b that is complete (starts after a newline, ends with one).
func wholeLineIn(b []byte) string {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return ""
	}
	rest := b[i+1:]
	j := bytes.IndexByte(rest, '\n')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}
