package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress is the per-mode status line on stderr, rewritten in place with \r so a long run shows it is
// alive without scrolling. A nil *progress is quiet.
type progress struct {
	w     io.Writer
	mode  string
	width int // length of the last line, to blank what a shorter line would leave behind
}

func newProgress(w io.Writer, mode string) *progress {
	if w == nil {
		return nil
	}
	return &progress{w: w, mode: mode}
}

func (p *progress) line(s string) {
	if p == nil {
		return
	}
	s = fmt.Sprintf("%-15s %s", p.mode, s)
	pad := max(p.width-len(s), 0)
	p.width = len(s)
	fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
}

// update shows the phase's elapsed time and the throughput since the phase began; a negative consMBps
// (fio has no consumers) is left out.
func (p *progress) update(phase string, elapsed, total time.Duration, prodMBps, consMBps float64) {
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

// done ends the line so the next mode's line or the table starts on a fresh one.
func (p *progress) done() {
	if p != nil && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
}
