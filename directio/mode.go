package directio

import "fmt"

// Mode selects how a File reaches the disk.
type Mode int

const (
	// Buffered writes through the page cache; the file always has its exact size.
	Buffered Mode = iota
	// Direct writes full aligned blocks with O_DIRECT.
	Direct
	// DirectSync adds O_DSYNC, so every completed write is durable.
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
