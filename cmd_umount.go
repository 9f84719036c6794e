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
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("usage: segfs umount MOUNTPOINT")
			}
			mnt, err := daemon.ResolveMountpoint(c.Args().First())
			if err != nil {
				return err
			}
			return daemon.Umount(mnt, g.log)
		},
	}
}
