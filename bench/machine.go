package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Machine describes where the numbers were measured: without it a table of latencies says nothing.
type Machine struct {
	Hostname    string `json:"hostname"`
	Cores       int    `json:"cores"`
	MemoryBytes uint64 `json:"memory_bytes"`
	CPUModel    string `json:"cpu_model"`
	Kernel      string `json:"kernel"` // uname: sysname release version machine
	DataDir     string `json:"data_dir"`
	DataFSType  string `json:"data_fs_type"` // statfs of the data dir
	GoVersion   string `json:"go_version"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	// LoadAvg is the 1, 5 and 15 minute load when the run started: a busy machine explains noisy numbers.
	LoadAvg [3]float64 `json:"load_avg"`
}

// describeMachine gathers Machine; a field it cannot read is left empty rather than failing the run.
func describeMachine(dataDir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), DataDir: dataDir, GoVersion: runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: cpuModel(), DataFSType: fsType(dataDir)}
	m.Hostname, _ = os.Hostname()
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		m.MemoryBytes = uint64(si.Totalram) * uint64(si.Unit)
		for i, l := range si.Loads {
			m.LoadAvg[i] = float64(l) / (1 << unix.SI_LOAD_SHIFT)
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = strings.Join([]string{unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Release[:]),
			unix.ByteSliceToString(u.Version[:]), unix.ByteSliceToString(u.Machine[:])}, " ")
	}
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// fsType names the filesystem holding path from its statfs magic number (linux/magic.h).
func fsType(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return ""
	}
	names := map[int64]string{
		0xEF53: "ext4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs", 0x794c7630: "overlayfs",
		0x65735546: "fuse", 0x2FC12FC1: "zfs", 0x6969: "nfs", 0xF2F52010: "f2fs", 0x858458f6: "ramfs",
		0x3153464a: "jfs", 0x52654973: "reiserfs", 0xFF534D42: "cifs", 0x01021997: "9p",
	}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("%#x", st.Type)
}
