package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"segfs/segments"
	"segfs/units"
)

// The daemon-wide targets: memory with many idle partitions (5) and start-up time on a big data dir (6).

const mib = 1 << 20

// The scale curve: targets 5 and 6 measure at every count given, fresh each time, and report how the
// cost grows from one count to the next. A count segfs cannot serve (a mount, mkdir or append that
// fails) is a MISS with the reason, and the next count is still measured.

// scalePoint is one count of the memory curve.
type scalePoint struct {
	Partitions         int       `json:"partitions"`
	CreateTopicS       float64   `json:"create_topic_s"`
	AfterCreate        procStats `json:"proc_after_create"`
	AfterWrites        procStats `json:"proc_after_writes"`
	Idle               procStats `json:"proc_idle"`
	RSSPerPartitionKiB float64   `json:"idle_rss_per_partition_kib"`
	Error              string    `json:"error,omitempty"`
}

func measureIdleMemory(ctx context.Context, r *limitsRun, t *LimitTarget) error {
	bound := 64*mib + r.cfg.MaxDirty
	var points []scalePoint
	for _, n := range r.cfg.RSSPartitions {
		name := fmt.Sprintf("idle VmRSS with %d partitions vs 64 MiB + max_dirty", n)
		pt, err := r.idleMemory(ctx, n)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err != nil {
			pt.Error = oneLineErr(err)
			t.Checks = append(t.Checks, LimitCheck{Name: name, Status: StatusMiss, Reason: "segfs failed at this count: " + pt.Error})
		} else {
			t.Checks = append(t.Checks, newCheck(name, "MiB", float64(pt.Idle.VmRSS)/mib, float64(bound)/mib, "<=", 1))
		}
		points = append(points, pt)
	}
	t.Details["scale"] = points
	if g := growth(points, func(p scalePoint) (float64, bool) {
		return float64(p.Idle.VmRSS) / 1024, p.Error == ""
	}); len(g) > 0 {
		t.Details["idle_rss_growth_kib_per_partition"] = g
		t.Checks[len(t.Checks)-1].Note = "idle RSS grows by " + describeGrowth(g, "KiB")
	}
	return nil
}

// idleMemory mounts with a topic of n partitions, writes once to each and reads the daemon's /proc
// after it was idle for RSSIdle.
func (r *limitsRun) idleMemory(ctx context.Context, n int) (pt scalePoint, err error) {
	pt.Partitions = n
	opts := fmt.Sprintf("%s,max_dirty=%s,partitions=%d", defaultOpts, units.FormatSize(r.cfg.MaxDirty), n)
	m, err := r.mount(ctx, fmt.Sprintf("target5-%d", n), opts)
	if err != nil {
		return pt, err
	}
	defer closeMount(m, &err)
	r.pr.note(fmt.Sprintf("creating a topic of %d partitions", n))
	start := time.Now()
	if err := os.Mkdir(filepath.Join(m.mnt, limitsTopic), 0o755); err != nil {
		return pt, fmt.Errorf("create a topic of %d partitions: %w", n, err)
	}
	pt.CreateTopicS = time.Since(start).Seconds()
	if pt.AfterCreate, err = readProc(m.pid()); err != nil {
		return pt, err
	}
	buf := make([]byte, r.cfg.RSSWrite)
	for i := range buf {
		buf[i] = byte(i)
	}
	for p := range n {
		if p%100 == 0 {
			r.pr.note(fmt.Sprintf("writing %d bytes once to partitions %d-%d of %d", len(buf), p, min(p+99, n-1), n))
		}
		if err := appendOnce(filepath.Join(m.mnt, limitsTopic, strconv.Itoa(p), "current"), buf); err != nil {
			return pt, err
		}
	}
	if pt.AfterWrites, err = readProc(m.pid()); err != nil {
		return pt, err
	}
	r.pr.note(fmt.Sprintf("idle for %s", r.cfg.RSSIdle))
	select {
	case <-ctx.Done():
		return pt, context.Cause(ctx)
	case <-time.After(r.cfg.RSSIdle):
	}
	if pt.Idle, err = readProc(m.pid()); err != nil {
		return pt, err
	}
	pt.RSSPerPartitionKiB = float64(pt.Idle.VmRSS) / float64(n) / 1024
	return pt, nil
}

// growthStep is the cost added per partition between two counts of the curve.
type growthStep struct {
	From         int     `json:"from"`
	To           int     `json:"to"`
	PerPartition float64 `json:"per_partition"`
}

// growth is the slope of value between consecutive counts that were both measured.
func growth[P interface{ count() int }](points []P, value func(P) (float64, bool)) []growthStep {
	var out []growthStep
	for i := 1; i < len(points); i++ {
		a, okA := value(points[i-1])
		b, okB := value(points[i])
		na, nb := points[i-1].count(), points[i].count()
		if okA && okB && nb != na {
			out = append(out, growthStep{From: na, To: nb, PerPartition: (b - a) / float64(nb-na)})
		}
	}
	return out
}

