package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The throughput targets: large appends (1), small durable appends (2) and sealed reads (4). Each
// repetition measures both sides back to back, alternating which goes first, so slow drift in the
// machine's load does not always favour the same side.

// defaultOpts is the product default, spelled out so the report says what was measured.
const defaultOpts = "io=dsync,persist=deferred"

// limitsTopic is the topic every target writes to.
const limitsTopic = "limits"

// partitionDir makes (if needed) and returns partition p of the limits topic on a mount.
func partitionDir(mnt string, p int) (string, error) {
	dir := filepath.Join(mnt, limitsTopic, strconv.Itoa(p))
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create %s: %w", d, err)
		}
	}
	return dir, nil
}

// closeMount unmounts m when a target returns; an unmount failure fails the target too, because the
// daemon must end cleanly for its numbers to count.
func closeMount(m *limitsMount, err *error) {
	if cerr := m.close(); cerr != nil && *err == nil {
		*err = cerr
	}
}

// fio runs one fio job in dir on the data filesystem and returns its parsed result and arguments.
func (r *limitsRun) fio(ctx context.Context, dir string, job ...string) (*ModeResult, []string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("fio dir: %w", err)
	}
	out := filepath.Join(dir, "fio.json")
	args := append([]string{"--directory=" + dir, "--output-format=json", "--output=" + out,
		"--percentile_list=50:90:99:99.9:99.99", "--unlink=1"}, job...)
	res, err := execFio(ctx, args, out)
	return res, args, err
}

// alternate runs a and b, a first on even repetitions and b first on odd ones.
func alternate(rep int, a, b func() error) error {
	if rep%2 == 1 {
		a, b = b, a
	}
	if err := a(); err != nil {
		return err
	}
	return b()
}

