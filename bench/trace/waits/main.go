// Command waits lists the goroutine waits in a Go execution trace (SEGFS_TRACE) that lasted at least
// a threshold: when each began, how long it lasted, what the goroutine waited for (a lock, a channel,
// a CPU while runnable, a system call) and where. `go tool trace -pprof=sync` sums waits by stack;
// this shows when they happened, so they can be matched to a slow write the bench saw.
//
//	go run . TRACE MIN [STACK-SUBSTRING]
//
// It is its own module so that segfs does not depend on golang.org/x/exp.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

type pending struct {
	since trace.Time
	what  string
	stack string
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: waits TRACE MIN [STACK-SUBSTRING]")
		os.Exit(2)
	}
	minWait, err := time.ParseDuration(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "waits:", err)
		os.Exit(2)
	}
	filter := ""
	if len(os.Args) > 3 {
		filter = os.Args[3]
	}
	if err := run(os.Args[1], minWait, filter); err != nil {
		fmt.Fprintln(os.Stderr, "waits:", err)
		os.Exit(1)
	}
}

func run(path string, minWait time.Duration, filter string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	waiting := map[trace.GoID]pending{}
	var t0 trace.Time
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if t0 == 0 {
			t0 = ev.Time()
		}
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		g := st.Resource.Goroutine()
		_, to := st.Goroutine()
		if w, ok := waiting[g]; ok && (to == trace.GoRunning || to == trace.GoRunnable) {
			if d := time.Duration(ev.Time() - w.since); d >= minWait && strings.Contains(w.stack, filter) {
				fmt.Printf("%9.3fs %8.1fms g%-6d %-24s%s\n", time.Duration(w.since-t0).Seconds(),
					float64(d)/1e6, g, w.what, w.stack)
			}
			delete(waiting, g)
		}
		switch to {
		case trace.GoWaiting, trace.GoRunnable, trace.GoSyscall:
			stk := st.Stack // where the goroutine stopped running
			if stk == trace.NoStack {
				stk = ev.Stack()
			}
			what := to.String()
			if to == trace.GoWaiting {
				what += "(" + st.Reason + ")"
			}
			waiting[g] = pending{ev.Time(), what, frames(stk, 7)}
		}
	}
}

func frames(s trace.Stack, n int) string {
	var b strings.Builder
	for f := range s.Frames() {
		if n == 0 {
			break
		}
		fmt.Fprintf(&b, " < %s:%d", f.Func[strings.LastIndex(f.Func, "/")+1:], f.Line)
		n--
	}
	return b.String()
}
