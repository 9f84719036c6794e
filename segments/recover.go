package segments

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"segfs/directio"
)

func (l *Log) openPartition(topic string, id int, dir string, create bool) (_ *Partition, err error) {
	p := newPartition(l, topic, id, dir)
	if create {
		if err := l.fs.mkdir(dir); err != nil {
			return nil, err
		}
	}
	commit, created, err := openCommit(l.fs, dir)
	if err != nil {
		return nil, err
	}
	p.w.commit = commit
	defer func() {
		if err != nil {
			for _, s := range p.list.segs {
				if f, _ := s.closeRead(l.fs); f != nil {
					_ = f.Close()
				}
			}
			_ = commit.close()
		}
	}()
	bases, err := l.listSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(bases) == 0 {
		seg, err := p.w.createSegment(0, true) // the directory sync covers .commit too
		if err != nil {
			return nil, fmt.Errorf("partition %s: %w", p.name(), err)
		}
		p.list.segs = []*segment{seg}
	} else {
		if created {
			if err := l.fs.syncDir(dir); err != nil {
				return nil, err
			}
		}
		if err := p.recoverSegments(bases); err != nil {
			return nil, err
		}
	}
	active := p.list.segs[len(p.list.segs)-1]
	p.w.end.Store(active.base + active.size.Load())
	p.w.durable.Store(p.w.end.Load())
	l.fs.fds.register(p.w)
	p.logger().WithFields(map[string]any{"segments": len(p.list.segs), "size": p.w.end.Load()}).Debug("opened partition")
	return p, nil
}

func (l *Log) listSegments(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var bases []int64
	for _, e := range entries {
		if base, ok := ParseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		} else if e.Name() != commitName && e.Name() != manifestName && e.Name() != manifestName+".tmp" {
			id, _ := ParsePartitionName(filepath.Base(dir))
			l.cfg.Logger.WithFields(map[string]any{
				"path": filepath.Join(dir, e.Name()), "topic": filepath.Base(filepath.Dir(dir)), "partition": id,
			}).Warn("ignoring unexpected entry in partition directory")
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

// recoverSegments applies doc.go's recovery rule.
func (p *Partition) recoverSegments(bases []int64) error {
	if n := len(bases); n > 1 {
		var err error
		if bases, err = p.recoverRotation(bases); err != nil {
			return err
		}
	}
	for i, base := range bases {
		path := filepath.Join(p.dir, SegmentName(base))
		if i == len(bases)-1 {
			return p.recoverActive(base, path)
		}
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			return fmt.Errorf("recover %s: %w", path, err)
		}
		if end := base + st.Size; end > bases[i+1] {
			return fmt.Errorf("recover %s: segment ends at %d, after the next segment starts (%d): data directory is corrupt", path, end, bases[i+1])
		}
		// A gap before the next segment is a purged range.
		p.list.segs = append(p.list.segs, newSealedSegment(base, path, &st))
	}
	return nil
}

// recoverRotation repairs an interrupted deferred rotation; it drops the empty last segment if
// keeping it would leave a hole.
func (p *Partition) recoverRotation(bases []int64) ([]int64, error) {
	n := len(bases)
	last := filepath.Join(p.dir, SegmentName(bases[n-1]))
	var st unix.Stat_t
	if err := unix.Stat(last, &st); err != nil {
		return nil, fmt.Errorf("recover %s: %w", last, err)
	}
	if st.Size != 0 {
		return bases, nil
	}
	prev := filepath.Join(p.dir, SegmentName(bases[n-2]))
	size, err := p.repairTail(bases[n-2], prev)
	if err != nil {
		return nil, err
	}
	if bases[n-2]+size >= bases[n-1] {
		return bases, nil
	}
	if err := p.fs.dirs.Unlink(last); err != nil {
		return nil, fmt.Errorf("recover %s: remove the empty successor of an unsealed segment: %w", last, err)
	}
	if err := p.fs.syncDir(p.dir); err != nil {
		return nil, fmt.Errorf("recover %s: %w", p.dir, err)
	}
	p.logger().WithFields(map[string]any{"segment": bases[n-2], "size": size, "removed": bases[n-1]}).
		Info("a crash interrupted a seal: the unsealed segment is active again")
	return bases[:n-1], nil
}

func (p *Partition) recoverActive(base int64, path string) error {
	if _, err := p.repairTail(base, path); err != nil {
		return err
	}
	seg := newSegment(base, path)
	if _, err := p.w.openFile(seg); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	p.list.segs = append(p.list.segs, seg)
	return nil
}

func (p *Partition) repairTail(base int64, path string) (int64, error) {
	fd, err := p.fs.sys.Open(path, unix.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("recover %s: %w", path, err)
	}
	defer func() { _ = p.fs.sys.Close(fd) }()
	var st unix.Stat_t
	if err := p.fs.sys.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("recover %s: fstat: %w", path, err)
	}
	recs := p.w.commit.records(base)
	size, err := recoveredSize(st.Size, recs, func(off, n int64) (uint32, error) {
		blk := make([]byte, n)
		if err := directio.ReadFullAt(p.fs.sys, fd, blk, off); err != nil {
			return 0, fmt.Errorf("read last block at %d: %w", off, err)
		}
		return crc32c(blk), nil
	})
	if err != nil {
		return 0, fmt.Errorf("recover %s: %w", path, err)
	}
	if size != st.Size {
		if err := p.fs.sys.Ftruncate(fd, size); err != nil {
			return 0, fmt.Errorf("recover %s: truncate to %d: %w", path, size, err)
		}
		p.logger().WithFields(map[string]any{
			"segment": base, "path": path, "size": st.Size, "logical": size,
		}).Info("recovery cut the zero padding of an interrupted flush")
	}
	if err := p.fs.sys.Fdatasync(fd); err != nil {
		return 0, fmt.Errorf("recover %s: fdatasync: %w", path, err)
	}
	return size, nil
}

func (l *Log) sweepTombstones(dir string) ([]os.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var live []os.DirEntry
	swept := false
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tombstonePrefix) {
			live = append(live, e)
			continue
		}
		if err := l.fs.removeTree(filepath.Join(dir, e.Name())); err != nil {
			return nil, err
		}
		swept = true
	}
	if swept {
		if err := l.fs.syncDir(dir); err != nil {
			return nil, err
		}
	}
	return live, nil
}
