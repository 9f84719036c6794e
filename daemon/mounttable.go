package daemon

import (
	"fmt"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// mountAt returns the topmost mount at path (the one a lookup of path reaches), if any. path must be resolved
// (see ResolveMountpoint), because the kernel lists mount points resolved.
func mountAt(path string) (*mountinfo.Info, bool, error) {
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.Mountpoint != path, false
	})
	if err != nil {
		return nil, false, fmt.Errorf("read mount table: %w", err)
	}
	if len(mounts) == 0 {
		return nil, false, nil
	}
	// The kernel lists mounts in mount order, so the last entry is the one stacked on top.
	return mounts[len(mounts)-1], true, nil
}

// isFUSE reports whether m is a FUSE filesystem (fstype "fuse" or "fuse.<subtype>").
func isFUSE(m *mountinfo.Info) bool {
	return m.FSType == "fuse" || strings.HasPrefix(m.FSType, "fuse.")
}
