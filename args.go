package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// normalizeArgs rewrites a command line into the shape urfave/cli parses: global flags, command, the command's
// flags, then "--" and the positional arguments. It exists for two callers:
//   - mount.fuse3, which runs `segfs DATA MOUNTPOINT -o OPTS` for an fstab line of type fuse.segfs: no command,
//     and the options after the positionals. That becomes `segfs mount -o OPTS --data DATA -- MOUNTPOINT`.
//   - people, who write `segfs mount /mnt/log -o ro`, `segfs umount /mnt/log --log-level debug` or
//     `segfs status /mnt/log --json` like any other mount tool; urfave/cli v2 would otherwise take every flag
//     after the first positional as positional.
//
// Anything it does not recognise is left where urfave/cli will report it.
func normalizeArgs(app *cli.App, args []string) ([]string, error) {
	app.Setup()
	global := flagArity(app.Flags)
	out := []string{args[0]}
	i := 1
	for i < len(args) && isFlagArg(args[i]) {
		n := flagLen(global, args[i:])
		if n == 0 {
			return args, nil
		}
		out = append(out, args[i:i+n]...)
		i += n
	}
	if i >= len(args) {
		return args, nil
	}
	name := args[i]
	cmd := app.Command(name)
	fstab := false
	rest := args[i+1:]
	if cmd == nil {
		if name == "--" {
			return args, nil
		}
		fstab, cmd, rest = true, app.Command("mount"), args[i:]
	}
	if cmd.Name != "mount" && cmd.Name != "umount" && cmd.Name != "status" {
		return args, nil
	}
	local := flagArity(cmd.Flags)
	local["help"], local["h"] = false, false
	var flags, pos []string
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--":
			pos = append(pos, rest[j+1:]...)
			j = len(rest)
		case !isFlagArg(a):
			pos = append(pos, a)
		case local["o"] && len(a) > 2 && strings.HasPrefix(a, "-o") && a[2] != '=' && a[1] != '-':
			// -oOPTS, the attached form getopt-based FUSE tools accept.
			flags = append(flags, "-o", a[2:])
		default:
			if n := flagLen(local, rest[j:]); n > 0 {
				flags = append(flags, rest[j:j+n]...)
				j += n - 1
			} else if n := flagLen(global, rest[j:]); n > 0 {
				out = append(out, rest[j:j+n]...)
				j += n - 1
			} else {
				flags = append(flags, a)
			}
		}
	}
	if fstab {
		if len(pos) != 2 {
			return nil, fmt.Errorf("unknown command %q (the fstab form is: segfs DATA MOUNTPOINT -o OPTIONS)", name)
		}
		flags = append(flags, "--data", pos[0])
		pos = pos[1:]
	}
	out = append(out, cmd.Name)
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out, nil
}

// flagArity maps every name and alias of flags to whether the flag takes a separate value argument.
func flagArity(flags []cli.Flag) map[string]bool {
	m := make(map[string]bool)
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

func isFlagArg(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

// flagLen is how many arguments the flag at args[0] spans (1 or 2), or 0 if it is not one of known.
func flagLen(known map[string]bool, args []string) int {
	name, _, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
	takesValue, ok := known[name]
	switch {
	case !ok:
		return 0
	case takesValue && !hasValue && len(args) > 1:
		return 2
	default:
		return 1
	}
}
