// Command segfs mounts durable, append-only segment logs as a FUSE filesystem.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"segfs/bench"
)

// version is overridden at build time with -ldflags "-X main.version=...".
var version = "dev"

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
		fmt.Fprintln(stderr, "segfs:", oneLine(err.Error()))
		return 1
	}
	return 0
}

// appState is what the root flags configure for the commands: the logger and the settings a daemon inherits.
type appState struct {
	log                          *logrus.Logger
	closeLog                     func() error
	logLevel, logFormat, logFile string
	stderr                       io.Writer
}

func newApp(stdout, stderr io.Writer) *cli.App {
	st := &appState{stderr: stderr}
	return &cli.App{
		Name:                      "segfs",
		Usage:                     "durable, append-only segment logs as ordinary files",
		Version:                   version,
		Writer:                    stdout,
		ErrWriter:                 stderr,
		DisableSliceFlagSeparator: true, // -o values are split by mountopts, which knows mount(8) syntax
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "panic|fatal|error|warn|info|debug|trace"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text|json"},
			&cli.StringFlag{Name: "log-file", Usage: "append logs to this file (default: stderr; a daemon uses DATA.log)"},
		},
		Before: func(c *cli.Context) error {
			st.logLevel, st.logFormat, st.logFile = c.String("log-level"), c.String("log-format"), c.String("log-file")
			var err error
			st.log, st.closeLog, err = newLogger(st.logLevel, st.logFormat, st.logFile, stderr)
			return err
		},
		After: func(c *cli.Context) error {
			if st.closeLog != nil {
				return st.closeLog()
			}
			return nil
		},
		Commands: []*cli.Command{mountCommand(st), umountCommand(st), bench.Command(version), bench.LimitsCommand(version)},
	}
}
