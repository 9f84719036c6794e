// Command segfs mounts durable, append-only segment logs as a FUSE filesystem. This package is the CLI alone:
// it parses arguments and hands them to package daemon (mount, umount) and package bench; see
// docs/architecture.md.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"segfs/bench"
	"segfs/daemon"
	"segfs/follow"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run is main without the exit, for tests: it returns the exit code after printing any error as one line.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	args, err := normalizeArgs(app, args)
	if err == nil {
		err = app.Run(args)
	}
	if err != nil {
		fmt.Fprintln(stderr, "segfs:", strings.Join(strings.Fields(err.Error()), " "))
		return 1
	}
	return 0
}

// globals is what the root flags configure for the commands: the logger, and the logging a daemon inherits.
type globals struct {
	log      *logrus.Logger
	closeLog func() error
	logging  daemon.Logging
	build    daemon.Build
}

func newApp(stdout, stderr io.Writer) *cli.App {
	g := &globals{build: thisBuild()}
	return &cli.App{
		Name:                      "segfs",
		Usage:                     "durable, append-only segment logs as ordinary files",
		Version:                   versionLine(g.build),
		Writer:                    stdout,
		ErrWriter:                 stderr,
		DisableSliceFlagSeparator: true, // -o values are split by mountopts, which knows mount(8) syntax
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "panic|fatal|error|warn|info|debug|trace"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text|json"},
			&cli.StringFlag{Name: "log-file", Usage: "append logs to this file (default: stderr; a daemon uses DATA.log)"},
		},
		Before: func(c *cli.Context) error {
			g.logging = daemon.Logging{Level: c.String("log-level"), Format: c.String("log-format"), File: c.String("log-file")}
			var err error
			g.log, g.closeLog, err = daemon.NewLogger(g.logging.Level, g.logging.Format, g.logging.File, stderr)
			return err
		},
		After: func(c *cli.Context) error {
			if g.closeLog != nil {
				return g.closeLog()
			}
			return nil
		},
		Commands: []*cli.Command{
			mountCommand(g), umountCommand(g), statusCommand(g), bench.Command(g.build.Version),
			bench.LimitsCommand(g.build.Version), follow.Command(),
		},
	}
}
