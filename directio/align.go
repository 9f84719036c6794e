package directio

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Alignment is what O_DIRECT requires of an I/O: file offsets and lengths must be multiples of Offset,
// buffer addresses multiples of Memory.
type Alignment struct{ Offset, Memory int }

// fallbackAlignment suits every device in practice (page size, 4Kn disks).
const fallbackAlignment = 4096

// block is the larger of the two alignments, so every block boundary is valid as both a file
// offset and an address in an aligned buffer, and a short write can resume at any of them.
func (a Alignment) block() int { return max(a.Offset, a.Memory) }

func (a Alignment) validate() error {
	for _, v := range []int{a.Offset, a.Memory} {
		if v <= 0 || v&(v-1) != 0 {
			return fmt.Errorf("invalid alignment %+v: offset and memory alignment must be powers of two", a)
		}
	}
	return nil
}

// DiscoverAlignment reports the O_DIRECT alignment for a file or directory. statx answers only
// for regular files, so a directory is probed with an O_TMPFILE; then the device's logical block
// size, then 4096.
func DiscoverAlignment(path string) (Alignment, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_DIOALIGN|unix.STATX_TYPE, &st); err != nil {
		return Alignment{}, fmt.Errorf("discover alignment of %s: statx: %w", path, err)
	}
	if a, ok := dioAlign(&st); ok {
		return a, nil
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if a, ok := probeTmpfile(path); ok {
			return a, nil
		}
	}
	if lbs, ok := deviceBlockSize(st.Dev_major, st.Dev_minor); ok {
		return Alignment{Offset: lbs, Memory: lbs}, nil
	}
	return Alignment{Offset: fallbackAlignment, Memory: fallbackAlignment}, nil
}

// maxPreferredBlock bounds WriteAlignment's raise: striped and network file systems report
// preferred sizes in MiB, which would pad every small append to that size.
const maxPreferredBlock = 64 << 10

// WriteAlignment is DiscoverAlignment with the offset alignment raised to the file system's
// preferred I/O size (statx's blksize: the block size on ext4 and XFS), so that every direct write
// covers whole file-system blocks. A write into part of one makes ext4 zero or serialize the block
// and a 4K-sector device read, modify and write it.
func WriteAlignment(path string) (Alignment, error) {
	a, err := DiscoverAlignment(path)
	if err != nil {
		return a, err
	}
	var st unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_BASIC_STATS, &st) == nil {
		if bs := int(st.Blksize); bs > a.Offset && bs <= maxPreferredBlock && bs&(bs-1) == 0 {
			a.Offset = bs
		}
	}
	return a, nil
}

func dioAlign(st *unix.Statx_t) (Alignment, bool) {
	if st.Mask&unix.STATX_DIOALIGN == 0 || st.Dio_offset_align == 0 || st.Dio_mem_align == 0 {
		return Alignment{}, false
	}
	a := Alignment{Offset: int(st.Dio_offset_align), Memory: int(st.Dio_mem_align)}
	return a, a.validate() == nil
}

func probeTmpfile(dir string) (Alignment, bool) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return Alignment{}, false
	}
	defer unix.Close(fd)
	var st unix.Statx_t
	if unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st) != nil {
		return Alignment{}, false
	}
	return dioAlign(&st)
}

// deviceBlockSize asks BLKSSZGET on the device node, then sysfs (a partition uses its disk's queue).
func deviceBlockSize(major, minor uint32) (int, bool) {
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	if name := ueventDevname(sys + "/uevent"); name != "" {
		if fd, err := unix.Open("/dev/"+name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0); err == nil {
			n, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
			unix.Close(fd)
			if err == nil && n > 0 && n&(n-1) == 0 {
				return n, true
			}
		}
	}
	for _, p := range []string{sys + "/queue/logical_block_size", sys + "/../queue/logical_block_size"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && n > 0 && n&(n-1) == 0 {
			return n, true
		}
	}
	return 0, false
}

func ueventDevname(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "DEVNAME="); ok && !strings.Contains(name, "..") {
			return name
		}
	}
	return ""
}

// AlignedAlloc returns a zeroed slice of size bytes starting at a multiple of align. It
// over-allocates and reslices, so the memory stays with the GC and needs no cgo.
func AlignedAlloc(size, align int) []byte {
	if align <= 0 || align&(align-1) != 0 {
		panic(fmt.Sprintf("directio: alignment %d is not a power of two", align))
	}
	if size == 0 {
		return []byte{}
	}
	buf := make([]byte, size+align-1)
	skip := 0
	if rem := int(uintptr(unsafe.Pointer(&buf[0])) & uintptr(align-1)); rem != 0 {
		skip = align - rem
	}
	return buf[skip : skip+size : skip+size]
}

// IsAligned reports whether the address of b[0] is a multiple of align. An empty slice is aligned.
func IsAligned(b []byte, align int) bool {
	if len(b) == 0 || align <= 1 {
		return true
	}
	return uintptr(unsafe.Pointer(&b[0]))&uintptr(align-1) == 0
}
