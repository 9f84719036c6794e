package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// mountEntry is one line of /proc/self/mountinfo (proc(5)), reduced to what mount and umount decide on.
type mountEntry struct {
	Major, Minor uint32 // st_dev of files on the mount; for FUSE the minor names /sys/fs/fuse/connections/<minor>
	Mountpoint   string
	FSType       string // "fuse.segfs" for our mounts
	Source       string
}

func (e mountEntry) isFUSE() bool {
	return e.FSType == "fuse" || strings.HasPrefix(e.FSType, "fuse.")
}

func readMountinfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

func parseMountinfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		// The optional fields before "-" vary in number, so the fs type is found from the separator.
		fields := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			return nil, fmt.Errorf("malformed mountinfo line %q", sc.Text())
		}
		majStr, minStr, ok := strings.Cut(fields[2], ":")
		maj, err1 := strconv.ParseUint(majStr, 10, 32)
		minor, err2 := strconv.ParseUint(minStr, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("malformed device %q in mountinfo", fields[2])
		}
		out = append(out, mountEntry{
			Major:      uint32(maj),
			Minor:      uint32(minor),
			Mountpoint: unescapeMountinfo(fields[4]),
			FSType:     unescapeMountinfo(fields[sep+1]),
			Source:     unescapeMountinfo(fields[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return out, nil
}

// unescapeMountinfo undoes the kernel's octal escaping of space, tab, newline and backslash (\040 etc.).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// mountAt returns the topmost mount at path (the one a lookup of path reaches), if any.
func mountAt(entries []mountEntry, path string) (mountEntry, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Mountpoint == path {
			return entries[i], true
		}
	}
	return mountEntry{}, false
}
