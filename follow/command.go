package follow

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// Command is `segfs tail`.
func Command() *cli.Command {
	return &cli.Command{
		Name:  "tail",
		Usage: "follow a partition by offset across rotations; fails if retention removed the next byte",
		Description: "Prints the partition's bytes from the end (default), from --from OFFSET or from the oldest kept byte\n" +
			"(--from-start), then every byte appended, until interrupted. Offsets are partition offsets, as in\n" +
			"MNT/T/P/.stream. If the offset it needs was removed by retention it exits 1 and names the oldest kept offset.",
		ArgsUsage: "MNT/TOPIC/PARTITION",
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "from", Usage: "start at this partition offset"},
			&cli.BoolFlag{Name: "from-start", Usage: "start at the oldest byte still kept"},
			&cli.DurationFlag{Name: "interval", Value: defaultPoll, Usage: "wait between polls of an idle partition"},
		},
		Action: run,
	}
}

const defaultPoll = 100 * time.Millisecond

func run(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: segfs tail [--from OFFSET|--from-start] MNT/TOPIC/PARTITION")
	}
	if c.IsSet("from") && c.Bool("from-start") {
		return errors.New("--from and --from-start exclude each other")
	}
	if c.Int64("from") < 0 {
		return fmt.Errorf("--from %d: partition offsets are not negative", c.Int64("from"))
	}
	if c.Duration("interval") <= 0 {
		return errors.New("--interval must be positive")
	}
	opts := Options{From: c.Int64("from"), FromStart: c.Bool("from-start"), FromEnd: !c.IsSet("from") && !c.Bool("from-start"), Poll: c.Duration("interval")}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Follow(ctx, c.Args().First(), opts, c.App.Writer)
	if errors.Is(err, syscall.EPIPE) {
		return nil // the reader went away, as with `segfs tail ... | head`
	}
	return err
}
