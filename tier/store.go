package tier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// Object names one segment in the store; ETag and CRC are zero when only listed.
type Object struct {
	Topic     string
	Partition int
	Base      int64
	Size      int64
	ETag      string
	CRC       uint32
	ModTime   time.Time
}

// Store is one bucket and prefix of an S3-compatible object store.
type Store struct {
	cfg    Config
	s3     *s3.Client
	up     *s3.Client // uploads: payload not signed
	bufs   sync.Pool  // of *[]byte, layoutChunk each
	cache  *cache
	flight flights

	idle func() // closes idle connections, whose goroutines the transport owns

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	runs   chan struct{}  // readahead GETs in flight
	wg     sync.WaitGroup // GETs in flight
	seq    seqTracker
	downAt atomic.Int64 // Unix nanoseconds of the last unanswered fetch; 0 after a success

	hits, misses atomic.Int64
}

// Reads counts the reads the cache served alone, and those that waited for the store.
func (s *Store) Reads() (hits, misses int64) { return s.hits.Load(), s.misses.Load() }

// Open builds the client from the standard AWS chain and proves these credentials may list the
// bucket, so a bad setup fails the mount in one line.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	// Each HTTP request, body included, is bounded; a read also bounds all its retries (see Timeout).
	var transport *http.Transport
	hc := awshttp.NewBuildableClient().WithTimeout(cfg.Timeout).WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = 64
		transport = t
	})
	opts = append(opts, config.WithHTTPClient(hc))
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tier: AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, errors.New("tier: no region: set -o tier_region or AWS_REGION")
		}
		awsCfg.Region = "us-east-1"
	}
	options := func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = *cfg.PathStyle
		// segfs verifies blocks itself; the SDK would check whole-object checksums against ranges.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	}
	client := s3.NewFromConfig(awsCfg, options)
	// Unsigned payload: SigV4 would SHA-256 every byte on the producers' CPU; the CRC-32C covers them.
	uploads := s3.NewFromConfig(awsCfg, options, func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	})
	s := &Store{
		cfg: cfg, s3: client, up: uploads,
		bufs: sync.Pool{New: func() any { b := make([]byte, layoutChunk); return &b }},
		idle: func() {
			if transport != nil {
				transport.CloseIdleConnections()
			}
		},
		runs:   make(chan struct{}, maxRuns),
		flight: flights{m: map[blockRef]*flight{}, ahead: map[string]bool{}},
	}
	if err := s.preflight(ctx); err != nil {
		s.idle()
		return nil, err
	}
	if s.cache, err = openCache(cfg.CacheDir, cfg.CacheSize, cfg.Logger); err != nil {
		s.idle()
		return nil, err
	}
	s.seq.last = map[string]*seqState{}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.cache.writeLoop(s.ctx.Done())
	}()
	return s, nil
}

// Close stops the GETs in flight and closes idle connections.
func (s *Store) Close() error {
	s.cancel()
	s.wg.Wait()
	s.idle()
	return nil
}

// URL is where the store is, s3://BUCKET/PREFIX.
func (s *Store) URL() string { return URL(s.cfg.Bucket, s.cfg.Prefix) }

// preflight lists one key, proving endpoint, bucket and credentials.
func (s *Store) preflight(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	_, err := s.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(s.root()), MaxKeys: aws.Int32(1),
	}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	if err == nil {
		return nil
	}
	where := s.URL()
	if s.cfg.Endpoint != "" {
		where += " at " + s.cfg.Endpoint
	}
	var ae smithy.APIError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchBucket" || ae.ErrorCode() == "NotFound"):
		return fmt.Errorf("tier: bucket %s does not exist (%s)", s.cfg.Bucket, where)
	case errors.As(err, &ae) && (isDenied(ae.ErrorCode()) || httpStatus(err) == http.StatusForbidden):
		return fmt.Errorf("tier: %s: access denied (%s): check the AWS credentials", where, ae.ErrorCode())
	case strings.Contains(err.Error(), "failed to retrieve credentials") || strings.Contains(err.Error(), "no EC2 IMDS role"):
		return fmt.Errorf("tier: %s: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE", where)
	case errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("tier: cannot reach %s: %v", where, rootCause(err))
	case errors.As(err, &ae):
		return fmt.Errorf("tier: %s: %s: %s", where, ae.ErrorCode(), ae.ErrorMessage())
	}
	return fmt.Errorf("tier: %s: %w", where, err)
}

func isDenied(code string) bool {
	switch code {
	case "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
		"ExpiredToken", "AllAccessDisabled", "AuthorizationHeaderMalformed",
		"XAdminUserNotFound": // versitygw's answer to an unknown access key
		return true
	}
	return false
}

