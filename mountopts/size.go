package mountopts

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Every unit is a power of 1024, whatever its spelling: k, K, kB, KB and KiB all mean 1024. That is what
// mount(8), dd's K and fio (kb_base=1024) users type, and a segment or memory cap is naturally counted in
// binary units; a decimal reading of "k" would make "segment_size=64k" silently not a whole number of blocks.
var sizeUnits = map[string]uint{
	"": 0, "b": 0,
	"k": 10, "kb": 10, "kib": 10,
	"m": 20, "mb": 20, "mib": 20,
	"g": 30, "gb": 30, "gib": 30,
	"t": 40, "tb": 40, "tib": 40,
}

// ParseSize parses a byte count: a non-negative integer with an optional binary unit (k/M/G/T, KiB/MiB/GiB/TiB,
// case-insensitive, all powers of 1024).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q: want an integer with an optional unit (k, M, G, T, KiB, MiB, GiB, TiB)", s)
	}
	shift, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want k, M, G, T, KiB, MiB, GiB or TiB)", s, t[i:])
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n << shift, nil
}

// FormatSize renders n with the largest binary unit that divides it exactly, so the text parses back to n.
func FormatSize(n int64) string {
	units := []struct {
		name  string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}}
	for _, u := range units {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
