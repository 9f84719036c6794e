// Command segfs mounts durable, append-only segment logs as a FUSE filesystem.
package main

import (
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
)

// version is overridden at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "segfs:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "segfs",
		Usage:   "durable, append-only segment logs as ordinary files",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "panic|fatal|error|warn|info|debug|trace"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text|json"},
		},
		Before: func(c *cli.Context) error {
			_, err := configureLogging(c.String("log-level"), c.String("log-format"))
			return err
		},
	}
}

func configureLogging(level, format string) (*logrus.Logger, error) {
	logger := logrus.StandardLogger()
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	logger.SetLevel(lvl)
	switch format {
	case "text":
		logger.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	case "json":
		logger.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, fmt.Errorf("--log-format: %q is not text or json", format)
	}
	return logger, nil
}
