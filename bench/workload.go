package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Workload phases. Latencies are recorded only for operations that start while measuring, so warmup (cold
// caches, first allocations) and the drain after the window never reach the histograms.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// Consumers poll an idle partition with a backoff from pollMin to pollMax: short enough that end-to-end
// latency measures the filesystem rather than the poll interval, long enough that four idle consumers do not
// take a core from the producers on a small machine.
const (
	pollMin = 20 * time.Microsecond
	pollMax = time.Millisecond
	// drainStall is how long a consumer may see no new byte after the producers stopped before the run
	// fails: bytes the producer wrote that never become readable are lost bytes.
	drainStall = 30 * time.Second
)

// workload runs producers and consumers on the partitions of one topic directory.
type workload struct {
	cfg      *Config
	topicDir string
	openRead func(string) (readFile, error) // openOS, or a fault-injecting wrapper in tests
	progress *progress
	stall    time.Duration // drainStall; tests shorten it to see a loss fail fast

	base     int64 // monoNow at the start: send timestamps and schedules count from it
	phase    atomic.Int32
	produced []atomic.Int64 // bytes written per producer (all phases)
	consumed []atomic.Int64 // bytes read per consumer (all phases)
	// Window bytes count the operations that started while measuring, the same operations whose latency
	// is recorded, so a column's op count and its throughput describe one set of writes and reads.
	prodWindow, consWindow atomic.Int64

	bytesDone chan struct{} // closed when prodWindow reaches cfg.Bytes
	doneOnce  sync.Once
	prodDone  chan struct{} // closed when every producer returned: produced is final

	stopped  chan struct{} // closed when the phase becomes phaseStop: wakes producers waiting for their schedule
	interval time.Duration // open loop: time between one producer's scheduled writes; 0 is closed loop

	prodHist, consHist, e2eHist []*hdrhistogram.Histogram // one per goroutine
	// prodRawHist is open loop's uncorrected producer latency, from the actual send; prodHist then holds
	// the corrected one, from the scheduled send.
	prodRawHist []*hdrhistogram.Histogram
	// lagHist is open loop's send lag: how late a producer started a write that was due while it was
	// idle. It is the load generator's own error, included in the corrected latency; it should stay
	// far below the latencies measured.
	lagHist    []*hdrhistogram.Histogram
	emptyPolls atomic.Int64
	verified   []uint64 // messages verified per consumer
}

// runResult is what one workload run measured.
type runResult struct {
	window                      time.Duration
	prodBytes, consBytes        int64 // operations started in the window
	prodHist, consHist, e2e     *hdrhistogram.Histogram
	prodRaw                     *hdrhistogram.Histogram // open loop only: from the actual send
	sendLag                     *hdrhistogram.Histogram // open loop only
	verifiedBytes, verifiedMsgs int64                   // over the whole run, all consumers
	expectedBytes               int64                   // what the consumers' producers wrote, summed per consumer
	emptyPolls                  int64
}

func newWorkload(cfg *Config, topicDir string, pr *progress) *workload {
	w := &workload{cfg: cfg, topicDir: topicDir, openRead: openOS, progress: pr, stall: drainStall,
		produced: make([]atomic.Int64, cfg.Producers), consumed: make([]atomic.Int64, cfg.Consumers),
		bytesDone: make(chan struct{}), prodDone: make(chan struct{}), stopped: make(chan struct{}),
		verified: make([]uint64, cfg.Consumers), interval: scheduleInterval(cfg)}
	for range cfg.Producers {
		w.prodHist = append(w.prodHist, newHist())
		w.prodRawHist = append(w.prodRawHist, newHist())
		w.lagHist = append(w.lagHist, newHist())
	}
	for range cfg.Consumers {
		w.consHist = append(w.consHist, newHist())
		w.e2eHist = append(w.e2eHist, newHist())
	}
	return w
}

// scheduleInterval is the time between one producer's writes that makes all of them together send
// cfg.Rate bytes per second; 0 when the run is closed-loop.
func scheduleInterval(cfg *Config) time.Duration {
	if cfg.Rate <= 0 {
		return 0
	}
	perProducer := float64(cfg.Rate) / float64(cfg.Producers)
	return max(time.Duration(float64(cfg.BatchBytes())/perProducer*1e9), 1)
}

func (w *workload) partitionDir(p int) string { return filepath.Join(w.topicDir, strconv.Itoa(p)) }

func (w *workload) now() int64 { return monoNow() - w.base }

// run executes warmup, the measured window and the drain, and fails if any consumer's bytes differ from
// its producer's.
func (w *workload) run(ctx context.Context) (*runResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	files := make([]*os.File, w.cfg.Producers)
	for p := range files {
		f, err := os.OpenFile(filepath.Join(w.partitionDir(p), "current"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			closeAll(files)
			return nil, fmt.Errorf("producer %d: open for append: %w", p, err)
		}
		files[p] = f
	}
	// Each producer and consumer stands for a client process of its own. With GOMAXPROCS at the CPU
	// count, a producer whose write() returned waits in Go's run queue behind consumers verifying
	// data, up to a 10 ms preemption slice, and that wait was measured as the filesystem's latency
	// (on 2 vCPUs: producer std dev 1.2 ms with it, 0.24 ms without). One P per client leaves the
	// scheduling to the kernel, as for separate processes.
	prev := runtime.GOMAXPROCS(max(runtime.GOMAXPROCS(0), w.cfg.Producers+w.cfg.Consumers+1))
	defer runtime.GOMAXPROCS(prev)
	w.base = monoNow()
	var prodWG, consWG sync.WaitGroup
	for p, f := range files {
		prodWG.Go(func() {
			defer f.Close()
			if err := w.produce(ctx, p, f); err != nil {
				cancel(fmt.Errorf("producer %d: %w", p, err))
			}
		})
	}
	for c := range w.cfg.Consumers {
		consWG.Go(func() {
			if err := w.consume(ctx, c); err != nil {
				cancel(fmt.Errorf("consumer %d (partition %d): %w", c, c%w.cfg.Producers, err))
			}
		})
	}
	res := &runResult{}
	err := w.measure(ctx, res)
	w.phase.Store(phaseStop)
	close(w.stopped)
	prodWG.Wait()
	close(w.prodDone)
	w.progress.note("measured; consumers are reading the rest")
	consWG.Wait()
	if cause := context.Cause(ctx); cause != nil {
		w.progress.done()
		return nil, cause
	}
	if err != nil {
		w.progress.done()
		return nil, err
	}
	// Read after every goroutine returned: operations that started in the window count in full.
	res.prodBytes, res.consBytes = w.prodWindow.Load(), w.consWindow.Load()
	w.progress.update("done", res.window, res.window, mbps(res.prodBytes, res.window), mbps(res.consBytes, res.window))
	w.progress.done()
	res.prodHist, res.consHist, res.e2e = merge(w.prodHist), merge(w.consHist), merge(w.e2eHist)
	if w.interval > 0 {
		res.prodRaw, res.sendLag = merge(w.prodRawHist), merge(w.lagHist)
	}
	for c, n := range w.verified {
		res.verifiedMsgs += int64(n)
		res.verifiedBytes += w.consumed[c].Load()
		res.expectedBytes += w.produced[c%w.cfg.Producers].Load()
	}
	res.emptyPolls = w.emptyPolls.Load()
	return res, nil
}

// measure waits out the warmup and the window, reporting progress, and records the window's byte counts.
func (w *workload) measure(ctx context.Context, res *runResult) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	wait := func(d time.Duration, phase string, done <-chan struct{}, counts func() (int64, int64)) error {
		if d <= 0 {
			return nil
		}
		start := time.Now()
		p0, c0 := counts()
		end := time.NewTimer(d)
		defer end.Stop()
		for {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-end.C:
				return nil
			case <-done:
				return nil
			case <-tick.C:
				el := time.Since(start)
				p, c := counts()
				w.progress.update(phase, el, d, mbps(p-p0, el), mbps(c-c0, el))
			}
		}
	}
	total := func() (int64, int64) { return sum(w.produced), sum(w.consumed) }
	if err := wait(w.cfg.Warmup, "warmup", nil, total); err != nil {
		return err
	}
	w.phase.Store(phaseMeasure)
	start := time.Now()
	d := w.cfg.Duration
	if w.cfg.Bytes > 0 {
		d = 1<<63 - 1 // the window ends on bytes, not time
	}
	err := wait(d, "measure", w.bytesDone, func() (int64, int64) { return w.prodWindow.Load(), w.consWindow.Load() })
	res.window = time.Since(start)
	return err
}