// rootCause: the SDK's wrapping repeats the operation name several times.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// root is the key prefix of everything segfs stores, "" or "PREFIX/".
func (s *Store) root() string {
	if s.cfg.Prefix == "" {
		return ""
	}
	return s.cfg.Prefix + "/"
}

func (s *Store) partitionPrefix(topic string, partition int) string {
	return s.root() + topic + "/" + strconv.Itoa(partition) + "/"
}

// Key is the object key of a segment: PREFIX/<topic>/<partition>/<20-digit base>.log.
func (s *Store) Key(topic string, partition int, base int64) string {
	return s.partitionPrefix(topic, partition) + fmt.Sprintf("%020d.log", base)
}

func parseBase(name string) (int64, bool) {
	if len(name) != 24 || !strings.HasSuffix(name, ".log") {
		return 0, false
	}
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(name[:20], 10, 64)
	return n, err == nil
}

func (s *Store) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

func (s *Store) listObjects(ctx context.Context, topic string, partition int) ([]Object, error) {
	prefix := s.partitionPrefix(topic, partition)
	var out []Object
	err := s.pages(ctx, prefix, "", func(page *s3.ListObjectsV2Output) {
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			base, ok := parseBase(name)
			if !ok {
				continue
			}
			out = append(out, Object{
				Topic: topic, Partition: partition, Base: base, Size: aws.ToInt64(o.Size),
				ETag: aws.ToString(o.ETag), ModTime: aws.ToTime(o.LastModified),
			})
		}
	})
	return out, err // ListObjectsV2 returns keys in UTF-8 order: zero-padded bases sort by value
}

// pages bounds each listing request by the timeout.
func (s *Store) pages(ctx context.Context, prefix, delimiter string, each func(*s3.ListObjectsV2Output)) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(prefix)}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	p := s3.NewListObjectsV2Paginator(s.s3, in)
	for p.HasMorePages() {
		rctx, cancel := s.timeout(ctx)
		page, err := p.NextPage(rctx)
		cancel()
		if err != nil {
			return fmt.Errorf("tier: list %s: %w", prefix, err)
		}
		each(page)
	}
	return nil
}

func (s *Store) partitions(ctx context.Context) (map[string][]int, error) {
	topics, err := s.dirs(ctx, s.root())
	if err != nil {
		return nil, err
	}
	out := map[string][]int{}
	for _, t := range topics {
		parts, err := s.dirs(ctx, s.root()+t+"/")
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			if n, err := strconv.Atoi(p); err == nil && n >= 0 && strconv.Itoa(n) == p {
				out[t] = append(out[t], n)
			}
		}
	}
	return out, nil
}

func (s *Store) dirs(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := s.pages(ctx, prefix, "/", func(page *s3.ListObjectsV2Output) {
		for _, cp := range page.CommonPrefixes {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/"))
		}
	})
	return out, err
}

// Delete removes segments from the store and the cache, so a reused key never serves old blocks.
func (s *Store) Delete(ctx context.Context, topic string, partition int, bases []int64) error {
	for _, base := range bases {
		key := s.Key(topic, partition, base)
		rctx, cancel := s.timeout(ctx)
		_, err := s.s3.DeleteObject(rctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
		cancel()
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("tier: delete %s: %w", key, err)
		}
		s.cache.dropKey(key)
	}
	return nil
}

// AbortUploads aborts the partition's unfinished multipart uploads, whose parts a crash leaves billed.
func (s *Store) AbortUploads(ctx context.Context, topic string, partition int) (int, error) {
	prefix := s.partitionPrefix(topic, partition)
	n := 0
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(prefix)}
	for {
		rctx, cancel := s.timeout(ctx)
		page, err := s.s3.ListMultipartUploads(rctx, in)
		cancel()
		if err != nil {
			return n, fmt.Errorf("tier: list multipart uploads of %s: %w", prefix, err)
		}
		for _, u := range page.Uploads {
			rctx, cancel := s.timeout(ctx)
			_, err := s.s3.AbortMultipartUpload(rctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.cfg.Bucket), Key: u.Key, UploadId: u.UploadId,
			})
			cancel()
			if err != nil && !isNotFound(err) {
				return n, fmt.Errorf("tier: abort upload of %s: %w", aws.ToString(u.Key), err)
			}
			n++
		}
		if !aws.ToBool(page.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchUpload":
			return true
		}
	}
	return httpStatus(err) == http.StatusNotFound
}
