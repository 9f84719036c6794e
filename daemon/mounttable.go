package daemon

import (
	"fmt"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// mountAt returns the topmost mount at path, which must be resolved as the kernel lists it.
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
	// Mount order: the last entry is on top.
	return mounts[len(mounts)-1], true, nil
}

func isFUSE(m *mountinfo.Info) bool {
	return m.FSType == "fuse" || strings.HasPrefix(m.FSType, "fuse.")
}
