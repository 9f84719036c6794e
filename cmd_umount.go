package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"segfs/daemon"
)

func umountCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:      "umount",
		Aliases:   []string{"unmount"},
		Usage:     "unmount; returns once the daemon has synced every partition and exited",
		ArgsUsage: "MOUNTPOINT",
		Flags: []cli.Flag{
			&cli.BoolFlag{
				Name: "force",
				Usage: "if the daemon serves nothing (stopped, or stuck exiting), abort its FUSE connection " +
					"and detach the mount without waiting for the sync; a stopped daemon syncs and exits once resumed",
			},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("usage: segfs umount [--force] MOUNTPOINT")
			}
			mnt, err := daemon.ResolveMountpoint(c.Args().First())
			if err != nil {
				return err
			}
			return daemon.Umount(mnt, c.Bool("force"), g.log)
		},
	}
}
