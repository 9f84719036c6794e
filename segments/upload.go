package segments

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"golang.org/x/sys/unix"
)

const (
	DefaultTierConcurrency = 4
	defaultTierInterval    = time.Second
	defaultTierRetry       = time.Second
	maxTierRetry           = 5 * time.Minute
)

// startTier starts the uploader, which the Log owns: Close stops it before closing the partitions.
func (l *Log) startTier() {
	t := l.tier
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.sem = make(chan struct{}, l.cfg.TierConcurrency)
	go l.tierLoop()
}

func (l *Log) stopTier() {
	t := l.tier
	if t == nil || t.stop == nil {
		return
	}
	close(t.stop)
	t.cancel()
	<-t.done
	t.inflight.Wait()
}

func (l *Log) tierLoop() {
	t := l.tier
	defer close(t.done)
	tick := time.NewTicker(l.cfg.tierInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-t.kick:
		case <-tick.C:
		}
		now := time.Now()
		pressure := l.diskPressure()
		l.runGC()
		for _, p := range l.partitions() {
			pt := l.partTierFor(p)
			if pt == nil {
				continue
			}
			pt.mu.Lock()
			if pt.stale {
				l.saveManifestLocked(p, pt)
			}
			pt.mu.Unlock()
			l.evict(p, pt, now, pressure)
			l.startTransfer(p, pt, now)
		}
	}
}

// backoff has full jitter so partitions that failed together do not retry together.
func (l *Log) backoff(n int) time.Duration {
	d := l.cfg.TierRetry << min(n-1, 20)
	if d <= 0 || d > maxTierRetry {
		d = maxTierRetry
	}
	return d/2 + rand.N(d/2+1)
}

