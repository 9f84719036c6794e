package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ndjson returns n JSON lines of varying length.
func ndjson(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"seq":%d,"msg":"%s"}`+"\n", i, strings.Repeat("abcdefghij", 1+i*7%23))
	}
	return b.Bytes()
}

// TestRotateOnNewline: writers that flush partial lines (dd bs=4096 of an NDJSON file, awk writing
// through a 4 KiB stdio buffer) append to a partition mounted with -o rotate_on=newline: jq reads every
// sealed segment, one file at a time, as whole JSON lines, and the partition holds exactly what was
// written. With the default (rotate_on=size) dd leaves lines split across segments.
func TestRotateOnNewline(t *testing.T) {
	input := ndjson(3000) // about 400 KiB: several 64 KiB segments
	in := writeTemp(t, "in.ndjson", input)
	for _, tc := range []struct{ writer, opts string }{
		{`dd if="$IN" bs=4096 oflag=append conv=notrunc of="$C" 2>/dev/null`, "segment_size=64KiB,rotate_on=newline"},
		{`awk 1 "$IN" >> "$C"`, "segment_size=64KiB,rotate_on=newline"},
		{`dd if="$IN" bs=4096 oflag=append conv=notrunc of="$C" 2>/dev/null`, "segment_size=64KiB"},
	} {
		data, mnt := newDirs(t)
		m := mountFS(t, data, mnt, tc.opts)
		mkdir(t, filepath.Join(mnt, "T"))
		part := filepath.Join(mnt, "T", "0")
		mustSh(t, tc.writer, "IN="+in, "C="+filepath.Join(part, "current"))
		got, segs := readPartition(t, part)
		if !bytes.Equal(got, input) {
			t.Fatalf("%s, %s: partition holds %d bytes, want the %d written (first difference at %d)", tc.writer, tc.opts, len(got), len(input), firstDiff(got, input))
		}
		if len(segs) < 4 {
			t.Fatalf("%s: %d segments, want several", tc.opts, len(segs))
		}
		// jq, one sealed segment at a time; prints the names of those it cannot parse.
		res := sh(t, `for f in "$P"/*.log; do jq -c . "$f" > /dev/null 2>&1 || echo "${f##*/}"; done`, "P="+part)
		split := strings.Fields(res.stdout)
		if newline := strings.Contains(tc.opts, "newline"); newline && len(split) > 0 {
			t.Errorf("%s, %s: jq cannot read sealed segments %v as whole JSON lines", tc.writer, tc.opts, split)
		} else if !newline && len(split) == 0 {
			t.Errorf("%s, %s: every segment ends at a line end; the test shows nothing", tc.writer, tc.opts)
		}
		m.Unmount()
	}
}

// TestRotateOnNewlineCap: a "line" that never ends does not grow a segment without bound: past twice
// segment_size the segment rotates anyway, and the daemon logs it.
func TestRotateOnNewlineCap(t *testing.T) {
	data, mnt := newDirs(t)
	m := mountFS(t, data, mnt, "segment_size=64KiB,rotate_on=newline")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	mustSh(t, `head -c 400000 /dev/zero | tr '\0' x | dd bs=4096 oflag=append conv=notrunc of="$C" 2>/dev/null`, "C="+filepath.Join(part, "current"))
	segs := listPartition(t, part)
	for _, s := range segs {
		if s.Size > 2*64<<10 {
			t.Errorf("%s holds %d bytes, past twice segment_size", s.Name, s.Size)
		}
	}
	if len(segs) < 3 {
		t.Errorf("%d segments for 400000 bytes without a newline, want rotations at the cap", len(segs))
	}
	m.Unmount()
	if log, _ := os.ReadFile(m.logPath); !strings.Contains(string(log), "no newline") {
		t.Errorf("the daemon did not log the forced rotation\n%s", m.Log())
	}
}
