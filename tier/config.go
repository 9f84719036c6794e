package tier

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

const (
	DefaultConcurrency = 4
	DefaultTimeout     = 10 * time.Second
	DefaultCacheSize   = 1 << 30
	// DefaultPartSize is the multipart part size; objects of at least twice that go multipart.
	DefaultPartSize = 16 << 20
	// minPartSize is S3's smallest part but the last.
	minPartSize = 5 << 20
)

// Config configures a Store.
type Config struct {
	Bucket, Prefix string // from ParseURL
	Endpoint       string // empty: AWS S3
	Region         string // empty: from the AWS config chain, else us-east-1 with an Endpoint
	// PathStyle addresses ENDPOINT/BUCKET; nil turns it on for an IP or localhost Endpoint.
	PathStyle   *bool
	Concurrency int           // parts of one multipart upload in flight
	Timeout     time.Duration // bound of every request, retries included
	CacheDir    string        // on-disk read cache; empty: memory only
	CacheSize   int64         // bytes of the disk cache
	PartSize    int64         // multipart part size; tests lower it
	Logger      logrus.FieldLogger
}

// ParseURL parses s3://BUCKET[/PREFIX] into bucket and prefix (no leading or trailing slash).
func ParseURL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err == nil && u.User != nil {
		return "", "", errors.New("invalid tier URL: it carries credentials; give them through the AWS environment or profile, never in options")
	}
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", "", fmt.Errorf("invalid tier URL %q: want s3://BUCKET/PREFIX", s)
	}
	bucket = u.Host
	if len(bucket) < 3 || len(bucket) > 63 {
		return "", "", fmt.Errorf("invalid tier URL %q: bucket names have 3 to 63 characters", s)
	}
	prefix = strings.Trim(u.Path, "/")
	for _, part := range strings.Split(prefix, "/") {
		if prefix != "" && (part == "" || part == "." || part == "..") {
			return "", "", fmt.Errorf("invalid tier URL %q: empty, . or .. in the prefix", s)
		}
	}
	return bucket, prefix, nil
}

// URL is the inverse of ParseURL.
func URL(bucket, prefix string) string {
	if prefix == "" {
		return "s3://" + bucket
	}
	return "s3://" + bucket + "/" + prefix
}

func (c Config) withDefaults() (Config, error) {
	if c.Bucket == "" {
		return c, errors.New("tier: no bucket")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CacheSize <= 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.PartSize <= 0 {
		c.PartSize = DefaultPartSize
	}
	c.PartSize = (max(c.PartSize, minPartSize) + layoutChunk - 1) / layoutChunk * layoutChunk
	if c.Logger == nil {
		c.Logger = logrus.StandardLogger()
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("tier: invalid endpoint %q: want http(s)://HOST[:PORT]", c.Endpoint)
		}
		if c.PathStyle == nil {
			host := u.Hostname()
			auto := host == "localhost" || net.ParseIP(host) != nil
			c.PathStyle = &auto
		}
	}
	if c.PathStyle == nil {
		off := false
		c.PathStyle = &off
	}
	return c, nil
}
