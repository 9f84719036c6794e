// Command appender is the integration suite's writer process. It appends to a segfs `current` file the way an
// application would (open with O_APPEND, one write() per chunk or record) and reports what was acknowledged,
// so the test can check the log against it. It runs as its own process so that it survives a kill -9 of the
// daemon and so that the race-instrumented test binary does not slow the writes down.
//
//	appender stream  -path P -seed S -bytes N -max-chunk M
//	appender records -path P -seed S -writer W [-count N] -max-payload M [-reopen-prob F]
//	                 [-fsync-prob F -ack FILE]
//
// With -ack, records mode runs until a write fails (or -count is reached) and logs to FILE, fsyncing it each
// time: "sync OFF" after every successful fsync of current (OFF = bytes written so far), and at exit one
// "end ACKED ATTEMPTED REASON" line: ACKED counts bytes whose write() succeeded, ATTEMPTED adds the write in
// flight when the error came.
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"segfs/integration/internal/recstream"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: appender stream|records [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "stream":
		err = runStream(os.Args[2:])
	case "records":
		err = runRecords(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "appender:", err)
		os.Exit(1)
	}
}

func openAppend(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", path, err)
	}
	return fd, nil
}

// writeWhole issues exactly one write(); a short count is an error because segfs appends each write() whole.
func writeWhole(fd int, b []byte) (int, error) {
	n, err := unix.Write(fd, b)
	if err != nil {
		return max(n, 0), err
	}
	if n != len(b) {
		return n, fmt.Errorf("short write: %d of %d bytes", n, len(b))
	}
	return n, nil
}

func runStream(args []string) error {
	fs := flag.NewFlagSet("stream", flag.ExitOnError)
	path := fs.String("path", "", "file to append to")
	seed := fs.Uint64("seed", 1, "stream seed")
	total := fs.Int("bytes", 0, "bytes to write")
	maxChunk := fs.Int("max-chunk", 256<<10, "largest write()")
	_ = fs.Parse(args)
	fd, err := openAppend(*path)
	if err != nil {
		return err
	}
	stream, next := recstream.NewStream(*seed), recstream.ChunkSizes(*seed, *maxChunk)
	buf := make([]byte, *maxChunk)
	for done := 0; done < *total; {
		chunk := buf[:min(next(), *total-done)]
		_, _ = stream.Read(chunk)
		if _, err := writeWhole(fd, chunk); err != nil {
			return fmt.Errorf("write %d bytes at stream offset %d: %w", len(chunk), done, err)
		}
		done += len(chunk)
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close %s: %w", *path, err)
	}
	fmt.Printf("wrote %d bytes\n", *total)
	return nil
}

type recordsConfig struct {
	path       string
	seed       uint64
	writer     uint32
	count      uint64
	maxPayload int
	reopenProb float64
	fsyncProb  float64
	pauseProb  float64
	pause      time.Duration
	ack        *os.File
}

func runRecords(args []string) error {
	fs := flag.NewFlagSet("records", flag.ExitOnError)
	var c recordsConfig
	var writer uint
	var ack string
	fs.StringVar(&c.path, "path", "", "file to append to")
	fs.Uint64Var(&c.seed, "seed", 1, "record seed")
	fs.UintVar(&writer, "writer", 0, "writer id")
	fs.Uint64Var(&c.count, "count", 0, "records to write (0: until a write fails)")
	fs.IntVar(&c.maxPayload, "max-payload", 64<<10, "largest payload")
	fs.Float64Var(&c.reopenProb, "reopen-prob", 0, "probability of reopening current before a record")
	fs.Float64Var(&c.fsyncProb, "fsync-prob", 0, "probability of fsync after a record")
	fs.Float64Var(&c.pauseProb, "pause-prob", 0, "probability of pausing after a record")
	fs.DurationVar(&c.pause, "pause", 0, "how long a pause lasts")
	fs.StringVar(&ack, "ack", "", "acknowledgement log outside the mount")
	_ = fs.Parse(args)
	c.writer = uint32(writer)
	if c.count == 0 && ack == "" {
		return errors.New("-count 0 (until failure) needs -ack")
	}
	if ack != "" {
		f, err := os.OpenFile(ack, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open ack log: %w", err)
		}
		defer f.Close()
		c.ack = f
	}
	acked, attempted, werr := appendRecords(c)
	if c.ack != nil {
		reason := "done"
		if werr != nil {
			reason = strings.ReplaceAll(werr.Error(), "\n", " ")
		}
		return logAck(c.ack, fmt.Sprintf("end %d %d %s", acked, attempted, reason))
	}
	if werr != nil {
		return werr
	}
	fmt.Printf("wrote %d records, %d bytes\n", c.count, acked)
	return nil
}

// appendRecords returns the bytes acknowledged by write(), the bytes attempted (acknowledged plus the write in
// flight when an error came), and that error.
func appendRecords(c recordsConfig) (acked, attempted int64, err error) {
	rng := rand.New(rand.NewPCG(c.seed, uint64(c.writer)+0x5eed))
	fd, err := openAppend(c.path)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = unix.Close(fd) }()
	for seq := uint64(0); c.count == 0 || seq < c.count; seq++ {
		if c.reopenProb > 0 && rng.Float64() < c.reopenProb {
			_ = unix.Close(fd)
			if fd, err = openAppend(c.path); err != nil {
				return acked, acked, err
			}
		}
		rec := recstream.Record(c.seed, c.writer, seq, c.maxPayload)
		n, err := writeWhole(fd, rec)
		if err != nil {
			return acked + int64(n), acked + int64(len(rec)), fmt.Errorf("write seq %d: %w", seq, err)
		}
		acked += int64(n)
		if c.fsyncProb > 0 && rng.Float64() < c.fsyncProb {
			if err := unix.Fsync(fd); err != nil {
				return acked, acked, fmt.Errorf("fsync after seq %d: %w", seq, err)
			}
			if err := logAck(c.ack, fmt.Sprintf("sync %d", acked)); err != nil {
				return acked, acked, err
			}
		}
		if c.pauseProb > 0 && rng.Float64() < c.pauseProb {
			time.Sleep(c.pause)
		}
	}
	return acked, acked, nil
}

// logAck appends one line to the ack log and makes it durable before the writer goes on, so the log never
// claims less than what the writer was told.
func logAck(f *os.File, line string) error {
	if f == nil {
		return nil
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		return fmt.Errorf("ack log: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("ack log fsync: %w", err)
	}
	return nil
}
