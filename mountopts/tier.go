package mountopts

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"segfs/tier"
)

// Tier is the object-store tier of a mount (-o tier=s3://BUCKET/PREFIX and the tier_* options).
// Credentials are not options: they come from the standard AWS chain, so they never show in -o
// strings, the mount table or logs.
type Tier struct {
	URL       string // "" = no tier
	Endpoint  string
	Region    string
	PathStyle string // auto, true or false
	Cache     int64
	Timeout   time.Duration
}

// Enabled reports whether the mount has a tier.
func (t Tier) Enabled() bool { return t.URL != "" }

func defaultTier() Tier {
	return Tier{PathStyle: "auto", Cache: tier.DefaultCacheSize, Timeout: tier.DefaultTimeout}
}

// PathStyleSetting is tier_path_style for tier.Config: nil for auto.
func (t Tier) PathStyleSetting() *bool {
	if t.PathStyle == "auto" || t.PathStyle == "" {
		return nil
	}
	b := t.PathStyle == "true"
	return &b
}

func setTierURL(c *Config, v string) error {
	if v == "" {
		c.Tier.URL = ""
		return nil
	}
	b, p, err := tier.ParseURL(v)
	if err != nil {
		return err
	}
	c.Tier.URL = tier.URL(b, p)
	return nil
}

func setTierEndpoint(c *Config, v string) error {
	if v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("invalid endpoint %q: want http(s)://HOST[:PORT]", v)
		}
		if u.User != nil {
			return fmt.Errorf("the endpoint carries credentials: give them through the AWS environment or profile, never in options")
		}
	}
	c.Tier.Endpoint = v
	return nil
}

func setPathStyle(c *Config, v string) error {
	switch v {
	case "auto", "true", "false":
		c.Tier.PathStyle = v
		return nil
	}
	return fmt.Errorf("invalid value %q: want auto, true or false", v)
}

// millis parses a count of milliseconds (Kafka's retention.ms style) into a duration.
func millis(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > int64(1<<62)/int64(time.Millisecond) {
		return 0, fmt.Errorf("invalid milliseconds %q: want a whole number >= 0", v)
	}
	return time.Duration(n) * time.Millisecond, nil
}

func msOption(key, usage string, field func(c *Config) *time.Duration) option {
	return option{
		key: key, usage: usage, placeholder: "MS",
		set: func(c *Config, v string) error {
			d, err := millis(v)
			if err != nil {
				return err
			}
			*field(c) = d
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(field(c).Milliseconds(), 10) },
	}
}

// validateTier rejects tier options that cannot take effect.
func (c *Config) validateTier() error {
	s := c.Segments
	if !c.Tier.Enabled() {
		switch {
		case c.Tier.Endpoint != "":
			return fmt.Errorf("option tier_endpoint needs tier=s3://BUCKET/PREFIX")
		case c.Tier.Region != "":
			return fmt.Errorf("option tier_region needs tier=s3://BUCKET/PREFIX")
		case s.LocalRetentionBytes > 0 || s.LocalRetentionAge > 0:
			return fmt.Errorf("local_retention_bytes and local_retention_ms need tier=s3://BUCKET/PREFIX: without a tier every segment is local, and retention_bytes/retention_ms bound it")
		}
	}
	if c.Tier.Timeout <= 0 {
		return fmt.Errorf("option tier_timeout must be greater than 0")
	}
	if s.TierConcurrency < 1 {
		return fmt.Errorf("option tier_concurrency must be at least 1")
	}
	if c.ReadOnly && (s.LocalRetentionBytes > 0 || s.LocalRetentionAge > 0) {
		return fmt.Errorf("conflicting options: ro with local_retention_bytes/local_retention_ms (eviction changes the data dir)")
	}
	return nil
}

// redact hides the user-info part of a URL anywhere in s, so that an error about a value that
// wrongly carries credentials does not repeat them.
func redact(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	at := strings.IndexByte(rest, '@')
	if at < 0 || strings.ContainsAny(rest[:at], "/?#") {
		return s
	}
	return s[:i+3] + "REDACTED@" + rest[at+1:]
}
