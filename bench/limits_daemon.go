package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"segfs/segments"
	"segfs/units"
)

// The daemon-wide targets: memory with many idle partitions (5) and start-up time on a big data dir (6).

const mib = 1 << 20

func measureIdleMemory(ctx context.Context, r *limitsRun, t *LimitTarget) (err error) {
	n := r.cfg.RSSPartitions
	opts := fmt.Sprintf("%s,max_dirty=%s,partitions=%d", defaultOpts, units.FormatSize(r.cfg.MaxDirty), n)
	m, err := r.mount(ctx, "target5", opts)
	if err != nil {
		return err
	}
	defer closeMount(m, &err)
	r.pr.note(fmt.Sprintf("creating a topic of %d partitions", n))
	start := time.Now()
	if err := os.Mkdir(filepath.Join(m.mnt, limitsTopic), 0o755); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	t.Details["create_topic_s"] = time.Since(start).Seconds()
	created, err := readProc(m.pid())
	if err != nil {
		return err
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
			return err
		}
	}
	written, err := readProc(m.pid())
	if err != nil {
		return err
	}
	r.pr.note(fmt.Sprintf("idle for %s", r.cfg.RSSIdle))
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(r.cfg.RSSIdle):
	}
	idle, err := readProc(m.pid())
	if err != nil {
		return err
	}
	bound := 64*mib + r.cfg.MaxDirty
	t.Checks = append(t.Checks, newCheck(fmt.Sprintf("idle VmRSS with %d partitions vs 64 MiB + max_dirty", n), "MiB",
		float64(idle.VmRSS)/mib, float64(bound)/mib, "<=", 1))
	t.Details["proc_after_create"], t.Details["proc_after_writes"], t.Details["proc_idle"] = created, written, idle
	t.Details["idle_rss_per_partition_kib"] = float64(idle.VmRSS) / float64(n) / 1024
	return nil
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

func measureStartup(ctx context.Context, r *limitsRun, t *LimitTarget) (err error) {
	dir, err := os.MkdirTemp(r.cfg.DataDir, "segfs-limits-target6-")
	if err != nil {
		return fmt.Errorf("temp dir under --data: %w", err)
	}
	defer os.RemoveAll(dir)
	data, mnt := filepath.Join(dir, "data"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	p, s := r.cfg.StartupParts, r.cfg.StartupSegs
	r.pr.note(fmt.Sprintf("laying out %d partitions × %d segments on disk", p, s))
	total, err := layoutPartitions(filepath.Join(data, limitsTopic), p, s, r.cfg.StartupSegLen)
	if err != nil {
		return err
	}
	t.Details["data_bytes"] = total
	coldWhy := r.canDropCaches()
	var warm, cold, mounts, lists []float64
	var maxRead procStats
	for rep := range r.cfg.Repeat {
		kinds := []bool{false}
		if coldWhy == "" {
			kinds = append(kinds, true)
		}
		for _, isCold := range kinds {
			if isCold {
				if err := dropCaches(); err != nil {
					return err
				}
			}
			r.pr.note(fmt.Sprintf("rep %d/%d: segfs mount (cold=%v)", rep+1, r.cfg.Repeat, isCold))
			st, err := r.timedMount(ctx, data, mnt, p, s)
			if err != nil {
				return err
			}
			total := st.mount + st.list
			if isCold {
				cold = append(cold, total.Seconds())
			} else {
				warm = append(warm, total.Seconds())
			}
			mounts, lists = append(mounts, st.mount.Seconds()), append(lists, st.list.Seconds())
			if st.proc.RChar >= maxRead.RChar {
				maxRead = st.proc
			}
		}
	}
	c := newCheck("mount + first listing, warm cache, vs 1 s", "s", median(warm), 1, "<=", 1)
	c.MeasuredSamples = warm
	t.Checks = append(t.Checks, c)
	if coldWhy != "" {
		t.Checks = append(t.Checks, skipCheck("mount + first listing, cold cache, vs 1 s", coldWhy))
	} else {
		c := newCheck("mount + first listing, cold cache, vs 1 s", "s", median(cold), 1, "<=", 1)
		c.MeasuredSamples = cold
		t.Checks = append(t.Checks, c)
	}
	// A scan would read every segment: its rchar would be about data_bytes. Recovery should read the
	// commit records and one tail block per partition.
	t.Checks = append(t.Checks, newCheck("bytes read by the daemon at start-up vs data on disk", "bytes",
		float64(maxRead.RChar), float64(total), "<=", 0.01))
	t.Details["mount_s"], t.Details["first_listing_s"] = mounts, lists
	t.Details["daemon_at_ready_max_rchar"] = maxRead
	return nil
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
