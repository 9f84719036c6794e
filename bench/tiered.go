package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"segfs/mountopts"
	"segfs/tier"
)

// TieredMode is the column that uploads to an object store while it runs: dsync-deferred, the default
// mode, with Config.Tier's options, so its producer latency reads against dsync-deferred's.
func TieredMode() Mode {
	return Mode{Name: "tiered", Kind: KindFUSE, IO: "dsync", Persist: "deferred", Tiered: true}
}

// TierResult is what the tiered column measured besides the workload.
type TierResult struct {
	// RemoteReadBytes were read from evicted segments through the mount while the producers ran.
	RemoteReadBytes int64   `json:"remote_read_bytes"`
	RemoteReadMBps  float64 `json:"remote_read_mb_per_s"`
	// Cold reads of one evicted segment: through a fresh mount with an empty cache, and with a plain
	// SDK GetObject of the same object; medians of Pairs interleaved pairs.
	ColdSegment  string    `json:"cold_segment,omitempty"`
	ColdBytes    int64     `json:"cold_bytes,omitempty"`
	Pairs        int       `json:"pairs,omitempty"`
	MountFirstMs []float64 `json:"mount_first_byte_ms,omitempty"`
	MountMBps    []float64 `json:"mount_mb_per_s,omitempty"`
	SDKFirstMs   []float64 `json:"sdk_first_byte_ms,omitempty"`
	SDKMBps      []float64 `json:"sdk_mb_per_s,omitempty"`
	// StoreCold: the page cache was dropped before each read, so a store on this machine read from disk.
	StoreCold bool `json:"store_cold,omitempty"`
}

// remoteReader reads each segment once, through the mount, as soon as it is evicted, at most
// Config.TierReadRate bytes per second: a consumer catching up from the object store while the producers
// run. Tiered reads must not slow the producers down.
type remoteReader struct {
	stopc chan struct{}
	done  chan struct{}
	bytes atomic.Int64
	start time.Time
}

