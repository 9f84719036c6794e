package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"segfs/segments"
)

// StatusSchema versions Status's JSON (docs/status.md): fields are only added; changing one raises it.
const StatusSchema = 1

// Status is what `segfs status` reports about a mount: the daemon, then every partition.
type Status struct {
	Schema         int               `json:"schema"`
	Mountpoint     string            `json:"mountpoint"`
	DataDir        string            `json:"data_dir"`
	PID            int               `json:"pid"`
	Version        string            `json:"version"`
	Revision       string            `json:"revision"`
	Options        string            `json:"options"`
	Started        time.Time         `json:"started"`
	UptimeSeconds  float64           `json:"uptime_seconds"`
	MetricsAddress string            `json:"metrics_address"` // "" without an endpoint
	Partitions     []PartitionStatus `json:"partitions"`
}

// PartitionStatus is one partition's line of Status.
type PartitionStatus struct {
	Topic                string    `json:"topic"`
	Partition            int       `json:"partition"`
	StartOffset          int64     `json:"start_offset"`
	EndOffset            int64     `json:"end_offset"`
	Segments             int       `json:"segments"`
	SizeBytes            int64     `json:"size_bytes"`
	UnsyncedBytes        int64     `json:"unsynced_bytes"`
	LastAppend           time.Time `json:"last_append"`
	LastAppendAgeSeconds float64   `json:"last_append_age_seconds"`
	Health               string    `json:"health"`          // ok, stalled or failed
	Error                string    `json:"error,omitempty"` // why, unless ok
}

// Build describes the running binary.
type Build struct {
	Version, Revision, GoVersion string
}

// mountInfo is the fixed part of Status.
type mountInfo struct {
	mnt, data, options string
	build              Build
	started            time.Time
	metricsAddr        string
}

func (mi *mountInfo) status(l *segments.Log) *Status {
	now := time.Now()
	st := &Status{
		Schema: StatusSchema, Mountpoint: mi.mnt, DataDir: mi.data, PID: os.Getpid(),
		Version: mi.build.Version, Revision: mi.build.Revision, Options: mi.options,
		Started: mi.started, UptimeSeconds: now.Sub(mi.started).Seconds(), MetricsAddress: mi.metricsAddr,
		Partitions: []PartitionStatus{},
	}
	for _, p := range l.Stats() {
		if p.Health == segments.HealthClosed {
			continue // deleted in the meantime
		}
		ps := PartitionStatus{
			Topic: p.Topic, Partition: p.Partition, StartOffset: p.StartOffset, EndOffset: p.EndOffset,
			Segments: p.Segments, SizeBytes: p.SizeBytes, UnsyncedBytes: p.UnsyncedBytes,
			LastAppend: p.LastAppend, LastAppendAgeSeconds: max(0, now.Sub(p.LastAppend).Seconds()),
			Health: string(p.Health),
		}
		if p.Err != nil {
			ps.Error = oneLine(p.Err.Error())
		}
		st.Partitions = append(st.Partitions, ps)
	}
	return st
}

// GetStatus asks the daemon serving mnt (resolved) for its Status; a path that is not a live segfs
// mount fails in one line.
func GetStatus(mnt string) (*Status, error) {
	m, ok, err := mountAt(mnt)
	if err != nil {
		return nil, err
	}
	switch {
	case !ok:
		if _, err := os.Stat(mnt); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist", mnt)
		}
		return nil, fmt.Errorf("%s is not a segfs mount: nothing is mounted there", mnt)
	case m.FSType != "fuse.segfs":
		return nil, fmt.Errorf("%s is not a segfs mount (%s from %s)", mnt, m.FSType, m.Source)
	}
	ctl, err := dialControl(mnt)
	if err != nil {
		switch fuseConnState(mnt) {
		case connDead:
			return nil, fmt.Errorf("%s: its daemon is gone (killed?); segfs umount or the next segfs mount clears it", mnt)
		case connHung:
			var silent silentError
			if errors.As(err, &silent) && processState(silent.pid) == "stopped" {
				return nil, fmt.Errorf("%s: its daemon (pid %d) is stopped; kill -CONT %d resumes it", mnt, silent.pid, silent.pid)
			}
			return nil, fmt.Errorf("%s: its daemon serves nothing (%v); segfs umount --force %s clears the mount", mnt, err, mnt)
		}
		if errors.As(err, new(refusedError)) {
			return nil, fmt.Errorf("%s: %w", mnt, err)
		}
		return nil, fmt.Errorf("%s: the daemon serving it does not answer on its control socket (%v)", mnt, err)
	}
	body, err := ctl.request("status", "status")
	if err != nil {
		return nil, err
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, fmt.Errorf("daemon (pid %d): unreadable status: %w", ctl.pid, err)
	}
	return &st, nil
}
