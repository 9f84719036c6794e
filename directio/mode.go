package directio

import "fmt"

// Mode selects how a File reaches the disk.
type Mode int

const (
	// Buffered writes every byte with pwrite through the page cache; Sync is fdatasync.
	// There is no tail buffer and no padding: the file always has its exact logical size.
	Buffered Mode = iota
	// Direct opens the file with O_DIRECT and writes full aligned blocks only; Sync is fdatasync.
	Direct
	// DirectSync opens the file with O_DIRECT|O_DSYNC, so every completed write is durable;
	// Sync only has to persist size changes made by a truncate.
	DirectSync
)

// ParseMode parses the io= option values "buffered", "direct" and "dsync".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "buffered":
		return Buffered, nil
	case "direct":
		return Direct, nil
	case "dsync":
		return DirectSync, nil
	}
	return 0, fmt.Errorf("invalid io mode %q: want buffered, direct or dsync", s)
}

// String is the inverse of ParseMode.
func (m Mode) String() string {
	switch m {
	case Buffered:
		return "buffered"
	case Direct:
		return "direct"
	case DirectSync:
		return "dsync"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}
