package directio

import (
	"bytes"
	"path/filepath"
	"testing"
)

var allModes = []Mode{Buffered, Direct, DirectSync}

func TestParseMode(t *testing.T) {
	for _, m := range allModes {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	if _, err := ParseMode("odirect"); err == nil {
		t.Error("ParseMode(odirect) succeeded")
	}
}

func TestBasicRoundTrip(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seg")
			f, err := Open(path, Options{Mode: m})
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for i, n := range []int{1, 100, 4096, 5000, 0, 511, 70000, 3} {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				if _, err := f.Write(p); err != nil {
					t.Fatal(err)
				}
				want = append(want, p...)
			}
			if _, err := f.WriteV([][]byte{[]byte("x"), make([]byte, 9000), []byte("yz")}); err != nil {
				t.Fatal(err)
			}
			want = append(append(append(want, 'x'), make([]byte, 9000)...), "yz"...)
			checkRead(t, f, want)
			if err := f.Flush(); err != nil {
				t.Fatal(err)
			}
			checkRead(t, f, want)
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			checkDisk(t, path, want)

			f, err = Open(path, Options{Mode: m})
			if err != nil {
				t.Fatal(err)
			}
			checkRead(t, f, want)
			if _, err := f.Write([]byte("more")); err != nil {
				t.Fatal(err)
			}
			want = append(want, "more"...)
			if err := f.FlushAndTruncate(); err != nil {
				t.Fatal(err)
			}
			checkDisk(t, path, want)
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err == nil {
				t.Error("second Close succeeded")
			}
		})
	}
}
