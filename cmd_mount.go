package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"

	"segfs/daemon"
	"segfs/mountopts"
)

func mountCommand(g *globals) *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "data dir (default: $SEGFS_DATA, $XDG_DATA_HOME/segfs or ~/.local/share/segfs)"},
		&cli.StringSliceFlag{Name: "o", Usage: "mount options `k=v,...` as in fstab (repeatable; flags below override them)"},
		&cli.BoolFlag{Name: "foreground", Aliases: []string{"f"}, Usage: "serve in this process instead of a daemon"},
	}
	for _, o := range mountopts.Options() {
		usage := o.Usage + " (-o " + o.Key + ")"
		if o.Bool {
			flags = append(flags, &cli.BoolFlag{Name: o.Flag, Usage: usage})
		} else {
			flags = append(flags, &cli.StringFlag{Name: o.Flag, Usage: usage, DefaultText: o.Default})
		}
	}
	return &cli.Command{
		Name:      "mount",
		Usage:     "mount a data dir; returns once the mount is live (fstab form: segfs DATA MOUNTPOINT -o OPTIONS)",
		ArgsUsage: "MOUNTPOINT",
		Flags:     flags,
		Action:    g.mount,
	}
}

func (g *globals) mount(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: segfs mount [--data DIR] [-o k=v,...] [--foreground] MOUNTPOINT")
	}
	cfg, err := mountConfig(c, os.Getenv)
	if err != nil {
		return err
	}
	if c.Bool("foreground") {
		return daemon.Serve(cfg, g.log, g.build)
	}
	return daemon.Start(cfg, g.logging, g.log)
}

// mountConfig builds the mount's Config: defaults, then every -o in order (last wins, as in mount(8)), then the
// flags given explicitly, which override -o.
func mountConfig(c *cli.Context, getenv func(string) string) (mountopts.Config, error) {
	cfg := mountopts.Defaults()
	for _, o := range c.StringSlice("o") {
		if err := cfg.Parse(o); err != nil {
			return cfg, err
		}
	}
	for _, o := range mountopts.Options() {
		if !c.IsSet(o.Flag) {
			continue
		}
		v := c.String(o.Flag)
		if o.Bool {
			v = strconv.FormatBool(c.Bool(o.Flag))
		}
		if err := cfg.SetFlag(o.Flag, v); err != nil {
			return cfg, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	data := c.String("data")
	if data == "" {
		var err error
		if data, err = daemon.DefaultDataDir(getenv); err != nil {
			return cfg, err
		}
	}
	var err error
	if cfg.DataDir, err = filepath.Abs(data); err != nil {
		return cfg, fmt.Errorf("data dir %s: %w", data, err)
	}
	if cfg.Mountpoint, err = daemon.ResolveMountpoint(c.Args().First()); err != nil {
		return cfg, err
	}
	return cfg, nil
}
