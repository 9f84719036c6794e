package units

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
		{"4KiB", 4096, ""},
		{"4kib", 4096, ""},
		{"64m", 64 << 20, ""},
		{"64M", 64 << 20, ""},
		{"64MiB", 64 << 20, ""},
		{"1g", 1 << 30, ""},
		{"1G", 1 << 30, ""},
		{"1GiB", 1 << 30, ""},
		{"2T", 2 << 40, ""},
		{"2TiB", 2 << 40, ""},
		{" 8 MiB ", 8 << 20, ""},
		{"8388607TiB", 8388607 << 40, ""},
		{"9223372036854775807", 1<<63 - 1, ""},
		{"8388608TiB", 0, "too large"},
		{"9223372036854775808", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
		{"", 0, "empty size"},
		{"   ", 0, "empty size"},
		{"MiB", 0, "want an integer"},
		{"-1", 0, "negative"},
		{"-1M", 0, "negative"},
		{"+1M", 0, "want an integer"},
		{"1.5G", 0, "fractions are not accepted"},
		{"1,5G", 0, "fractions are not accepted"},
		{"4kB", 0, "ambiguous"},
		{"4KB", 0, "ambiguous"},
		{"64MB", 0, "ambiguous"},
		{"64mb", 0, "ambiguous"},
		{"1GB", 0, "ambiguous"},
		{"2TB", 0, "ambiguous"},
		{"4b", 0, "unknown unit"},
		{"10X", 0, "unknown unit"},
		{"10 PiB", 0, "unknown unit"},
		{"0x10", 0, "unknown unit"},
		{"1M2", 0, "unknown unit"},
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

func TestAmbiguousSuggestsBinaryUnit(t *testing.T) {
	_, err := ParseSize("64MB")
	if err == nil || !strings.Contains(err.Error(), "MiB") {
		t.Fatalf("ParseSize(64MB) = %v; want a suggestion of MiB", err)
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
		{250e6, "250000000"},
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

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"250000000", 250e6, ""},
		{"250MiB", 250 << 20, ""},
		{"250MiB/s", 250 << 20, ""},
		{"1G/s", 1 << 30, ""},
		{"0", 0, "greater than 0"},
		{"0MiB/s", 0, "greater than 0"},
		{"-5M", 0, "negative"},
		{"fast", 0, "want an integer"},
		{"", 0, "empty"},
		{"/s", 0, "empty"},
		{"250MB/s", 0, "ambiguous"},
		{"1.5G/s", 0, "fractions"},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRate(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 512: "512 B", 1023: "1023 B", 1024: "1.00 KiB", 1536: "1.50 KiB",
		12345678: "11.8 MiB", 1 << 30: "1.00 GiB", 300 << 30: "300 GiB", 5 << 50: "5.00 PiB",
	} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q; want %q", n, got, want)
		}
	}
}
