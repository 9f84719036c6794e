package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"segfs/segments"
	"segfs/units"
)

// measureSealedReads reads one sealed segment through the mount and from the backing file, with cat and
// with dd bs=1M cold (caches dropped before each read), and with cat warm (right after a read of the
// same file). Sealed segments are
// meant to be served by FUSE passthrough, so the daemon's request count during the mount's reads is
// recorded as the evidence of whether the reads reached it.
func measureSealedReads(ctx context.Context, r *limitsRun, t *LimitTarget) (err error) {
	size := r.cfg.SealedSize
	m, err := r.mount(ctx, "target4", defaultOpts+",segment_size="+units.FormatSize(size))
	if err != nil {
		return err
	}
	defer closeMount(m, &err)
	dir, err := partitionDir(m.mnt, 0)
	if err != nil {
		return err
	}
	r.pr.note(fmt.Sprintf("writing a %s segment and sealing it", units.FormatSize(size)))
	if err := fillAndSeal(filepath.Join(dir, "current"), size); err != nil {
		return err
	}
	name := segments.SegmentName(0)
	viaMount, backing := filepath.Join(dir, name), filepath.Join(m.data, limitsTopic, "0", name)
	for _, p := range []string{viaMount, backing} {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("sealed segment: %w", err)
		}
		if st.Size() != size {
			return fmt.Errorf("sealed segment %s is %d bytes, want %d", p, st.Size(), size)
		}
	}
	var daemon ProcDelta
	// reader reads path with one of the two programs users read a segment with: cat (which asks for
	// sequential readahead with fadvise) and dd bs=1M (which does not).
	type reader struct {
		name string
		args func(path string) []string
	}
	cat := reader{"cat", func(p string) []string { return []string{"cat", p} }}
	dd := reader{"dd bs=1M", func(p string) []string { return []string{"dd", "if=" + p, "of=/dev/null", "bs=1M"} }}
	read := func(rd reader, path string, samples *[]float64, viaMount bool) func() error {
		return func() error {
			args := rd.args(path)
			run := func() error {
				took, err := timeCommand(ctx, args[0], args[1:]...)
				if err == nil {
					*samples = append(*samples, mbps(size, took))
				}
				return err
			}
			if !viaMount {
				return run()
			}
			d, err := watch(m.pid(), run)
			daemon = daemon.add(d)
			return err
		}
	}
	cold := func(f func() error) func() error {
		return func() error {
			if err := dropCaches(); err != nil {
				return err
			}
			return f()
		}
	}
	commands := func(rd reader, cold bool) []string {
		prefix := ""
		if cold {
			prefix = "sync; echo 3 > /proc/sys/vm/drop_caches; "
		}
		cmd := func(p string) string {
			args := rd.args(p)
			if args[0] == "cat" {
				args = append(args, "> /dev/null")
			}
			return prefix + strings.Join(args, " ")
		}
		return []string{cmd(viaMount), cmd(backing)}
	}
	if why := r.canDropCaches(); why != "" {
		t.Checks = append(t.Checks, skipCheck("cold cat MB/s, mount vs backing file", why),
			skipCheck("cold dd bs=1M MB/s, mount vs backing file", why))
	} else {
		// The first cold read after writing the segment is slow on a VM whose host is still writing
		// it back; one unmeasured read keeps that off whichever side happens to go first.
		r.pr.note("settling: one unmeasured cold read")
		if err := cold(read(cat, backing, new([]float64), false))(); err != nil {
			return err
		}
		// Cold reads are the noisiest measurement here (a virtual disk's read speed swings by half from
		// one read to the next) and each takes well under a second, so they get more repetitions.
		reps := 2*r.cfg.Repeat + 1
		for _, rd := range []reader{cat, dd} {
			var mnt, back []float64
			for rep := range reps {
				r.pr.note(fmt.Sprintf("rep %d/%d: cold %s of %s, mount and backing file", rep+1, reps, rd.name, units.FormatSize(size)))
				if err := alternate(rep, cold(read(rd, viaMount, &mnt, true)), cold(read(rd, backing, &back, false))); err != nil {
					return err
				}
			}
			c := newCheck(fmt.Sprintf("cold %s MB/s, mount vs backing file", rd.name), "MB/s", median(mnt), median(back), ">=", 0.9)
			c.MeasuredSamples, c.BaselineSamples, c.Commands = mnt, back, commands(rd, true)
			t.Checks = append(t.Checks, c)
		}
	}
	var mnt, back []float64
	for rep := range r.cfg.Repeat {
		r.pr.note(fmt.Sprintf("rep %d/%d: warm cat of %s, mount and backing file", rep+1, r.cfg.Repeat, units.FormatSize(size)))
		err := alternate(rep,
			func() error { return seq(read(cat, viaMount, new([]float64), true), read(cat, viaMount, &mnt, true)) },
			func() error { return seq(read(cat, backing, new([]float64), false), read(cat, backing, &back, false)) })
		if err != nil {
			return err
		}
	}
	c := newCheck("warm cat MB/s, mount vs backing file", "MB/s", median(mnt), median(back), ">=", 0.9)
	c.MeasuredSamples, c.BaselineSamples, c.Commands = mnt, back, commands(cat, false)
	t.Checks = append(t.Checks, c)
	// With passthrough the kernel reads the backing file itself: no READ reaches the daemon.
	t.Details["daemon_during_mount_reads"] = daemon
	// The readahead each path gets: the FUSE connection's bdi (used only without passthrough) and the
	// backing device's (what passthrough reads with).
	for key, p := range map[string]string{"fuse_bdi_read_ahead_kb": viaMount, "backing_bdi_read_ahead_kb": backing} {
		if kb, err := readAheadKB(p); err == nil {
			t.Details[key] = kb
		}
	}
	return nil
}

// readAheadKB is the read_ahead_kb of the backing device info (bdi) of the filesystem path is on.
func readAheadKB(path string) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	raw, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(raw)))
}

// seq runs fs in order, stopping at the first error.
func seq(fs ...func() error) error {
	for _, f := range fs {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// fillAndSeal appends size bytes to a `current` in 1 MiB writes, then one more byte: it no longer fits
// the segment of exactly size bytes, so segfs seals that segment and the byte starts the next one.
func fillAndSeal(current string, size int64) error {
	f, err := os.OpenFile(current, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", current, err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	for left := size; left > 0; left -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			f.Close()
			return fmt.Errorf("fill %s: %w", current, err)
		}
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		f.Close()
		return fmt.Errorf("seal %s: %w", current, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", current, err)
	}
	return nil
}
