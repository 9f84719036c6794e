package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func umountCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:      "umount",
		Aliases:   []string{"unmount"},
		Usage:     "unmount; returns once the daemon has synced every partition and exited",
		ArgsUsage: "MOUNTPOINT",
		Action:    st.umount,
	}
}

func (st *appState) umount(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("usage: segfs umount MOUNTPOINT")
	}
	mnt, err := resolveMountpoint(c.Args().First())
	if err != nil {
		return err
	}
	mounts, err := readMountinfo()
	if err != nil {
		return err
	}
	m, ok := mountAt(mounts, mnt)
	if !ok {
		return fmt.Errorf("%s is not mounted", mnt)
	}
	// Connect before unmounting: the daemon exits right after the unmount, and only a connection it already
	// accepted tells us when.
	ctl, dialErr := dialControl(mnt)
	if ctl == nil && m.isFUSE() && fuseConnDead(mnt) {
		// No daemon: a plain unmount would only say EBUSY while processes still hold files there.
		return clearStaleMount(mnt, st.log)
	}
	if ctl == nil && m.FSType != "fuse.segfs" {
		return fmt.Errorf("%s is not a segfs mount (%s from %s)", mnt, m.FSType, m.Source)
	}
	if err := unmount(mnt, 0); err != nil {
		if ctl != nil {
			ctl.conn.Close()
		}
		switch {
		case errors.Is(err, unix.EBUSY):
			return fmt.Errorf("%s is busy: a process has a file or its working directory in it", mnt)
		case isDeadConn(err):
			return clearStaleMount(mnt, st.log)
		}
		return fmt.Errorf("unmount %s: %w", mnt, err)
	}
	if ctl == nil {
		st.log.WithField("mountpoint", mnt).Info("unmounted; no daemon was serving it")
		st.log.WithError(dialErr).Debug("control socket")
		return nil
	}
	st.log.WithField("pid", ctl.pid).Debug("waiting for the daemon to sync and exit")
	return ctl.waitExit()
}
