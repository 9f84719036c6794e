package mountopts

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"segfs/directio"
	"segfs/segments"
)

func TestDefaults(t *testing.T) {
	d := Defaults()
	s := d.Segments
	if s.SegmentSize != 1<<30 || s.IO != directio.DirectSync || s.Persist != segments.Deferred ||
		s.Partitions != 1 || s.MaxDirty != 64<<20 || s.MaxDirtyTotal != 1<<30 ||
		s.RetentionBytes != 0 || s.RetentionAge != 0 {
		t.Fatalf("Defaults().Segments = %+v", s)
	}
	if d.AllowOther || d.DefaultPermissions || d.ReadOnly || d.Debug {
		t.Fatalf("Defaults() has a boolean option on: %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		opts []string // each one -o argument
		edit func(c *Config)
	}{
		{"empty", []string{""}, func(c *Config) {}},
		{"segment_size", []string{"segment_size=64MiB"}, func(c *Config) { c.Segments.SegmentSize = 64 << 20 }},
		{"segment_size k", []string{"segment_size=512k"}, func(c *Config) { c.Segments.SegmentSize = 512 << 10 }},
		{"io buffered", []string{"io=buffered"}, func(c *Config) { c.Segments.IO = directio.Buffered }},
		{"io direct", []string{"io=direct"}, func(c *Config) { c.Segments.IO = directio.Direct }},
		{"io dsync", []string{"io=dsync"}, func(c *Config) { c.Segments.IO = directio.DirectSync }},
		{"persist inline", []string{"persist=inline"}, func(c *Config) { c.Segments.Persist = segments.Inline }},
		{"persist deferred", []string{"persist=deferred"}, func(c *Config) { c.Segments.Persist = segments.Deferred }},
		{"partitions", []string{"partitions=8"}, func(c *Config) { c.Segments.Partitions = 8 }},
		{"max_dirty", []string{"max_dirty=1M"}, func(c *Config) { c.Segments.MaxDirty = 1 << 20 }},
		{"max_dirty_total", []string{"max_dirty_total=2G"}, func(c *Config) { c.Segments.MaxDirtyTotal = 2 << 30 }},
		{"retention_bytes", []string{"retention_bytes=10GiB"}, func(c *Config) { c.Segments.RetentionBytes = 10 << 30 }},
		{"retention_age", []string{"retention_age=168h"}, func(c *Config) { c.Segments.RetentionAge = 168 * time.Hour }},
		{"retention_age zero", []string{"retention_age=0"}, func(c *Config) {}},
		{"rotate_on newline", []string{"rotate_on=newline"}, func(c *Config) { c.Segments.RotateOn = segments.RotateNewline }},
		{"rotate_on size", []string{"rotate_on=newline,rotate_on=size"}, func(c *Config) {}},
		{"idle_release", []string{"idle_release=30s"}, func(c *Config) { c.Segments.IdleRelease = 30 * time.Second }},
		{"idle_release off", []string{"idle_release=0"}, func(c *Config) { c.Segments.IdleRelease = -1 }},
		{"max_open_files", []string{"max_open_files=100"}, func(c *Config) { c.Segments.MaxOpenFiles = 100 }},
		{"max_open_files auto", []string{"max_open_files=100,max_open_files=auto"}, func(c *Config) {}},
		{"retention_ms is retention_age", []string{"retention_ms=90000"}, func(c *Config) { c.Segments.RetentionAge = 90 * time.Second }},
		{"retention_ms then retention_age", []string{"retention_ms=90000,retention_age=1h"}, func(c *Config) { c.Segments.RetentionAge = time.Hour }},
		{"tier", []string{"tier=s3://logs/segfs/prod/,tier_endpoint=http://10.0.0.5:7480,tier_region=eu-1,tier_path_style=true"}, func(c *Config) {
			c.Tier.URL, c.Tier.Endpoint, c.Tier.Region, c.Tier.PathStyle = "s3://logs/segfs/prod", "http://10.0.0.5:7480", "eu-1", "true"
		}},
		{"tier tuning", []string{"tier=s3://logs,tier_concurrency=8,tier_cache=10GiB,tier_timeout=3s,local_retention_bytes=1G,local_retention_ms=3600000"}, func(c *Config) {
			c.Tier.URL, c.Segments.TierConcurrency, c.Tier.Cache, c.Tier.Timeout = "s3://logs", 8, 10<<30, 3*time.Second
			c.Segments.LocalRetentionBytes, c.Segments.LocalRetentionAge = 1<<30, time.Hour
		}},
		{"bare booleans", []string{"allow_other,default_permissions,ro,debug"}, func(c *Config) {
			c.AllowOther, c.DefaultPermissions, c.ReadOnly, c.Debug = true, true, true, true
		}},
		{"explicit booleans", []string{"allow_other=true,default_permissions=1,ro=false,debug=false"}, func(c *Config) {
			c.AllowOther, c.DefaultPermissions = true, true
		}},
		{"boolean turned off later", []string{"debug", "debug=false"}, func(c *Config) {}},
		{"last one wins", []string{"segment_size=1M,segment_size=2M", "segment_size=3M"}, func(c *Config) {
			c.Segments.SegmentSize = 3 << 20
		}},
		{"rw after ro", []string{"ro,rw"}, func(c *Config) {}},
		{"sync", []string{"sync"}, func(c *Config) { c.Segments.Persist = segments.Sync }},
		{"sync is persist=sync", []string{"persist=sync"}, func(c *Config) { c.Segments.Persist = segments.Sync }},
		{"async after sync", []string{"sync,async"}, func(c *Config) {}},
		{"sync after persist=inline", []string{"persist=inline", "sync"}, func(c *Config) { c.Segments.Persist = segments.Sync }},
		{"async keeps persist=inline", []string{"persist=inline,async"}, func(c *Config) { c.Segments.Persist = segments.Inline }},
		{"sync=false", []string{"sync,sync=false"}, func(c *Config) {}},
		{"ro after rw", []string{"rw,ro"}, func(c *Config) { c.ReadOnly = true }},
		{"spaces and empty items", []string{" io=buffered , ,partitions=2,"}, func(c *Config) {
			c.Segments.IO, c.Segments.Partitions = directio.Buffered, 2
		}},
		{"generic mount(8) options ignored", []string{
			"rw,dev,nodev,suid,nosuid,exec,noexec,auto,noauto,user,nouser,users,_netdev,nofail,defaults",
			"relatime,noatime,atime,strictatime,lazytime,dirsync,user=alice,owner,group",
			"x-systemd.automount,x-systemd.requires=/srv,x-systemd.mount-timeout=30,x-mount.mkdir,comment=systemd.x",
		}, func(c *Config) {}},
		{"metrics port", []string{"metrics=9464"}, func(c *Config) { c.Metrics = "127.0.0.1:9464" }},
		{"metrics :port", []string{"metrics=:0"}, func(c *Config) { c.Metrics = "127.0.0.1:0" }},
		{"metrics all interfaces", []string{"metrics=0.0.0.0:9464"}, func(c *Config) { c.Metrics = "0.0.0.0:9464" }},
		{"metrics ipv6", []string{"metrics=[::1]:9464"}, func(c *Config) { c.Metrics = "[::1]:9464" }},
		{"metrics host name", []string{"metrics=localhost:9464"}, func(c *Config) { c.Metrics = "localhost:9464" }},
		{"metrics off", []string{"metrics=off,metrics_detail=topic"}, func(c *Config) {
			c.Metrics, c.MetricsDetail = "off", "topic"
		}},
		{"fstab line as mount.fuse3 passes it", []string{"rw,nofail,segment_size=256MiB,io=buffered,allow_other,dev,suid"},
			func(c *Config) {
				c.Segments.SegmentSize, c.Segments.IO, c.AllowOther = 256<<20, directio.Buffered, true
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Defaults()
			for _, o := range tt.opts {
				if err := got.Parse(o); err != nil {
					t.Fatalf("Parse(%q) = %v", o, err)
				}
			}
			want := Defaults()
			tt.edit(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("after %q:\n got %+v\nwant %+v", tt.opts, got, want)
			}
		})
	}
}

func TestParseErrorsNameTheOption(t *testing.T) {
	tests := []struct {
		opts string
		want []string // substrings of the error
	}{
		{"bogus", []string{`unknown option "bogus"`}},
		{"bogus=1", []string{`unknown option "bogus"`}},
		{"segment-size=1M", []string{`unknown option "segment-size"`}},
		{"rw=false", []string{`unknown option "rw"`}},
		{"segment_size", []string{"option segment_size needs a value", "segment_size=SIZE"}},
		{"segment_size=", []string{"option segment_size=", "empty size"}},
		{"segment_size=64MB", []string{"option segment_size=64MB", "ambiguous"}},
		{"segment_size=big", []string{"option segment_size=big", "invalid size"}},
		{"segment_size=1.5G", []string{"option segment_size=1.5G", "fractions are not accepted"}},
		{"max_dirty=-5", []string{"option max_dirty=-5", "negative"}},
		{"max_dirty_total=1Q", []string{"option max_dirty_total=1Q"}},
		{"retention_bytes=lots", []string{"option retention_bytes=lots"}},
		{"io=fast", []string{"option io=fast"}},
		{"io", []string{"option io needs a value", "io=buffered|direct|dsync"}},
		{"persist=sometimes", []string{"option persist=sometimes"}},
		{"partitions=0", []string{"option partitions=0", "at least 1"}},
		{"partitions=-3", []string{"option partitions=-3", "at least 1"}},
		{"partitions=two", []string{"option partitions=two", "integer"}},
		{"partitions", []string{"option partitions needs a value"}},
		{"retention_age=7d", []string{"option retention_age=7d", "Go duration"}},
		{"retention_age=-1h", []string{"option retention_age=-1h", "negative"}},
		{"rotate_on=lines", []string{"option rotate_on=lines", "size or newline"}},
		{"idle_release=-1s", []string{"option idle_release=-1s", "negative"}},
		{"idle_release=5", []string{"option idle_release=5", "Go duration"}},
		{"max_open_files=8", []string{"option max_open_files=8", "at least 16"}},
		{"max_open_files=many", []string{"option max_open_files=many", "integer or auto"}},
		{"ro=maybe", []string{"option ro=maybe", "true or false"}},
		{"debug=yes please", []string{"option debug=yes please"}},
		{"allow_other=", []string{"option allow_other="}},
		{"io=buffered,partitions=0,segment_size=x", []string{"option partitions=0"}},
		{"metrics=127.0.0.1", []string{"option metrics=127.0.0.1", "HOST:PORT"}},
		{"metrics=localhost", []string{"option metrics=localhost", "HOST:PORT"}},
		{"metrics=:http", []string{"option metrics=:http", "port"}},
		{"metrics=127.0.0.1:70000", []string{"option metrics=127.0.0.1:70000", "0 to 65535"}},
		{"metrics=70000", []string{"option metrics=70000", "HOST:PORT"}},
		{"metrics_detail=segment", []string{"option metrics_detail=segment", "partition, topic or mount"}},
	}
	for _, tt := range tests {
		c := Defaults()
		err := c.Parse(tt.opts)
		if err == nil {
			t.Errorf("Parse(%q) succeeded; want an error", tt.opts)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Parse(%q) = %q; want it to contain %q", tt.opts, err, w)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		opts string
		err  string // "" means valid
	}{
		{"", ""},
		{"max_dirty=1G,max_dirty_total=1G", ""},
		{"max_dirty=2G", "max_dirty=2GiB is larger than max_dirty_total=1GiB"},
		{"max_dirty_total=32M", "max_dirty=64MiB is larger than max_dirty_total=32MiB"},
		{"max_dirty=0", "max_dirty must be greater than 0"},
		{"max_dirty_total=0", "max_dirty_total must be greater than 0"},
		{"segment_size=0", "segment_size must be greater than 0"},
		{"ro", ""},
		{"ro,retention_bytes=1G", "ro with retention_bytes"},
		{"ro,retention_age=24h", "ro with retention_age"},
		{"ro,retention_age=0,retention_bytes=0", ""},
		{"retention_bytes=1G,retention_age=24h", ""},
		{"ro,rw,retention_bytes=1G", ""},
		{"tier_endpoint=http://127.0.0.1:9000", "tier_endpoint needs tier="},
		{"local_retention_bytes=1G", "need tier="},
		{"local_retention_ms=1000", "need tier="},
		{"tier=s3://b1c/x,local_retention_bytes=1G,ro", "ro with local_retention"},
		{"tier=s3://b1c/x,ro", ""},
		{"tier=s3://b1c/x,local_retention_bytes=1G,retention_ms=604800000", ""},
	}
	for _, tt := range tests {
		c := Defaults()
		if err := c.Parse(tt.opts); err != nil {
			t.Fatalf("Parse(%q) = %v", tt.opts, err)
		}
		err := c.Validate()
		if tt.err == "" {
			if err != nil {
				t.Errorf("Validate after %q = %v; want nil", tt.opts, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Validate after %q = %v; want error containing %q", tt.opts, err, tt.err)
		}
	}
	// Partitions below 1 cannot come from Parse; a Config built in code must still be refused.
	c := Defaults()
	c.Segments.Partitions = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "partitions") {
		t.Errorf("Validate with Partitions=0 = %v; want an error naming partitions", err)
	}
}

func TestCheckBlockSize(t *testing.T) {
	tests := []struct {
		size  int64
		block int
		ok    bool
	}{
		{4096, 4096, true},
		{1 << 30, 4096, true},
		{512, 512, true},
		{4095, 4096, false},
		{512, 4096, false},
	}
	for _, tt := range tests {
		c := Defaults()
		c.Segments.SegmentSize = tt.size
		err := c.CheckBlockSize(tt.block)
		if tt.ok != (err == nil) {
			t.Errorf("CheckBlockSize(size %d, block %d) = %v; want ok=%v", tt.size, tt.block, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "segment_size") {
			t.Errorf("error %q does not name segment_size", err)
		}
	}
}

func TestSetAndSetFlag(t *testing.T) {
	c := Defaults()
	if err := c.Set("segment_size", "2MiB"); err != nil || c.Segments.SegmentSize != 2<<20 {
		t.Fatalf("Set segment_size: %v, %d", err, c.Segments.SegmentSize)
	}
	if err := c.SetFlag("max-dirty-total", "4G"); err != nil || c.Segments.MaxDirtyTotal != 4<<30 {
		t.Fatalf("SetFlag max-dirty-total: %v, %d", err, c.Segments.MaxDirtyTotal)
	}
	if err := c.SetFlag("allow-other", "true"); err != nil || !c.AllowOther {
		t.Fatalf("SetFlag allow-other: %v, %v", err, c.AllowOther)
	}
	err := c.SetFlag("segment-size", "huge")
	if err == nil || !strings.Contains(err.Error(), "--segment-size huge") {
		t.Fatalf("SetFlag bad value = %v; want it to name --segment-size", err)
	}
	if err := c.Set("nope", "1"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("Set unknown = %v", err)
	}
	if err := c.SetFlag("nope", "1"); err == nil || !strings.Contains(err.Error(), "--nope") {
		t.Fatalf("SetFlag unknown = %v", err)
	}
}

func TestOptionsCoverEveryKeyAsFlag(t *testing.T) {
	want := []string{"segment_size", "io", "persist", "partitions", "max_dirty", "max_dirty_total",
		"retention_bytes", "retention_age", "retention_ms", "tier", "tier_endpoint", "tier_region", "tier_path_style",
		"tier_concurrency", "tier_cache", "tier_timeout", "local_retention_bytes", "local_retention_ms",
		"rotate_on", "idle_release", "max_open_files", "sync",
		"allow_other", "default_permissions", "ro", "debug", "metrics", "metrics_detail"}
	opts := Options()
	if len(opts) != len(want) {
		t.Fatalf("Options() has %d entries; want %d", len(opts), len(want))
	}
	for i, o := range opts {
		if o.Key != want[i] {
			t.Errorf("option %d = %q; want %q", i, o.Key, want[i])
		}
		if o.Flag != strings.ReplaceAll(want[i], "_", "-") {
			t.Errorf("option %s has flag %q", o.Key, o.Flag)
		}
		// Every default must itself be accepted, both as -o key and as flag.
		c := Defaults()
		if err := c.Set(o.Key, o.Default); err != nil {
			t.Errorf("default of %s (%q) does not parse: %v", o.Key, o.Default, err)
		}
		if err := c.SetFlag(o.Flag, o.Default); err != nil {
			t.Errorf("default of --%s (%q) does not parse: %v", o.Flag, o.Default, err)
		}
		if !reflect.DeepEqual(c, Defaults()) {
			t.Errorf("setting %s to its default changed the config", o.Key)
		}
		if o.Bool != (o.Default == "false") {
			t.Errorf("option %s: Bool=%v, default %q", o.Key, o.Bool, o.Default)
		}
	}
}

func TestEncodeRoundTrips(t *testing.T) {
	for _, opts := range []string{
		"",
		"segment_size=1536,io=buffered,persist=inline,partitions=7,max_dirty=3k,max_dirty_total=5M," +
			"retention_bytes=9G,retention_age=1h30m,rotate_on=newline,idle_release=0,max_open_files=64," +
			"allow_other,default_permissions,debug,metrics=9464,metrics_detail=mount",
		"io=direct,ro",
		"tier=s3://bucket/a/b,tier_endpoint=https://s3.example.net,tier_region=x,tier_path_style=false," +
			"tier_concurrency=2,tier_cache=5M,tier_timeout=1m,local_retention_bytes=7G,local_retention_ms=1234,retention_ms=99",
		"sync,io=buffered",
	} {
		c := Defaults()
		if err := c.Parse(opts); err != nil {
			t.Fatalf("Parse(%q) = %v", opts, err)
		}
		enc := c.Encode()
		back := Defaults()
		back.Segments.Partitions = 99 // Encode must carry every option, not rely on the defaults
		back.Debug = true
		if err := back.Parse(enc); err != nil {
			t.Fatalf("Parse(Encode()) = %v for %q", err, enc)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip of %q via %q:\n got %+v\nwant %+v", opts, enc, back, c)
		}
	}
}

// Credentials have no option; a URL that smuggles them in is refused, so they never reach the mount
// table, the daemon's command line or its logs.
func TestTierRefusesCredentials(t *testing.T) {
	for _, opts := range []string{
		"tier=s3://AKIAX:secret@bucket/p",
		"tier=s3://bucket/p,tier_endpoint=http://AKIAX:secret@127.0.0.1:9000",
		"tier=http://bucket/p",
		"tier_path_style=yes",
		"tier_timeout=0",
		"tier_concurrency=0",
		"local_retention_ms=1h",
	} {
		c := Defaults()
		err := c.Parse(opts)
		if err == nil {
			t.Errorf("Parse(%q) accepted", opts)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q) = %v: the error repeats the secret", opts, err)
		}
	}
}
