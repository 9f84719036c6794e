package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"segfs/segments"
	"segfs/units"
)

// measureSealedReads reads one sealed segment with cat through the mount and from the backing file, cold
// (caches dropped before each read) and warm (right after a read of the same file). Sealed segments are
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
	catMount := func(samples *[]float64) func() error {
		return func() error {
			d, err := watch(m.pid(), func() error { return catInto(ctx, viaMount, size, samples) })
			daemon = daemon.add(d)
			return err
		}
	}
	catBacking := func(samples *[]float64) func() error {
		return func() error { return catInto(ctx, backing, size, samples) }
	}
	cold := func(f func() error) func() error {
		return func() error {
			if err := dropCaches(); err != nil {
				return err
			}
			return f()
		}
	}
	const coldName, warmName = "cold cat MB/s, mount vs backing file", "warm cat MB/s, mount vs backing file"
	if why := r.canDropCaches(); why != "" {
		t.Checks = append(t.Checks, skipCheck(coldName, why))
	} else {
		// The first cold read after writing the segment is slow on a VM whose host is still writing
		// it back; one unmeasured read keeps that off whichever side happens to go first.
		r.pr.note("settling: one unmeasured cold read")
		if err := cold(catBacking(new([]float64)))(); err != nil {
			return err
		}
		// Cold reads are the noisiest measurement here (a virtual disk's read speed swings by half from
		// one read to the next) and each takes well under a second, so they get more repetitions.
		reps := 2*r.cfg.Repeat + 1
		var mnt, back []float64
		for rep := range reps {
			r.pr.note(fmt.Sprintf("rep %d/%d: cold cat of %s, mount and backing file", rep+1, reps, units.FormatSize(size)))
			if err := alternate(rep, cold(catMount(&mnt)), cold(catBacking(&back))); err != nil {
				return err
			}
		}
		c := newCheck(coldName, "MB/s", median(mnt), median(back), ">=", 0.9)
		c.MeasuredSamples, c.BaselineSamples = mnt, back
		t.Checks = append(t.Checks, c)
	}
	var mnt, back []float64
	for rep := range r.cfg.Repeat {
		r.pr.note(fmt.Sprintf("rep %d/%d: warm cat of %s, mount and backing file", rep+1, r.cfg.Repeat, units.FormatSize(size)))
		primeMount, primeBacking := catMount(new([]float64)), catBacking(new([]float64))
		err := alternate(rep,
			func() error { return seq(primeMount, catMount(&mnt)) },
			func() error { return seq(primeBacking, catBacking(&back)) })
		if err != nil {
			return err
		}
	}
	c := newCheck(warmName, "MB/s", median(mnt), median(back), ">=", 0.9)
	c.MeasuredSamples, c.BaselineSamples = mnt, back
	t.Checks = append(t.Checks, c)
	// With passthrough the kernel reads the backing file itself: no READ reaches the daemon.
	t.Details["daemon_during_mount_cats"] = daemon
	return nil
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

// catInto times `cat path > /dev/null` and appends its MB/s for size bytes to samples.
func catInto(ctx context.Context, path string, size int64, samples *[]float64) error {
	took, err := timeCommand(ctx, "cat", path)
	if err != nil {
		return err
	}
	*samples = append(*samples, mbps(size, took))
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
