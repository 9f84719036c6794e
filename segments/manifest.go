package segments

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

const manifestName = ".tier"

const (
	// stateUploading: the next mount aborts leftover multipart uploads and HEADs the object first.
	stateUploading = "uploading"
	// stateVerified: the store verified the CRC-32C and shows the object whole.
	stateVerified = "verified"
	// stateEvicted: reads go to the store.
	stateEvicted = "evicted"
	// stateDeleting: purged; the object is deleted in the background.
	stateDeleting = "deleting"
)

// manifest is the content of .tier. An object below Start is left over from retention.
type manifest struct {
	Version  int             `json:"version"`
	Start    int64           `json:"start"`
	Segments []manifestEntry `json:"segments"`
}

type manifestEntry struct {
	Base   int64  `json:"base"`
	Size   int64  `json:"size"`
	State  string `json:"state"`
	ETag   string `json:"etag,omitempty"`
	Sealed int64  `json:"sealed"` // Unix nanoseconds
}

const manifestVersion = 1

func readManifest(dir string) (m manifest, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return manifest{Version: manifestVersion}, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("read manifest: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Version != manifestVersion {
		return m, false, fmt.Errorf("manifest %s is corrupt or of another version (%v)", filepath.Join(dir, manifestName), err)
	}
	return m, true, nil
}

func (m *manifest) find(base int64) *manifestEntry {
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].Base >= base })
	if i < len(m.Segments) && m.Segments[i].Base == base {
		return &m.Segments[i]
	}
	return nil
}

func (m *manifest) set(e manifestEntry) {
	if old := m.find(e.Base); old != nil {
		*old = e
		return
	}
	m.Segments = append(m.Segments, e)
	sort.Slice(m.Segments, func(i, j int) bool { return m.Segments[i].Base < m.Segments[j].Base })
}

func (m *manifest) remove(base int64) {
	for i := range m.Segments {
		if m.Segments[i].Base == base {
			m.Segments = append(m.Segments[:i], m.Segments[i+1:]...)
			return
		}
	}
}

// writeManifest replaces the manifest atomically, so a crash leaves the old or the new one whole.
func (f diskCalls) writeManifest(dir string, m manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, manifestName+".tmp")
	fd, err := f.sys.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	_, err = f.sys.Pwritev(fd, [][]byte{b}, 0)
	if err == nil {
		err = f.sys.Fsync(fd)
	}
	if cerr := f.sys.Close(fd); err == nil {
		err = cerr
	}
	if err == nil {
		err = f.dirs.Rename(tmp, filepath.Join(dir, manifestName))
	}
	if err != nil {
		return fmt.Errorf("write manifest %s: %w", tmp, err)
	}
	return f.syncDir(dir)
}