// produce appends batches to the partition until the run stops. Latency is the write() plus the fsync
// when one is due, as the application sees an acknowledged append.
//
// Closed loop (no rate), the next write goes as soon as the last returned. Open loop, write i of producer p
// is due at base + (p/P + i) × interval, whether or not the writes before it were on time, and its latency
// runs from that due time: a stall then counts against every write it held back, as it would for a client
// sending at that rate, instead of hiding them (coordinated omission, corrected as wrk2 does). The
// uncorrected latency, from the actual send, is kept next to it. Messages carry the due time too, so
// end-to-end latency is corrected the same way.
func (w *workload) produce(ctx context.Context, p int, f *os.File) error {
	enc := NewEncoder(uint32(p), w.cfg.MessageSize, w.cfg.Batch)
	offset := int64(w.interval) * int64(p) / int64(w.cfg.Producers)
	var timer *time.Timer
	if w.interval > 0 {
		timer = time.NewTimer(time.Hour)
		defer timer.Stop()
	}
	var prevEnd int64 // when the last write returned, in ns since base
	for writes := 1; ctx.Err() == nil; writes++ {
		var due int64 // ns since base
		if w.interval > 0 {
			due = offset + int64(writes-1)*int64(w.interval)
			if w.now() < due && !sleepUntil(w.base+due, w.stopped, timer) {
				return nil
			}
		}
		phase := w.phase.Load()
		if phase == phaseStop {
			return nil
		}
		batch := enc.Next()
		start := w.now()
		if w.interval > 0 {
			enc.Stamp(due)
		} else {
			enc.Stamp(start)
		}
		if _, err := f.Write(batch); err != nil {
			return fmt.Errorf("append batch %d: %w", writes, err)
		}
		if w.cfg.FsyncEvery > 0 && writes%w.cfg.FsyncEvery == 0 {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("fsync after batch %d: %w", writes, err)
			}
		}
		end := w.now()
		w.produced[p].Add(int64(len(batch)))
		if phase == phaseMeasure {
			if w.interval > 0 {
				record(w.prodHist[p], end-due)
				record(w.prodRawHist[p], end-start)
				if prevEnd <= due {
					record(w.lagHist[p], start-due) // due while idle: the wait was the clock's alone
				}
			} else {
				record(w.prodHist[p], end-start)
			}
			if w.prodWindow.Add(int64(len(batch))) >= w.cfg.Bytes && w.cfg.Bytes > 0 {
				w.doneOnce.Do(func() { close(w.bytesDone) })
			}
		}
		prevEnd = end
	}
	return nil
}

