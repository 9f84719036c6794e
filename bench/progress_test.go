package bench

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProgress(t *testing.T) {
	tests := []struct {
		mode     string
		terminal bool
		want     ProgressStyle
	}{
		{"auto", true, ProgressInPlace},
		{"auto", false, ProgressLines},
		{"always", false, ProgressInPlace},
		{"always", true, ProgressInPlace},
		{"never", true, ProgressNone},
		{"never", false, ProgressNone},
	}
	for _, tt := range tests {
		got, err := ParseProgress(tt.mode, tt.terminal)
		if err != nil || got != tt.want {
			t.Errorf("ParseProgress(%q, terminal=%v) = %v, %v; want %v", tt.mode, tt.terminal, got, err, tt.want)
		}
	}
	if _, err := ParseProgress("yes", false); err == nil || !strings.Contains(err.Error(), "--progress") {
		t.Errorf("ParseProgress(yes) = %v; want an error naming --progress", err)
	}
}

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe is reported as a terminal")
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is reported as a terminal")
	}
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skip("no pseudo-terminal here:", err)
	}
	defer ptmx.Close()
	if !isTerminal(ptmx) {
		t.Error("a pseudo-terminal is not reported as a terminal")
	}
}

func TestProgressLinesAreCompleteAndSpaced(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, ProgressLines, "direct")
	p.note("mounting")
	for range 5 { // many updates within lineInterval: only the first of the phase is printed
		p.update("measure", time.Second, 10*time.Second, 100, 90)
	}
	p.update("done", 10*time.Second, 10*time.Second, 100, 90)
	p.done()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if strings.Contains(b.String(), "\r") || !strings.HasSuffix(b.String(), "\n") || len(lines) != 3 {
		t.Fatalf("want 3 complete lines without \\r, got %q", b.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "direct ") {
			t.Errorf("line without its mode: %q", l)
		}
	}
	if !strings.Contains(lines[1], "measure") || !strings.Contains(lines[2], "done") {
		t.Errorf("lines: %q", lines)
	}
}

func TestProgressInPlaceRewritesOneLine(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, ProgressInPlace, "direct")
	p.note("mounting segfs with a long option string")
	p.update("measure", time.Second, 10*time.Second, 100, 90)
	p.done()
	out := b.String()
	if strings.Count(out, "\r") != 2 || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("in-place output: %q", out)
	}
}

func TestProgressNeverPrintsNothing(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, ProgressNone, "direct")
	p.note("mounting")
	p.update("measure", time.Second, 10*time.Second, 100, 90)
	p.done()
	if b.Len() != 0 {
		t.Fatalf("--progress=never printed %q", b.String())
	}
}
