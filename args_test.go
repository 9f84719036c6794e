package main

import (
	"io"
	"reflect"
	"strings"
	"testing"

	"segfs/daemon"
)

func TestNormalizeArgs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" means: unchanged
		err  string
	}{
		{"no args", "segfs", "", ""},
		{"version", "segfs --version", "", ""},
		{"help", "segfs --help", "", ""},
		{"help command", "segfs help mount", "", ""},
		{"canonical mount", "segfs mount --data /d -o ro /mnt",
			"segfs mount --data /d -o ro -- /mnt", ""},
		{"flags after mountpoint", "segfs mount /mnt -o ro --foreground --segment-size 64MiB",
			"segfs mount -o ro --foreground --segment-size 64MiB -- /mnt", ""},
		{"flag=value form", "segfs mount /mnt --data=/d --io=buffered",
			"segfs mount --data=/d --io=buffered -- /mnt", ""},
		{"bool flag does not eat the mountpoint", "segfs mount --ro /mnt",
			"segfs mount --ro -- /mnt", ""},
		{"short foreground", "segfs mount -f /mnt", "segfs mount -f -- /mnt", ""},
		{"global flags before and after", "segfs --log-level debug mount /mnt --log-format json",
			"segfs --log-level debug --log-format json mount -- /mnt", ""},
		{"explicit --", "segfs mount -o ro -- -weird", "segfs mount -o ro -- -weird", ""},
		{"attached -o", "segfs mount -oro,debug /mnt", "segfs mount -o ro,debug -- /mnt", ""},
		{"unknown flag kept for cli to report", "segfs mount --bogus /mnt", "segfs mount --bogus -- /mnt", ""},
		{"umount", "segfs umount /mnt --log-level debug", "segfs --log-level debug umount -- /mnt", ""},
		{"unmount alias", "segfs unmount /mnt", "segfs umount -- /mnt", ""},
		{"fstab form as mount.fuse3 runs it", "segfs /srv/data /mnt/log -o rw,nofail,dev,suid",
			"segfs mount -o rw,nofail,dev,suid --data /srv/data -- /mnt/log", ""},
		{"fstab form without options", "segfs /srv/data /mnt/log", "segfs mount --data /srv/data -- /mnt/log", ""},
		{"fstab form with global flag", "segfs --log-level debug /d /m -o ro",
			"segfs --log-level debug mount -o ro --data /d -- /m", ""},
		{"unknown command", "segfs frobnicate", "", `unknown command "frobnicate"`},
		{"fstab form with three args", "segfs /a /b /c", "", `unknown command "/a"`},
		{"unknown global flag left alone", "segfs --nope mount /m", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Fields(tt.in)
			got, err := normalizeArgs(newApp(io.Discard, io.Discard), in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("normalizeArgs(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("normalizeArgs(%q): %v", tt.in, err)
			}
			want := in
			if tt.want != "" {
				want = strings.Fields(tt.want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("normalizeArgs(%q)\n got %q\nwant %q", tt.in, got, want)
			}
		})
	}
}

func TestDaemonArgsAreStable(t *testing.T) {
	spec := daemon.Spec{
		LogLevel: "debug", LogFormat: "json", LogFile: "/var/log/x.log",
		DataDir: "/d", Mountpoint: "/m", Options: "segment_size=1GiB,ro=true",
	}
	args := append([]string{"segfs"}, spec.Args()...)
	got, err := normalizeArgs(newApp(io.Discard, io.Discard), args)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, args) {
		t.Fatalf("the daemon's own command line is rewritten:\n got %q\nwant %q", got, args)
	}
}
