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
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// Object names one segment in the store. ETag and CRC are known once uploaded (zero when only listed).
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
	tm     *transfermanager.Client
	cache  *cache
	flight flights

	idle func() // closes the idle connections, whose goroutines the transport owns

	ctx    context.Context // canceled by Close: GETs in flight stop
	cancel context.CancelFunc
	runs   chan struct{}  // readahead GETs in flight, at most maxRuns
	wg     sync.WaitGroup // the goroutines of GETs in flight
	seq    seqTracker
	downAt atomic.Int64 // Unix nanoseconds of the last fetch the store did not answer; 0 once one succeeds
}

// Open builds the client from the standard AWS chain (environment, shared config and profile) and
// proves the bucket is reachable, exists and lets these credentials list it. Each failure is one clear
// line: the mount fails before it goes live.
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
		// segfs verifies every block of a read itself; the SDK would try to check whole-object
		// checksums against ranges.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	}
	client := s3.NewFromConfig(awsCfg, options)
	// Uploads do not sign their payload: without TLS SigV4 would hash every byte with SHA-256 on the
	// daemon's CPU, next to the producers, while the CRC-32C the store verifies already covers them.
	uploads := s3.NewFromConfig(awsCfg, options, func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	})
	s := &Store{
		cfg: cfg, s3: client,
		tm: transfermanager.New(uploads, func(o *transfermanager.Options) {
			o.PartSizeBytes = cfg.PartSize
			o.MultipartUploadThreshold = 2 * cfg.PartSize
			o.Concurrency = cfg.Concurrency
			o.ChecksumAlgorithm = "CRC32C"
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.FailTimeout = cfg.Timeout
		}),
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
	s.seq.last = map[string]int{}
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

// preflight lists one key: that needs the endpoint, the bucket, and credentials allowed to list it.
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

// rootCause is the innermost error: the SDK's wrapping repeats the operation name several times.
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

// parseBase parses the last component of a key, "<20 digits>.log".
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

// listObjects returns the segments of one partition in the store, sorted by base.
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

// pages calls each for every page of a listing of prefix, each request bounded by the timeout.
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

// partitions lists the topics and partitions the store holds segments of.
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

// dirs lists the "directories" (common prefixes) right below prefix.
func (s *Store) dirs(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := s.pages(ctx, prefix, "/", func(page *s3.ListObjectsV2Output) {
		for _, cp := range page.CommonPrefixes {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/"))
		}
	})
	return out, err
}

// Delete removes segments from the store; a missing object is not an error. Cached blocks of them go
// too, so a key reused by a new partition of the same name is never served from the old one.
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

// AbortUploads aborts every unfinished multipart upload of the partition: a crash during an upload
// leaves its parts stored (and billed) until someone does.
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
