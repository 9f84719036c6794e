package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"segfs/integration/internal/recstream"
)

// TestRotationIsAtomicRename: issue 4 §1.5, the property consumers (and TestLongWriterWithReaders' followers)
// rely on. Rotation must look like multilog's rename of current to <base>.log followed by a new current: once a
// reader has seen an inode listed as a sealed <base>.log, opening current must never give it that inode again.
// (A moment with no current in the listing is fine; rename(2) then create has one too.) A writer rotates 64 KiB
// segments as fast as it can while a reader lists the partition and opens current, for a few seconds.
func TestRotationIsAtomicRename(t *testing.T) {
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, "segment_size=64KiB")
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")

	stop := make(chan struct{})
	writerErr := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(filepath.Join(part, "current"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			writerErr <- err
			return
		}
		defer f.Close()
		b := recstream.StreamBytes(13, 3000)
		for {
			select {
			case <-stop:
				writerErr <- nil
				return
			default:
			}
			if _, err := f.Write(b); err != nil {
				writerErr <- err
				return
			}
		}
	}()
	err := watchCurrent(part, 5*time.Second)
	close(stop)
	if werr := <-writerErr; werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n := len(listPartition(t, part)); n < 20 {
		t.Fatalf("only %d segments: too few rotations to say anything", n)
	}
}

// watchCurrent lists dir, opens current and compares its inode with the sealed ones listed before, until d.
func watchCurrent(dir string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for i := 0; time.Now().Before(deadline); i++ {
		before, err := readPartitionDir(dir)
		if err != nil {
			return err
		}
		f, err := os.Open(filepath.Join(dir, "current"))
		if err != nil {
			return fmt.Errorf("open current: %w", err)
		}
		info, err := f.Stat()
		f.Close()
		if err != nil {
			return err
		}
		ino := info.Sys().(*syscall.Stat_t).Ino
		for _, s := range before {
			if !s.Current && s.Ino == ino {
				after, _ := readPartitionDir(dir)
				return fmt.Errorf("check %d: open(current) gave inode %d, which was listed as sealed %s before the open\nlisting before: %+v\nlisting after: %+v", i, ino, s.Name, before, after)
			}
		}
	}
	return nil
}
