package mountopts

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string // substring of the error; "" means success
	}{
		{"0", 0, ""},
		{"4096", 4096, ""},
		{"4096B", 4096, ""},
		{"4k", 4096, ""},
		{"4K", 4096, ""},
		{"4kB", 4096, ""},
		{"4KiB", 4096, ""},
		{"4kib", 4096, ""},
		{"64M", 64 << 20, ""},
		{"64MB", 64 << 20, ""},
		{"64MiB", 64 << 20, ""},
		{"1G", 1 << 30, ""},
		{"1GiB", 1 << 30, ""},
		{"2T", 2 << 40, ""},
		{"2TiB", 2 << 40, ""},
		{" 8 MiB ", 8 << 20, ""},
		{"8388607TiB", 8388607 << 40, ""},
		{"8388608TiB", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
		{"", 0, "invalid size"},
		{"MiB", 0, "invalid size"},
		{"-1", 0, "invalid size"},
		{"1.5G", 0, "unknown unit"},
		{"10X", 0, "unknown unit"},
		{"10 PiB", 0, "unknown unit"},
		{"0x10", 0, "unknown unit"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSize(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatSizeRoundTrips(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0"},
		{1, "1"},
		{1000, "1000"},
		{1024, "1KiB"},
		{1536, "1536"},
		{3 << 20, "3MiB"},
		{1 << 30, "1GiB"},
		{5 << 40, "5TiB"},
		{(1 << 30) + 4096, "1048580KiB"},
	}
	for _, tt := range tests {
		got := FormatSize(tt.n)
		if got != tt.want {
			t.Errorf("FormatSize(%d) = %q; want %q", tt.n, got, tt.want)
		}
		back, err := ParseSize(got)
		if err != nil || back != tt.n {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", tt.n, back, err)
		}
	}
}
