package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"segfs/integration/internal/recstream"
)

const mib = 1 << 20

// appendTools are the ways a user appends from the shell; $IN is the input file, $CUR the target.
var appendTools = map[string]string{
	"cat":    `cat "$IN" >> "$CUR"`,
	"printf": `printf '%s' "$(cat "$IN")" >> "$CUR"`, // text input only: $(...) drops NULs and trailing newlines
	"tee":    `tee -a "$CUR" < "$IN" > /dev/null`,
	"dd":     `dd if="$IN" of="$CUR" bs="$BS" oflag=append conv=notrunc status=none`,
	"python": `python3 -c 'import sys
data = open(sys.argv[1], "rb").read().decode("latin-1")
with open(sys.argv[2], "a", encoding="latin-1", newline="") as f:
    f.write(data)' "$IN" "$CUR"`,
}

// textBytes returns n printable bytes with newlines, never ending in a newline (so printf "$(cat)" keeps them).
func textBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		if r.IntN(64) == 0 {
			b[i] = '\n'
		} else {
			b[i] = byte('a' + r.IntN(26))
		}
	}
	if n > 0 {
		b[n-1] = 'z'
	}
	return b
}

// TestShellAppend: issue 5 §1.1. Every shell way of appending, sizes 1 byte..5 MiB and odd, across rotations;
// then cat | sha256sum, ls -l sizes and the data dir's files are exact.
func TestShellAppend(t *testing.T) {
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=1MiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	cur := filepath.Join(part, "current")

	steps := []struct {
		tool string
		size int
		bs   string // dd block size
	}{
		{"printf", 1, ""}, {"cat", 777, ""}, {"tee", 4095, ""}, {"dd", 4097, "4095"}, {"python", 1, ""},
		{"cat", 1, ""}, {"printf", 4097, ""}, {"python", 4096, ""}, {"dd", mib - 1, "65536"},
		{"tee", mib + 1, ""}, {"cat", 5 * mib, ""}, {"python", mib, ""}, {"printf", 777, ""},
		{"dd", mib, "1M"}, {"tee", 1, ""}, {"python", 4095, ""}, {"dd", 777, "4095"}, {"cat", 4095, ""},
		{"printf", 65536, ""}, {"tee", 777, ""},
	}
	var want []byte
	for i, s := range steps {
		var in []byte
		if s.tool == "printf" {
			in = textBytes(uint64(i), s.size)
		} else {
			in = recstream.StreamBytes(uint64(i), s.size)
		}
		inPath := writeTemp(t, fmt.Sprintf("in-%d", i), in)
		mustSh(t, appendTools[s.tool], "IN="+inPath, "CUR="+cur, "BS="+s.bs)
		want = append(want, in...)
		if got := endOf(listPartition(t, part)); got != int64(len(want)) {
			t.Fatalf("step %d (%s, %d bytes): partition is %d bytes, want %d", i, s.tool, s.size, got, len(want))
		}
	}

	res := mustSh(t, `cat "$P"/* | sha256sum`, "P="+part)
	if got := strings.Fields(res.stdout)[0]; got != sha(want) {
		t.Errorf("cat %s/* | sha256sum = %s, want %s (input)", part, got, sha(want))
	}

	got, segs := readPartition(t, part)
	if !bytes.Equal(got, want) {
		t.Fatalf("partition content differs from input at byte %d (%d vs %d bytes)", firstDiff(got, want), len(got), len(want))
	}
	checkContiguous(t, segs)
	if segs[0].Base != 0 {
		t.Errorf("first segment %s, want base 0", segs[0].Name)
	}
	if len(segs) < 1+len(want)/mib {
		t.Errorf("%d segments for %d bytes with segment_size=1MiB: rotation did not happen", len(segs), len(want))
	}
	ls := lsSizes(t, part)
	for _, s := range segs {
		if ls[s.Name] != s.Size {
			t.Errorf("ls -l %s: %d bytes, stat and read give %d", s.Name, ls[s.Name], s.Size)
		}
		if !s.Current && s.Size > mib {
			t.Errorf("sealed %s has %d bytes > segment_size, though no write() exceeds 1 MiB", s.Name, s.Size)
		}
		if !s.Current && s.Mode.Perm() != 0o444 {
			t.Errorf("sealed %s has mode %v, want 0444", s.Name, s.Mode)
		}
	}
	if len(ls) != len(segs) {
		t.Errorf("ls -l shows %d entries %v, readdir %d", len(ls), ls, len(segs))
	}
	checkBacking(t, filepath.Join(data, "T", "0"), segs, want)
}

// lsSizes runs ls -ln on dir and returns the size column by name.
func lsSizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	res := mustSh(t, `ls -ln --time-style=+%s "$D"`, "D="+dir)
	out := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "total" {
			continue
		}
		if len(f) != 7 {
			t.Fatalf("unexpected ls -ln line %q", line)
		}
		n, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			t.Fatalf("ls -ln line %q: %v", line, err)
		}
		out[f[6]] = n
	}
	return out
}