func startRemoteReader(data, topicDir string, remoteReadRate int64) *remoteReader {
	r := &remoteReader{stopc: make(chan struct{}), done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(r.done)
		buf := make([]byte, 128<<10)
		read := map[string]bool{}
		for {
			for _, s := range evicted(data, topicDir) {
				if read[s] {
					continue
				}
				read[s] = true
				f, err := os.Open(s)
				if err != nil {
					continue
				}
				for {
					select {
					case <-r.stopc:
						f.Close()
						return
					default:
					}
					n, err := f.Read(buf)
					r.bytes.Add(int64(n))
					if err != nil {
						break
					}
					// Pace: the bytes read so far may not run ahead of the rate.
					if ahead := time.Duration(float64(r.bytes.Load())/float64(remoteReadRate)*float64(time.Second)) - time.Since(r.start); ahead > 0 {
						time.Sleep(ahead)
					}
				}
				f.Close()
			}
			select {
			case <-r.stopc:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return r
}

func (r *remoteReader) stop() *TierResult {
	close(r.stopc)
	<-r.done
	n := r.bytes.Load()
	return &TierResult{RemoteReadBytes: n, RemoteReadMBps: float64(n) / 1e6 / time.Since(r.start).Seconds()}
}

// evicted lists the segments of the mount's topic whose local file is gone: ls shows them, the data
// directory no longer has them.
func evicted(data, topicDir string) []string {
	var out []string
	parts, _ := os.ReadDir(topicDir)
	for _, p := range parts {
		des, _ := os.ReadDir(filepath.Join(topicDir, p.Name()))
		for _, de := range des {
			if !strings.HasSuffix(de.Name(), ".log") {
				continue
			}
			if _, err := os.Stat(filepath.Join(data, filepath.Base(topicDir), p.Name(), de.Name())); errors.Is(err, os.ErrNotExist) {
				out = append(out, filepath.Join(topicDir, p.Name(), de.Name()))
			}
		}
	}
	sort.Strings(out)
	return out
}

// coldPairs is how many interleaved pairs of cold reads the tiered column measures.
const coldPairs = 3

// coldReads measures first-byte latency and throughput of reading one evicted segment cold, through a
// fresh mount whose read cache is emptied first, against a plain SDK download of the same object.
func coldReads(ctx context.Context, cfg *Config, data, mnt, opts string, res *TierResult, pr *progress) (*TierResult, error) {
	if res == nil {
		res = &TierResult{}
	}
	var mo mountopts.Config = mountopts.Defaults()
	if err := mo.Parse(opts); err != nil {
		return res, err
	}
	bucket, prefix, err := tier.ParseURL(mo.Tier.URL)
	if err != nil {
		return res, err
	}
	client, err := sdkClient(ctx, mo.Tier)
	if err != nil {
		return res, err
	}
	defer deletePrefix(ctx, client, bucket, prefix, pr)
	for i := 0; i < coldPairs; i++ {
		if err := os.RemoveAll(filepath.Join(data, ".tier-cache")); err != nil {
			return res, err
		}
		m, err := mountSegfs(ctx, cfg.Binary, data, mnt, opts)
		if err != nil {
			return res, err
		}
		segs := evicted(data, filepath.Join(mnt, "bench"))
		if len(segs) == 0 {
			_ = m.unmount()
			pr.note("no segment was evicted during the run: no cold read (set local_retention_bytes in --tier-options)")
			return res, nil
		}
		seg := segs[0]
		// Both sides read with the store's page cache empty too (when the bench may drop it), or the
		// second would read what the first brought in.
		cold := dropCaches() == nil
		first, mbps, n, rerr := timedRead(func() (io.ReadCloser, error) { return os.Open(seg) })
		if uerr := m.unmount(); rerr == nil {
			rerr = uerr
		}
		if rerr != nil {
			return res, fmt.Errorf("cold read of %s: %w", seg, rerr)
		}
		rel, _ := filepath.Rel(mnt, seg)
		key := rel
		if prefix != "" {
			key = prefix + "/" + rel
		}
		if cold {
			_ = dropCaches()
		}
		sfirst, smbps, _, serr := timedRead(func() (io.ReadCloser, error) {
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return nil, err
			}
			return out.Body, nil
		})
		if serr != nil {
			return res, fmt.Errorf("SDK download of %s: %w", key, serr)
		}
		res.ColdSegment, res.ColdBytes, res.Pairs, res.StoreCold = rel, n, i+1, cold
		res.MountFirstMs, res.MountMBps = append(res.MountFirstMs, first), append(res.MountMBps, mbps)
		res.SDKFirstMs, res.SDKMBps = append(res.SDKFirstMs, sfirst), append(res.SDKMBps, smbps)
	}
	return res, nil
}

// timedRead reads everything open returns with 128 KiB reads (cat's size): the time to the first byte
// in ms, and MB/s over the whole read.
func timedRead(open func() (io.ReadCloser, error)) (firstMs, mbps float64, n int64, err error) {
	start := time.Now()
	r, err := open()
	if err != nil {
		return 0, 0, 0, err
	}
	defer r.Close()
	buf := make([]byte, 128<<10)
	for {
		k, rerr := r.Read(buf)
		if n == 0 && k > 0 {
			firstMs = float64(time.Since(start).Microseconds()) / 1000
		}
		n += int64(k)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, 0, n, rerr
		}
	}
	return firstMs, float64(n) / 1e6 / time.Since(start).Seconds(), n, nil
}

// sdkClient is a plain S3 client of the same store, configured as a user of the SDK would.
func sdkClient(ctx context.Context, t mountopts.Tier) (*s3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if t.Region != "" {
		opts = append(opts, config.WithRegion(t.Region))
	}
	c, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, err
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	return s3.NewFromConfig(c, func(o *s3.Options) {
		if t.Endpoint != "" {
			o.BaseEndpoint = aws.String(t.Endpoint)
			o.UsePathStyle = t.PathStyle != "false"
		}
	}), nil
}

func minMax(v []float64) string {
	if len(v) == 0 {
		return ""
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return fmt.Sprintf("%.1f–%.1f", s[0], s[len(s)-1])
}

// writeTier adds the tiered column's object-store numbers below the table.
func writeTier(b *strings.Builder, r *Report) {
	for _, res := range r.Results {
		t := res.Tier
		if t == nil {
			continue
		}
		fmt.Fprintf(b, "\n%s: read %.1f MB of evicted segments through the mount during the run (%.1f MB/s)\n",
			res.Mode.Name, float64(t.RemoteReadBytes)/1e6, t.RemoteReadMBps)
		if t.Pairs == 0 {
			continue
		}
		cold := "the page cache was not dropped (not root?): the SDK side may read what the mount side brought into the store's cache"
		if t.StoreCold {
			cold = "the page cache dropped before each read"
		}
		fmt.Fprintf(b, "\nCold read of %s (%.1f MB), median of %d interleaved pairs (min–max), %s:\n\n", t.ColdSegment, float64(t.ColdBytes)/1e6, t.Pairs, cold)
		b.WriteString("| | first byte | throughput |\n| --- | ---: | ---: |\n")
		fmt.Fprintf(b, "| segfs mount, empty cache | %.1f ms (%s) | %.0f MB/s (%s) |\n", median(t.MountFirstMs), minMax(t.MountFirstMs), median(t.MountMBps), minMax(t.MountMBps))
		fmt.Fprintf(b, "| SDK GetObject | %.1f ms (%s) | %.0f MB/s (%s) |\n", median(t.SDKFirstMs), minMax(t.SDKFirstMs), median(t.SDKMBps), minMax(t.SDKMBps))
	}
}

// deletePrefix removes the run's objects from the store.
func deletePrefix(ctx context.Context, client *s3.Client, bucket, prefix string, pr *progress) {
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			pr.note(fmt.Sprintf("could not list %s/%s to delete the run's objects: %v", bucket, prefix, err))
			return
		}
		for _, o := range page.Contents {
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				pr.note(fmt.Sprintf("could not delete %s: %v", aws.ToString(o.Key), err))
			}
		}
	}
}