func (p scalePoint) count() int { return p.Partitions }

func describeGrowth(g []growthStep, unit string) string {
	var parts []string
	for _, s := range g {
		parts = append(parts, fmt.Sprintf("%.3g %s per partition from %d to %d", s.PerPartition, unit, s.From, s.To))
	}
	return strings.Join(parts, ", ")
}

// appendOnce is one producer's whole life: open, one write, close (which syncs the partition).
func appendOnce(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// startupActiveBytes is the size of every partition's active segment in the start-up layout: not a
// block multiple, so recovery has a partial tail block to read, as after most real shutdowns.
const startupActiveBytes = 1000

// startupPoint is one count of the start-up curve.
type startupPoint struct {
	Partitions int       `json:"partitions"`
	DataBytes  int64     `json:"data_bytes"`
	Warm       []float64 `json:"warm_s"` // mount + first listing
	Cold       []float64 `json:"cold_s"`
	Mount      []float64 `json:"mount_s"`
	List       []float64 `json:"first_listing_s"`
	MaxRead    procStats `json:"daemon_at_ready_max_rchar"`
	Error      string    `json:"error,omitempty"`
}

func (p startupPoint) count() int { return p.Partitions }

func measureStartup(ctx context.Context, r *limitsRun, t *LimitTarget) error {
	coldWhy := r.canDropCaches()
	var points []startupPoint
	for _, n := range r.cfg.StartupParts {
		pt, err := r.startupAt(ctx, n, coldWhy == "")
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		warmName := fmt.Sprintf("mount + first listing of %d partitions, warm cache, vs 1 s", n)
		coldName := fmt.Sprintf("mount + first listing of %d partitions, cold cache, vs 1 s", n)
		readName := fmt.Sprintf("bytes read by the daemon at start-up vs data on disk, %d partitions", n)
		if err != nil {
			pt.Error = oneLineErr(err)
		}
		points = append(points, pt)
		if err != nil {
			t.Checks = append(t.Checks, LimitCheck{Name: warmName, Status: StatusMiss, Reason: "segfs failed at this count: " + pt.Error})
			continue
		}
		c := newCheck(warmName, "s", median(pt.Warm), 1, "<=", 1)
		c.MeasuredSamples = pt.Warm
		t.Checks = append(t.Checks, c)
		if coldWhy != "" {
			t.Checks = append(t.Checks, skipCheck(coldName, coldWhy))
		} else {
			c := newCheck(coldName, "s", median(pt.Cold), 1, "<=", 1)
			c.MeasuredSamples = pt.Cold
			t.Checks = append(t.Checks, c)
		}
		// A scan would read every segment: its rchar would be about data_bytes. Recovery should read the
		// commit records and one tail block per partition.
		t.Checks = append(t.Checks, newCheck(readName, "bytes", float64(pt.MaxRead.RChar), float64(pt.DataBytes), "<=", 0.01))
	}
	t.Details["scale"] = points
	perK := func(get func(startupPoint) []float64) func(startupPoint) (float64, bool) {
		return func(p startupPoint) (float64, bool) {
			xs := get(p)
			return median(xs) * 1000, p.Error == "" && len(xs) > 0
		}
	}
	if g := growth(points, perK(func(p startupPoint) []float64 { return p.Warm })); len(g) > 0 {
		t.Details["warm_start_growth_ms_per_partition"] = g
		note := "warm start-up grows by " + describeGrowth(g, "ms")
		if gc := growth(points, perK(func(p startupPoint) []float64 { return p.Cold })); len(gc) > 0 {
			t.Details["cold_start_growth_ms_per_partition"] = gc
			note += "; cold by " + describeGrowth(gc, "ms")
		}
		t.Checks[len(t.Checks)-1].Note = note
	}
	return nil
}

// startupAt lays out n partitions of StartupSegs segments and times Repeat warm (and, with cold,
// cold-cache) starts of a mount of them.
func (r *limitsRun) startupAt(ctx context.Context, n int, cold bool) (pt startupPoint, err error) {
	pt.Partitions = n
	dir, err := os.MkdirTemp(r.cfg.DataDir, fmt.Sprintf("segfs-limits-target6-%d-", n))
	if err != nil {
		return pt, fmt.Errorf("temp dir under --data: %w", err)
	}
	defer os.RemoveAll(dir)
	data, mnt := filepath.Join(dir, "data"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return pt, fmt.Errorf("mount point: %w", err)
	}
	s := r.cfg.StartupSegs
	r.pr.note(fmt.Sprintf("laying out %d partitions × %d segments on disk", n, s))
	if pt.DataBytes, err = layoutPartitions(filepath.Join(data, limitsTopic), n, s, r.cfg.StartupSegLen); err != nil {
		return pt, err
	}
	kinds := []bool{false}
	if cold {
		kinds = append(kinds, true)
	}
	for rep := range r.cfg.Repeat {
		for _, isCold := range kinds {
			if isCold {
				if err := dropCaches(); err != nil {
					return pt, err
				}
			}
			r.pr.note(fmt.Sprintf("%d partitions, rep %d/%d: segfs mount (cold=%v)", n, rep+1, r.cfg.Repeat, isCold))
			st, err := r.timedMount(ctx, data, mnt, n, s)
			if err != nil {
				return pt, err
			}
			total := (st.mount + st.list).Seconds()
			if isCold {
				pt.Cold = append(pt.Cold, total)
			} else {
				pt.Warm = append(pt.Warm, total)
			}
			pt.Mount, pt.List = append(pt.Mount, st.mount.Seconds()), append(pt.List, st.list.Seconds())
			if st.proc.RChar >= pt.MaxRead.RChar {
				pt.MaxRead = st.proc
			}
		}
	}
	return pt, nil
}

// layoutPartitions writes a topic directory the way segfs lays it out, without going through segfs:
// partitions 0..p-1, each with an empty commit file, s-1 sealed segments of segLen bytes (sparse, so a
// big data dir costs no disk and little time) and an active segment of startupActiveBytes. It returns
// the logical bytes of all segments.
func layoutPartitions(topic string, p, s int, segLen int64) (int64, error) {
	if err := os.MkdirAll(topic, 0o755); err != nil {
		return 0, fmt.Errorf("layout: %w", err)
	}
	active := bytes.Repeat([]byte("segfs start-up\n"), startupActiveBytes/15+1)[:startupActiveBytes]
	var total int64
	for i := range p {
		dir := filepath.Join(topic, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return 0, fmt.Errorf("layout: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, ".commit"), nil, 0o644); err != nil {
			return 0, fmt.Errorf("layout: %w", err)
		}
		for k := range s {
			path := filepath.Join(dir, segments.SegmentName(int64(k)*segLen))
			if k == s-1 {
				if err := os.WriteFile(path, active, 0o644); err != nil {
					return 0, fmt.Errorf("layout: %w", err)
				}
				total += int64(len(active))
				continue
			}
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				return 0, fmt.Errorf("layout: %w", err)
			}
			if err := os.Truncate(path, segLen); err != nil {
				return 0, fmt.Errorf("layout: %w", err)
			}
			total += segLen
		}
	}
	return total, nil
}

// startup is one timed start: `segfs mount` until it returned (it returns once the mount is live),
// then the first listing of the root, the topic and one partition; and the daemon's /proc at that point.
type startup struct {
	mount, list time.Duration
	proc        procStats
}

func (r *limitsRun) timedMount(ctx context.Context, data, mnt string, parts, segs int) (st startup, err error) {
	cmd := exec.CommandContext(ctx, r.cfg.Binary, "mount", "--data", data, "-o", defaultOpts, mnt)
	cmd.Env = append(os.Environ(), r.profileEnv("target6")...)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return st, fmt.Errorf("segfs mount %s: %w: %s", mnt, err, bytes.TrimSpace(out))
	}
	st.mount = time.Since(start)
	defer func() {
		if out, uerr := exec.Command(r.cfg.Binary, "umount", mnt).CombinedOutput(); uerr != nil && err == nil {
			err = fmt.Errorf("segfs umount %s: %w: %s", mnt, uerr, bytes.TrimSpace(out))
		}
	}()
	want := []struct {
		dir string
		n   int
	}{{mnt, 1}, {filepath.Join(mnt, limitsTopic), parts}, {filepath.Join(mnt, limitsTopic, "0"), segs}}
	for _, w := range want {
		entries, err := os.ReadDir(w.dir)
		if err != nil {
			return st, fmt.Errorf("list %s: %w", w.dir, err)
		}
		if len(entries) != w.n {
			return st, fmt.Errorf("list %s: %d entries, want %d", w.dir, len(entries), w.n)
		}
	}
	st.list = time.Since(start) - st.mount
	pid, err := findDaemon(mnt)
	if err != nil {
		return st, err
	}
	st.proc, err = readProc(pid)
	return st, err
}

// findDaemon returns the pid of the `segfs mount --foreground ... MNT` process serving mnt, which
// `segfs mount` started and detached.
func findDaemon(mnt string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("find daemon: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimSuffix(raw, []byte{0}), []byte{0})
		fg, mount := false, false
		for _, a := range args {
			fg = fg || string(a) == "--foreground"
			mount = mount || string(a) == "mount"
		}
		if fg && mount && string(args[len(args)-1]) == mnt {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("find daemon: no segfs mount --foreground process serves %s", mnt)
}