// consume tails partition c%P, verifying every byte, until it has read exactly what the producer wrote.
func (w *workload) consume(ctx context.Context, c int) error {
	p := c % w.cfg.Producers
	v := NewVerifier(uint32(p), w.cfg.MessageSize)
	t := newTailer(w.partitionDir(p), w.openRead)
	defer t.Close()
	buf := make([]byte, w.cfg.BatchBytes())
	sleep, lastData := pollMin, time.Now()
	for ctx.Err() == nil {
		n, took, err := t.Next(buf)
		if err != nil {
			return err
		}
		if n > 0 {
			measuring, now := w.phase.Load() == phaseMeasure, w.now()
			if measuring {
				record(w.consHist[c], took.Nanoseconds())
				w.consWindow.Add(int64(n))
			}
			if err := v.Feed(buf[:n], func(send int64) {
				if measuring {
					record(w.e2eHist[c], now-send)
				}
			}); err != nil {
				return err
			}
			w.consumed[c].Add(int64(n))
			sleep, lastData = pollMin, time.Now()
			continue
		}
		w.emptyPolls.Add(1)
		select {
		case <-w.prodDone:
			target := w.produced[p].Load()
			if v.Bytes() >= target {
				// Everything written was read and the last read() found nothing more: the stream is exact.
				w.verified[c] = v.Messages()
				return v.Finish(uint64(target) / uint64(w.cfg.MessageSize))
			}
			if time.Since(lastData) > w.stall {
				return &VerifyError{Producer: uint32(p), Offset: v.Bytes(), Reason: fmt.Sprintf(
					"the producer wrote %d bytes but only %d became readable (nothing new for %s): bytes lost",
					target, v.Bytes(), w.stall)}
			}
		default:
		}
		time.Sleep(sleep)
		sleep = min(2*sleep, pollMax)
	}
	return context.Cause(ctx)
}

func merge(hs []*hdrhistogram.Histogram) *hdrhistogram.Histogram {
	out := newHist()
	for _, h := range hs {
		out.Merge(h)
	}
	return out
}

func sum(xs []atomic.Int64) int64 {
	var s int64
	for i := range xs {
		s += xs[i].Load()
	}
	return s
}

func mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}
