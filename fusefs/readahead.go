package fusefs

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// raiseReadahead sets the bdi's read_ahead_kb to segfs's max_readahead: the kernel starts FUSE mounts
// at 128 KiB whatever INIT asks, so cached reads would take eight round trips where one does. Needs root.
func raiseReadahead(mountpoint string, bytes int, log logrus.FieldLogger) {
	var st unix.Stat_t
	if err := unix.Stat(mountpoint, &st); err != nil {
		return
	}
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	cur, err := os.ReadFile(path)
	if n, perr := strconv.Atoi(strings.TrimSpace(string(cur))); err == nil && perr == nil && n >= bytes>>10 {
		return
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(bytes>>10)), 0); err != nil {
		log.WithError(err).Debug("kernel readahead of the mount left at its default")
	}
}
