// Package units parses and formats byte counts, with one meaning for every suffix wherever segfs reads a
// size: mount options, bench flags and the docs.
//
// Every unit is a power of 1024, as tmpfs's size= and mount(8) read them: k or K is 1024, M 1024², G 1024³,
// T 1024⁴, and KiB, MiB, GiB, TiB say the same explicitly. kB, MB, GB and TB are refused rather than
// guessed: half of the tools that print them mean powers of 1000, and a silent factor of 1.024–1.1 in a
// segment size or a memory cap is worse than an error.
//
// docs/architecture.md shows where this package sits among the others.
package units

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// shifts maps every accepted suffix to its power of two.
var shifts = map[string]uint{
	"": 0, "B": 0,
	"k": 10, "K": 10, "KiB": 10,
	"m": 20, "M": 20, "MiB": 20,
	"g": 30, "G": 30, "GiB": 30,
	"t": 40, "T": 40, "TiB": 40,
}

// decimal lists the suffixes refused as ambiguous, in every case people type them.
var decimal = map[string]bool{"kb": true, "mb": true, "gb": true, "tb": true}

const want = "want an integer with an optional binary unit: K, M, G, T (or KiB, MiB, GiB, TiB; k = 1024)"

// ParseSize parses a non-negative byte count with an optional binary unit. It refuses empty input, signs,
// fractions, decimal units (kB, MB…), unknown units and counts that do not fit in an int64. Its errors do
// not name an option: the caller wraps them with the one it parsed.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	switch {
	case t == "":
		return 0, errors.New("empty size: " + want)
	case strings.HasPrefix(t, "-"):
		return 0, fmt.Errorf("invalid size %q: negative", s)
	case num == "":
		return 0, fmt.Errorf("invalid size %q: %s", s, want)
	case strings.HasPrefix(unit, ".") || strings.HasPrefix(unit, ","):
		return 0, fmt.Errorf("invalid size %q: fractions are not accepted; write it in a smaller unit (1536K, not 1.5M)", s)
	case decimal[strings.ToLower(unit)]:
		return 0, fmt.Errorf("invalid size %q: %q is ambiguous (1000 or 1024?); write %s for powers of 1024, or the byte count",
			s, unit, strings.ToUpper(unit[:1])+"iB")
	}
	shift, ok := shifts[unit]
	if !ok {
		shift, ok = shifts[canonicalIEC(unit)]
	}
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q; %s", s, unit, want)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("invalid size %q: too large (the limit is 8EiB - 1)", s)
	}
	return n << shift, nil
}

// canonicalIEC accepts KiB/MiB/GiB/TiB in any case ("kib", "MIB"): unambiguous however typed.
func canonicalIEC(unit string) string {
	if len(unit) == 3 && strings.EqualFold(unit[1:], "ib") {
		return strings.ToUpper(unit[:1]) + "iB"
	}
	return unit
}

// FormatSize renders n with the largest binary unit that divides it exactly, so the text parses back to n:
// "1GiB", "64MiB", "12345".
func FormatSize(n int64) string {
	for _, u := range []struct {
		name  string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// ParseRate parses a positive byte rate: a size as ParseSize reads it, with an optional "/s" ("250MiB",
// "250MiB/s", "250000000"). Zero is refused: a rate of nothing is not a schedule.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSpace(strings.TrimSuffix(t, "/s"))
	n, err := ParseSize(t)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("invalid rate %q: must be greater than 0 bytes per second", s)
	}
	return n, nil
}

// HumanSize renders n for people, rounded to three significant digits with a binary unit:
// "0 B", "512 B", "1.50 KiB", "12.3 MiB", "1.00 GiB". It does not parse back; FormatSize does.
func HumanSize(n int64) string {
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	unit := "B"
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		if v > -1024 && v < 1024 {
			break
		}
		v /= 1024
		unit = u
	}
	switch av := max(v, -v); {
	case av >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + " " + unit
	case av >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + " " + unit
}