// startTransfer starts the partition's next transfer: purges' deletes first, else the upload of
// the oldest sealed segment without a verified copy.
func (l *Log) startTransfer(p *Partition, pt *partTier, now time.Time) {
	pt.mu.Lock()
	if pt.busy || pt.gone || now.Before(pt.retryAt) || l.gcPending(p.topic, p.id) {
		pt.mu.Unlock()
		return
	}
	var deletes []int64
	for _, e := range pt.man.Segments {
		if e.State == stateDeleting {
			deletes = append(deletes, e.Base)
		}
	}
	var next *segment
	if len(deletes) == 0 {
		segs, err := p.snapshot()
		if err != nil {
			pt.mu.Unlock()
			return
		}
		for _, s := range segs[:max(len(segs)-1, 0)] {
			if s.sealed.Load() && s.tier.copy.Load() == nil {
				next = s
				break
			}
			if !s.sealed.Load() {
				break // being sealed: log order
			}
		}
		if next == nil {
			pt.mu.Unlock()
			return
		}
	}
	select {
	case l.tier.sem <- struct{}{}:
	default:
		pt.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(l.tier.ctx)
	pt.busy, pt.cancel, pt.done = true, cancel, make(chan struct{})
	pt.mu.Unlock()
	l.tier.inflight.Add(1)
	go func() {
		defer l.tier.inflight.Done()
		defer func() { <-l.tier.sem }()
		var err error
		if next != nil {
			err = l.upload(ctx, p, pt, next)
		} else {
			err = l.deleteRemote(ctx, p, pt, deletes)
		}
		cancel()
		pt.mu.Lock()
		pt.busy = false
		close(pt.done)
		if err != nil && !errors.Is(err, context.Canceled) {
			if next != nil {
				p.counters.uploadErrors.Add(1)
			}
			pt.failures++
			pt.retryAt = time.Now().Add(l.backoff(pt.failures))
			if pt.failures == 1 || pt.failures%10 == 0 {
				l.cfg.Logger.WithError(err).WithFields(map[string]any{
					"partition": p.name(), "failures": pt.failures, "retry_in": time.Until(pt.retryAt).Round(time.Millisecond).String(),
				}).Warn("tier: transfer failed; the local disk keeps the segment and the transfer is retried")
			}
		} else if err == nil {
			pt.failures, pt.retryAt = 0, time.Time{}
		}
		pt.mu.Unlock()
		l.tierSealed()
	}()
}

// upload records the verified copy; a segment purged meanwhile is deleted again.
func (l *Log) upload(ctx context.Context, p *Partition, pt *partTier, s *segment) error {
	sealed := time.Unix(0, s.mtime.Load())
	pt.mu.Lock()
	pt.man.set(manifestEntry{Base: s.base, Size: s.size.Load(), State: stateUploading, Sealed: sealed.UnixNano()})
	// Best effort: a full disk must not stop the upload that frees it.
	if err := p.fs.writeManifest(p.dir, pt.man); err != nil {
		l.cfg.Logger.WithError(err).WithField("partition", p.name()).Debug("tier: could not record the upload's start")
	}
	pt.mu.Unlock()
	start := time.Now()
	etag, err := l.cfg.Remote.Upload(ctx, p.topic, p.id, s.base, s.size.Load(), sealed, s.path)
	if err != nil {
		return err
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	e := manifestEntry{Base: s.base, Size: s.size.Load(), State: stateVerified, ETag: etag, Sealed: sealed.UnixNano()}
	if _, ferr := p.find(s.base); ferr != nil {
		e.State = stateDeleting
	}
	pt.man.set(e)
	// Verified even if the manifest cannot say so yet (full disk): reconcile finds the object again.
	s.tier.copy.Store(&remoteCopy{etag: etag})
	l.saveManifestLocked(p, pt)
	l.cfg.Logger.WithFields(map[string]any{
		"partition": p.name(), "segment": s.base, "size": s.size.Load(), "took": time.Since(start).Round(time.Millisecond).String(),
	}).Info("tier: segment uploaded and verified")
	return nil
}

func (l *Log) deleteRemote(ctx context.Context, p *Partition, pt *partTier, bases []int64) error {
	if err := l.cfg.Remote.Delete(ctx, p.topic, p.id, bases); err != nil {
		return err
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for _, b := range bases {
		pt.man.remove(b)
	}
	l.saveManifestLocked(p, pt)
	return nil
}

func (l *Log) evict(p *Partition, pt *partTier, now time.Time, pressure bool) {
	cfg := &l.cfg
	if !pressure && cfg.LocalRetentionBytes <= 0 && cfg.LocalRetentionAge <= 0 {
		return
	}
	segs, err := p.snapshot()
	if err != nil || len(segs) < 2 {
		return
	}
	var local int64
	for _, s := range segs {
		if !s.tier.evicted.Load() {
			local += s.size.Load()
		}
	}
	for _, s := range segs[:len(segs)-1] {
		if s.tier.evicted.Load() {
			continue
		}
		if s.tier.copy.Load() == nil {
			return // not uploaded yet: it and everything after it stay
		}
		size := s.size.Load()
		byBytes := cfg.LocalRetentionBytes > 0 && local-size >= cfg.LocalRetentionBytes
		byAge := cfg.LocalRetentionAge > 0 && now.Sub(time.Unix(0, s.mtime.Load())) > cfg.LocalRetentionAge
		if !byBytes && !byAge && !pressure {
			return
		}
		if err := l.evictOne(p, pt, s); err != nil {
			cfg.Logger.WithError(err).WithField("partition", p.name()).Warn("tier: could not evict a segment")
			return
		}
		local -= size
		if pressure && !l.diskPressure() {
			pressure = false // relieved: the retentions decide again
		}
	}
}

// evictOne: manifest, then reads, then the local file. A crash in between leaves a local file the
// manifest calls evicted, which the next mount keeps as verified.
func (l *Log) evictOne(p *Partition, pt *partTier, s *segment) error {
	p.nsMu.Lock() // against Purge, delete and close
	defer p.nsMu.Unlock()
	if _, err := p.find(s.base); err != nil {
		return nil
	}
	pt.mu.Lock()
	e := pt.man.find(s.base)
	if e == nil || e.State != stateVerified {
		pt.mu.Unlock()
		return nil
	}
	e.State = stateEvicted
	// On a full disk the manifest follows the unlink.
	recorded := l.saveManifestLocked(p, pt)
	pt.mu.Unlock()
	s.tier.evicted.Store(true)
	s.mu.Lock() // waits for local reads in flight
	_ = p.fs.fds.forget(&s.rfd)
	s.mu.Unlock()
	if err := p.fs.dirs.Unlink(s.path); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	if err := p.fs.syncDir(p.dir); err != nil {
		return err
	}
	if !recorded {
		pt.mu.Lock()
		l.saveManifestLocked(p, pt)
		pt.mu.Unlock()
	}
	l.cfg.Logger.WithFields(map[string]any{"partition": p.name(), "segment": s.base, "size": s.size.Load()}).Info("tier: evicted local copy; reads go to the object store")
	return nil
}

// saveManifestLocked marks a manifest it cannot write stale, for the next round.
func (l *Log) saveManifestLocked(p *Partition, pt *partTier) bool {
	if err := p.fs.writeManifest(p.dir, pt.man); err != nil {
		if !pt.stale {
			l.cfg.Logger.WithError(err).WithField("partition", p.name()).Warn("tier: could not write the manifest; retrying")
		}
		pt.stale = true
		return false
	}
	pt.stale = false
	return true
}

// diskPressure: free space below two segments (at most a tenth of the disk) evicts early.
func (l *Log) diskPressure() bool {
	var st unix.Statfs_t
	if unix.Statfs(l.dir, &st) != nil {
		return false
	}
	bs := int64(st.Bsize)
	reserve := min(2*l.cfg.SegmentSize, int64(st.Blocks)*bs/10)
	return int64(st.Bavail)*bs < reserve
}

func (l *Log) tierPurged(p *Partition, s *segment) {
	pt := l.partTier(p)
	if pt == nil {
		return
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	changed := false
	if e := pt.man.find(s.base); e != nil {
		e.State = stateDeleting
		changed = true
	}
	if segs, err := p.snapshot(); err == nil && len(segs) > 0 && segs[0].base > pt.man.Start {
		pt.man.Start = segs[0].base
		changed = true
	}
	if changed {
		l.saveManifestLocked(p, pt)
	}
	l.tierSealed()
}

func (l *Log) tierForget(p *Partition) *partTier {
	pt := l.partTier(p)
	if pt == nil {
		return nil
	}
	pt.mu.Lock()
	pt.gone = true
	busy, done, cancel := pt.busy, pt.done, pt.cancel
	pt.mu.Unlock()
	if busy {
		cancel()
		<-done
	}
	l.tier.mu.Lock()
	delete(l.tier.parts, p)
	l.tier.mu.Unlock()
	return pt
}
