package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"segfs/internal/tty"
)

// ProgressStyle is how the status of a run reaches stderr.
type ProgressStyle int

const (
	// ProgressLines prints one complete line per update, for a pipe or a log file, where a \r would run
	// the updates together into one line. It is the zero value: a writer given without a style gets lines.
	ProgressLines ProgressStyle = iota
	// ProgressInPlace rewrites one line with \r: a terminal shows the run is alive without scrolling.
	ProgressInPlace
	// ProgressNone prints nothing.
	ProgressNone
)

// lineInterval spaces the updates of ProgressLines: a log gets one line a second, not four.
const lineInterval = time.Second

// ParseProgress reads --progress: auto (in place on a terminal, lines elsewhere), always (in place even when
// stderr is not a terminal) or never.
func ParseProgress(mode string, terminal bool) (ProgressStyle, error) {
	switch strings.TrimSpace(mode) {
	case "auto", "":
		if terminal {
			return ProgressInPlace, nil
		}
		return ProgressLines, nil
	case "always":
		return ProgressInPlace, nil
	case "never":
		return ProgressNone, nil
	}
	return ProgressNone, fmt.Errorf("--progress: %q is not auto, always or never", mode)
}

func isTerminal(w io.Writer) bool { return tty.IsTerminal(w) }

// progress is the per-mode status on stderr. A nil *progress is quiet.
type progress struct {
	w     io.Writer
	style ProgressStyle
	mode  string
	width int // in place: length of the last line, to blank what a shorter line would leave behind

	lastPhase string    // lines: the phase of the last update printed
	lastLine  time.Time // lines: when the last update was printed
}

func newProgress(w io.Writer, style ProgressStyle, mode string) *progress {
	if w == nil || style == ProgressNone {
		return nil
	}
	return &progress{w: w, style: style, mode: mode}
}

func (p *progress) line(s string) {
	if p == nil {
		return
	}
	s = fmt.Sprintf("%-15s %s", p.mode, s)
	if p.style == ProgressLines {
		fmt.Fprintln(p.w, s)
		return
	}
	pad := max(p.width-len(s), 0)
	p.width = len(s)
	fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
}

// update shows the phase's elapsed time and the throughput since the phase began; a negative consMBps
// (fio has no consumers) is left out. As lines, it prints the first update of each phase and then one per
// lineInterval.
func (p *progress) update(phase string, elapsed, total time.Duration, prodMBps, consMBps float64) {
	if p == nil {
		return
	}
	if p.style == ProgressLines {
		now := time.Now()
		if phase == p.lastPhase && now.Sub(p.lastLine) < lineInterval {
			return
		}
		p.lastPhase, p.lastLine = phase, now
	}
	s := fmt.Sprintf("%-7s %5.1fs", phase, elapsed.Seconds())
	if total < 1<<62 {
		s += fmt.Sprintf("/%.1fs", total.Seconds())
	}
	s += fmt.Sprintf("  producers %8.1f MB/s", prodMBps)
	if consMBps >= 0 {
		s += fmt.Sprintf("  consumers %8.1f MB/s", consMBps)
	}
	p.line(s)
}

func (p *progress) note(s string) { p.line(s) }

// done ends an in-place line so the next mode's line or the table starts on a fresh one.
func (p *progress) done() {
	if p != nil && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
}