// measureLargeAppends appends with dd as users do (bs=1M oflag=append conv=notrunc into `current`; the
// process's exit includes the final close, which makes the bytes durable) against fio's O_DIRECT sequential
// write of the same size on the same filesystem, in interleaved pairs. fio writes a new file each time, so
// it allocates its blocks as an append does: an overwrite of an already-allocated file skips that work and
// is faster on ext4, which is why it is reported only as context, never as the baseline.
func measureLargeAppends(ctx context.Context, r *limitsRun, t *LimitTarget) (err error) {
	const name = "dd append MB/s vs fio seq O_DIRECT write bs=1M of a new file"
	if _, err := exec.LookPath("fio"); err != nil {
		t.Checks = append(t.Checks, skipCheck(name, "fio is not installed"))
		return nil
	}
	n := r.cfg.DDCount
	size := int64(n) << 20
	m, err := r.mount(ctx, "large-appends", defaultOpts)
	if err != nil {
		return err
	}
	defer closeMount(m, &err)
	fioDir := filepath.Join(m.dir, "fio")
	if err := os.MkdirAll(fioDir, 0o755); err != nil {
		return fmt.Errorf("fio dir: %w", err)
	}
	fioFile := filepath.Join(fioDir, "seqwrite")
	fioJob := []string{"--name=seqwrite", "--filename=" + fioFile, "--rw=write", "--bs=1M", "--direct=1",
		"--ioengine=psync", "--numjobs=1", "--size=" + strconv.FormatInt(size, 10), "--output-format=json"}
	var dd, fio, overwrite []float64
	var daemon ProcDelta
	var ddArgs []string
	for rep := range r.cfg.Repeat {
		dir, err := partitionDir(m.mnt, rep)
		if err != nil {
			return err
		}
		ddArgs = []string{"if=/dev/zero", "bs=1M", "count=" + strconv.Itoa(n), "oflag=append", "conv=notrunc",
			"of=" + filepath.Join(dir, "current")}
		runDD := func() error {
			r.pr.note(fmt.Sprintf("pair %d/%d: dd %d MiB into %s/current", rep+1, r.cfg.Repeat, n, dir))
			var took time.Duration
			d, err := watch(m.pid(), func() (err error) {
				took, err = timeCommand(ctx, "dd", ddArgs...) // the process's exit includes close(2)
				return err
			})
			daemon = daemon.add(d)
			dd = append(dd, mbps(size, took))
			return err
		}
		runFio := func() error {
			r.pr.note(fmt.Sprintf("pair %d/%d: fio sequential O_DIRECT write of a new %d MiB file", rep+1, r.cfg.Repeat, n))
			if err := os.Remove(fioFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			fresh, err := fioMBps(ctx, fioJob)
			if err != nil {
				return err
			}
			// The same job again over the file it just allocated: context for reading the ratio.
			again, err := fioMBps(ctx, fioJob)
			if err != nil {
				return err
			}
			fio, overwrite = append(fio, fresh), append(overwrite, again)
			return os.Remove(fioFile)
		}
		if err := alternate(rep, runDD, runFio); err != nil {
			return err
		}
	}
	c := newCheck(name, "MB/s", median(dd), median(fio), ">=", 0.9)
	c.MeasuredSamples, c.BaselineSamples = dd, fio
	c.Commands = []string{"dd " + strings.Join(ddArgs, " "), "rm -f " + fioFile + "; fio " + strings.Join(fioJob, " ")}
	if ow := median(overwrite); ow > 0 {
		c.Note = fmt.Sprintf("fio overwriting the file it had just written: median %s, ratio %s (not the baseline: "+
			"an append allocates its blocks)", formatMBps(ow), formatRatio(median(dd)/ow))
	}
	t.Checks = append(t.Checks, c)
	t.Details["dd_args"], t.Details["fio_args"] = ddArgs, fioJob
	t.Details["fio_overwrite_mbps"] = overwrite
	t.Details["daemon_during_dd"] = daemon
	if daemon.Reads > 0 {
		// Every FUSE request is one read(2) of /dev/fuse, so this is the mean request size: ~1 MiB when
		// MaxWrite is reached.
		t.Details["daemon_mean_read_bytes"] = daemon.ReadChars / daemon.Reads
	}
	t.Details["daemon_cpu_s_per_gib"] = daemon.CPUSeconds / (float64(size*int64(r.cfg.Repeat)) / (1 << 30))
	return nil
}

// fioMBps runs one fio job that prints its JSON report on stdout and returns its write bandwidth.
func fioMBps(ctx context.Context, job []string) (float64, error) {
	out, err := exec.CommandContext(ctx, "fio", job...).Output()
	if err != nil {
		return 0, fmt.Errorf("fio %s: %w", strings.Join(job, " "), err)
	}
	res, err := parseFio(out)
	if err != nil {
		return 0, err
	}
	return res.Producer.MBps, nil
}

// smallLoop is one kind of 4 KiB append loop of target 2: on which mount, and whether each write is
// followed by fsync.
type smallLoop struct {
	name  string
	m     *limitsMount
	fsync bool
	iops  []float64
	hist  *hdrhistogram.Histogram
	proc  ProcDelta
	ops   int64
}

// measureSmallDurableAppends measures the durable small append three ways against fio's O_DIRECT|O_SYNC
// 4 KiB writes, in interleaved pairs: on a -o sync mount a write+fsync loop and a plain write loop
// (each write() is durable there), and on a default mount the write+fsync loop. Then, on the
// default mount, fsync of a partition with nothing unsynced: it must cost no disk I/O.
func measureSmallDurableAppends(ctx context.Context, r *limitsRun, t *LimitTarget) (err error) {
	const syncName = "4 KiB write+fsync IOPS, -o sync, vs fio --direct=1 --sync=1 --bs=4k"
	if _, err := exec.LookPath("fio"); err != nil {
		t.Checks = append(t.Checks, skipCheck(syncName, "fio is not installed"))
		return nil
	}
	syncMount, err := r.mount(ctx, "target2-sync", "io=dsync,sync")
	if err != nil {
		return err
	}
	defer closeMount(syncMount, &err)
	defMount, err := r.mount(ctx, "target2", defaultOpts)
	if err != nil {
		return err
	}
	defer closeMount(defMount, &err)
	loops := []*smallLoop{
		{name: syncName, m: syncMount, fsync: true},
		{name: "4 KiB write IOPS, -o sync (each write durable), vs fio --direct=1 --sync=1 --bs=4k", m: syncMount},
		{name: "4 KiB write+fsync IOPS, default mount (" + defaultOpts + "), vs fio --direct=1 --sync=1 --bs=4k", m: defMount, fsync: true},
	}
	dur := r.cfg.SyncDuration
	var fio []float64
	var fioArgs []string
	for rep := range r.cfg.Repeat {
		runLoops := func() error {
			for i, l := range loops {
				dir, err := partitionDir(l.m.mnt, rep*len(loops)+i)
				if err != nil {
					return err
				}
				if l.hist == nil {
					l.hist = newHist()
				}
				r.pr.note(fmt.Sprintf("rep %d/%d: %s for %s", rep+1, r.cfg.Repeat, l.name, dur))
				var n int64
				var took time.Duration
				d, err := watch(l.m.pid(), func() (err error) {
					n, took, err = appendLoop(ctx, filepath.Join(dir, "current"), dur, l.fsync, l.hist)
					return err
				})
				if err != nil {
					return err
				}
				l.proc, l.ops = l.proc.add(d), l.ops+n
				l.iops = append(l.iops, float64(n)/took.Seconds())
			}
			return nil
		}
		runFio := func() error {
			r.pr.note(fmt.Sprintf("rep %d/%d: fio 4 KiB O_DIRECT|O_SYNC writes for %s", rep+1, r.cfg.Repeat, dur))
			res, args, err := r.fio(ctx, filepath.Join(defMount.dir, "fio"), "--name=sync4k", "--rw=write", "--bs=4k",
				"--direct=1", "--sync=1", "--ioengine=psync", "--numjobs=1", "--size=256M", "--time_based",
				fmt.Sprintf("--runtime=%dms", dur.Milliseconds()))
			if err != nil {
				return err
			}
			if res.WindowSeconds <= 0 {
				return errors.New("fio reported no runtime")
			}
			fio, fioArgs = append(fio, float64(res.Producer.Bytes)/4096/res.WindowSeconds), args
			return nil
		}
		if err := alternate(rep, runLoops, runFio); err != nil {
			return err
		}
	}
	perOp := map[string]any{}
	for i, l := range loops {
		target := 0.9
		if i == 2 {
			target = 0.8 // the default mode pays two FUSE round trips and a thread handoff per durable append
		}
		c := newCheck(l.name, "IOPS", median(l.iops), median(fio), ">=", target)
		c.MeasuredSamples, c.BaselineSamples = l.iops, fio
		c.Commands = []string{fmt.Sprintf("segfs mount -o %s; loop { write(4 KiB)%s } on MNT/limits/N/current",
			l.m.opts, map[bool]string{true: "; fsync", false: ""}[l.fsync]), "fio " + strings.Join(fioArgs, " ")}
		t.Checks = append(t.Checks, c)
		perOp[l.name] = map[string]any{"latency": summarize(l.hist), "daemon_per_op": daemonPerOp(l.proc, l.ops)}
	}
	t.Details["fio_args"], t.Details["loops"] = fioArgs, perOp
	return r.cleanFsync(ctx, defMount, t)
}

// cleanFsync fsyncs a default-mode partition with nothing unsynced in a loop and checks, from the
// daemon's /proc, that it costs no disk I/O: one FUSE request and its reply per fsync.
func (r *limitsRun) cleanFsync(ctx context.Context, m *limitsMount, t *LimitTarget) error {
	dir, err := partitionDir(m.mnt, 99)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "current")
	if err := appendOnce(path, make([]byte, 1000)); err != nil { // close syncs it: now nothing is unsynced
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	const n = 10000
	r.pr.note(fmt.Sprintf("%d fsyncs of a partition with nothing unsynced", n))
	hist := newHist()
	d, err := watch(m.pid(), func() error {
		for range n {
			start := time.Now()
			if err := f.Sync(); err != nil {
				return fmt.Errorf("fsync %s: %w", path, err)
			}
			record(hist, time.Since(start).Nanoseconds())
		}
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	// The baseline is the cheapest durable write, one 4 KiB block: a clean fsync must write nothing.
	c := newCheck("disk bytes written per fsync with nothing unsynced (default mount), vs one 4 KiB block", "bytes",
		float64(d.WriteBytes)/n, 4096, "<=", 0)
	per := daemonPerOp(d, n)
	c.Note = fmt.Sprintf("per fsync the daemon made %.2f read and %.2f write calls (the request and its reply) and used %.1f µs of CPU; p50 %s",
		per["read_calls"], per["write_calls"], per["cpu_us"], formatMs(summarize(hist).P50))
	c.Commands = []string{fmt.Sprintf("loop %d × fsync(MNT/limits/99/current) after the close that synced it; daemon /proc/PID/io before and after", n)}
	t.Checks = append(t.Checks, c)
	t.Details["clean_fsync"] = map[string]any{"daemon": d, "daemon_per_op": per, "latency": summarize(hist)}
	return nil
}

func daemonPerOp(d ProcDelta, ops int64) map[string]float64 {
	if ops == 0 {
		return nil
	}
	n := float64(ops)
	return map[string]float64{
		"cpu_us":          d.CPUSeconds / n * 1e6,
		"read_calls":      float64(d.Reads) / n,
		"write_calls":     float64(d.Writes) / n,
		"disk_write_kib":  float64(d.WriteBytes) / n / 1024,
		"fuse_read_bytes": float64(d.ReadChars) / n,
	}
}

// appendLoop appends 4 KiB, and fsyncs after each write when fsync is set, in a loop, for d: the
// durable small append of a log writer that acknowledges every message. It returns the number of
// appends and the time they took.
func appendLoop(ctx context.Context, path string, d time.Duration, fsync bool, hist *hdrhistogram.Histogram) (int64, time.Duration, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("open %s: %w", path, err)
	}
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	var n int64
	start := time.Now()
	for deadline := start.Add(d); time.Now().Before(deadline) && ctx.Err() == nil; n++ {
		op := time.Now()
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return n, 0, fmt.Errorf("write %s: %w", path, err)
		}
		if fsync {
			if err := f.Sync(); err != nil {
				f.Close()
				return n, 0, fmt.Errorf("fsync %s: %w", path, err)
			}
		}
		record(hist, time.Since(op).Nanoseconds())
	}
	took := time.Since(start)
	if err := f.Close(); err != nil {
		return n, 0, fmt.Errorf("close %s: %w", path, err)
	}
	return n, took, ctx.Err()
}
