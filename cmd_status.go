package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"segfs/daemon"
	"segfs/internal/tty"
	"segfs/units"
)

func statusCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show a mount's daemon and, per partition, its end offset, segments, size, last append, unsynced bytes and health",
		ArgsUsage: "MOUNTPOINT",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON (schema in docs/status.md) instead of a table"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("usage: segfs status [--json] MOUNTPOINT")
			}
			mnt, err := daemon.ResolveMountpoint(c.Args().First())
			if err != nil {
				return err
			}
			st, err := daemon.GetStatus(mnt)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return writeStatus(c.App.Writer, st, useColor(c.App.Writer, os.Getenv))
		},
	}
}

// writeStatus prints st as a header and a table. Without color (a pipe, a file, NO_COLOR) it is
// plain text with no escape sequence, columns separated by spaces, one partition per line.
func writeStatus(w io.Writer, st *daemon.Status, color bool) error {
	metrics := "MNT/.stats only"
	switch {
	case st.MetricsAddress != "":
		metrics = "http://" + st.MetricsAddress + "/metrics and MNT/.stats"
	case slices.Contains(strings.Split(st.Options, ","), "metrics=off"):
		metrics = "off"
	}
	fmt.Fprintf(w, "segfs %s (revision %s), pid %d, up %s\n", st.Version, st.Revision, st.PID,
		age(time.Duration(st.UptimeSeconds*float64(time.Second))))
	fmt.Fprintf(w, "mount    %s\ndata     %s\noptions  %s\nmetrics  %s\n\n", st.Mountpoint, st.DataDir, st.Options, metrics)
	if len(st.Partitions) == 0 {
		_, err := fmt.Fprintln(w, "no topics yet: mkdir", st.Mountpoint+"/TOPIC creates one")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tEND OFFSET\tSEGMENTS\tSIZE\tLAST APPEND\tUNSYNCED\tHEALTH")
	for _, p := range st.Partitions {
		health := p.Health
		if p.Error != "" {
			health += ": " + p.Error
		}
		last := "never"
		if p.EndOffset > 0 {
			last = age(time.Duration(p.LastAppendAgeSeconds*float64(time.Second))) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", p.Topic, p.Partition, p.EndOffset, p.Segments,
			units.HumanSize(p.SizeBytes), last,
			units.HumanSize(p.UnsyncedBytes), paint(health, p.Health, color))
	}
	return tw.Flush()
}

// useColor: color only on a terminal, and not when the user asked for none (https://no-color.org).
func useColor(w io.Writer, getenv func(string) string) bool {
	return tty.IsTerminal(w) && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}

// paint colors a health for a terminal: tabwriter counts the escape bytes as width, which is harmless
// in the last column.
func paint(s, health string, color bool) string {
	if !color {
		return s
	}
	code := "32" // green
	switch health {
	case "stalled":
		code = "33"
	case "failed":
		code = "31"
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// age renders d coarsely, two units at most: 45s, 3m12s, 2h5m, 3d4h.
func age(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return strconv.FormatInt(s, 10) + "s"
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}
