package tier

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/sirupsen/logrus"

	"segfs/internal/s3test"
)

// startStore runs versitygw and opens a Store on it, with the credentials in the environment as a
// user would pass them.
func startStore(t testing.TB, mod func(*Config)) (*s3test.Server, *Store) {
	t.Helper()
	srv := s3test.Start(t)
	setEnv(t, srv.Env())
	cfg := Config{
		Bucket: srv.Bucket, Prefix: "logs", Endpoint: srv.Endpoint, Timeout: 3 * time.Second,
		CacheDir: filepath.Join(t.TempDir(), "cache"), CacheSize: 64 << 20, Logger: quietLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	st, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open store: %v\n%s", err, srv.Log())
	}
	t.Cleanup(func() { _ = st.Close() })
	return srv, st
}

func setEnv(t testing.TB, env []string) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

func quietLogger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// segmentFile writes n random bytes as a segment file.
func segmentFile(t testing.TB, n int, seed uint64) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	path := filepath.Join(t.TempDir(), "seg.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func readAll(t *testing.T, st *Store, obj Object, step int) ([]byte, error) {
	t.Helper()
	var out []byte
	buf := make([]byte, step)
	for off := int64(0); ; {
		n, err := st.readObject(obj, buf, off)
		out = append(out, buf[:n]...)
		off += int64(n)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestUploadListReadBack(t *testing.T) {
	srv, st := startStore(t, nil)
	path, data := segmentFile(t, 3<<20+12345, 1)
	obj := Object{Topic: "orders", Partition: 2, Base: 1 << 30, Size: int64(len(data)), ModTime: time.Unix(1700000000, 5)}
	up, err := st.uploadObject(context.Background(), obj, path)
	if err != nil {
		t.Fatal(err)
	}
	if up.ETag == "" || up.CRC != crc32c(data) {
		t.Fatalf("upload returned etag %q crc %08x, want crc %08x", up.ETag, up.CRC, crc32c(data))
	}
	keys, err := srv.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := "logs/orders/2/00000000001073741824.log"
	if keys[want] != int64(len(data)) || len(keys) != 1 {
		t.Fatalf("bucket holds %v, want only %s of %d bytes", keys, want, len(data))
	}
	listed, err := st.listObjects(context.Background(), "orders", 2)
	if err != nil || len(listed) != 1 || listed[0].Base != obj.Base || listed[0].Size != obj.Size || listed[0].ETag != up.ETag {
		t.Fatalf("List = %+v, %v; want the one object with etag %s", listed, err, up.ETag)
	}
	parts, err := st.partitions(context.Background())
	if err != nil || len(parts) != 1 || len(parts["orders"]) != 1 || parts["orders"][0] != 2 {
		t.Fatalf("Partitions = %v, %v", parts, err)
	}
	got, err := readAll(t, st, up, 100000)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want %d equal bytes", len(got), err, len(data))
	}
	// Random ranges, across block boundaries, from a cold memory cache and a warm disk cache.
	r := rand.New(rand.NewPCG(2, 2))
	for i := 0; i < 50; i++ {
		off := r.Int64N(int64(len(data)))
		b := make([]byte, r.IntN(3<<20))
		n, err := st.readObject(up, b, off)
		if n != min(len(b), len(data)-int(off)) || (err != nil && err != io.EOF) || !bytes.Equal(b[:n], data[off:off+int64(n)]) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", off, len(b), n, err)
		}
	}
	// An upload of what is already there sends nothing and answers the same.
	again, err := st.uploadObject(context.Background(), obj, path)
	if err != nil || again.ETag != up.ETag {
		t.Fatalf("second upload: %+v, %v", again, err)
	}
	if err := st.Delete(context.Background(), "orders", 2, []int64{obj.Base, 7}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := srv.Keys(context.Background()); len(keys) != 0 {
		t.Fatalf("after delete the bucket holds %v", keys)
	}
}

// A segment of at least twice the part size goes multipart, and its full-object CRC-32C is still
// the one the store verifies.
func TestMultipartUpload(t *testing.T) {
	srv, st := startStore(t, func(c *Config) { c.PartSize = 5 << 20 })
	path, data := segmentFile(t, 12<<20+3, 3)
	obj := Object{Topic: "t", Partition: 0, Base: 0, Size: int64(len(data))}
	up, err := st.uploadObject(context.Background(), obj, path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(up.ETag, "-") {
		t.Errorf("etag %s: not a multipart upload", up.ETag)
	}
	h, err := srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(srv.Bucket), Key: aws.String(st.Key("t", 0, 0)), ChecksumMode: s3types.ChecksumModeEnabled,
	})
	if err != nil || aws.ToString(h.ChecksumCRC32C) != crcBase64(crc32c(data)) || h.ChecksumType != s3types.ChecksumTypeFullObject {
		t.Fatalf("head: %v crc32c %s type %s, want full-object %s", err, aws.ToString(h.ChecksumCRC32C), h.ChecksumType, crcBase64(crc32c(data)))
	}
	got, err := readAll(t, st, up, 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v)", len(got), err)
	}
}

// flipInFlight is a fault injector: the body the store receives has one byte changed after segfs
// computed its checksums, as a bad NIC or a bug in a proxy would do. versitygw cannot corrupt bytes
// in flight by itself.
type flipInFlight struct {
	io.ReadSeeker
	at, pos int64
}

func (f *flipInFlight) Read(b []byte) (int, error) {
	n, err := f.ReadSeeker.Read(b)
	if f.at >= f.pos && f.at < f.pos+int64(n) {
		b[f.at-f.pos] ^= 0x40
	}
	f.pos += int64(n)
	return n, err
}

func (f *flipInFlight) Seek(off int64, whence int) (int64, error) {
	p, err := f.ReadSeeker.Seek(off, whence)
	f.pos = p
	return p, err
}

// The store refuses a body whose bytes do not match the checksum segfs sends, single and multipart,
// and nothing is left behind as the object.
func TestCorruptUploadRefused(t *testing.T) {
	srv, st := startStore(t, func(c *Config) { c.PartSize = 5 << 20 })
	for _, size := range []int{1 << 20, 11 << 20} {
		_, data := segmentFile(t, size, uint64(size))
		lay, err := computeLayout(bytes.NewReader(data), int64(size))
		if err != nil {
			t.Fatal(err)
		}
		obj := Object{Topic: "t", Partition: 1, Base: int64(size), Size: int64(size)}
		body := &flipInFlight{ReadSeeker: bytes.NewReader(data), at: int64(size) - 10}
		if _, err := st.put(context.Background(), obj, body, lay); err == nil {
			t.Fatalf("%d bytes: upload with a byte changed in flight succeeded", size)
		} else {
			t.Logf("%d bytes: refused: %v", size, err)
		}
		if keys, _ := srv.Keys(context.Background()); len(keys) != 0 {
			t.Fatalf("%d bytes: the bucket holds %v after a refused upload", size, keys)
		}
	}
	n, err := st.AbortUploads(context.Background(), "t", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("aborted %d leftover multipart uploads", n)
}

// Objects that are not what segfs stored give ErrBadObject, never bytes.
func TestBadObjects(t *testing.T) {
	srv, st := startStore(t, func(c *Config) { c.CacheDir = "" })
	path, data := segmentFile(t, 2<<20, 5)
	obj := Object{Topic: "t", Partition: 0, Base: 0, Size: int64(len(data))}
	up, err := st.uploadObject(context.Background(), obj, path)
	if err != nil {
		t.Fatal(err)
	}
	// The posix backend keeps the object as a plain file: flip a byte of block 1 on the store's disk.
	file := filepath.Join(srv.Dir(), srv.Bucket, st.Key("t", 0, 0))
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{data[1<<20+7] ^ 1}, 1<<20+7); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b := make([]byte, 4096)
	if n, err := st.readObject(up, b, 0); err != nil || n != len(b) || !bytes.Equal(b, data[:4096]) {
		t.Fatalf("block 0 is intact: read %d, %v", n, err)
	}
	if n, err := st.readObject(up, b, 1<<20); !IsBadObject(err) || n != 0 {
		t.Fatalf("corrupt block: read %d, %v; want ErrBadObject and no bytes", n, err)
	}
	// A segment of another size than the object's.
	wrong := up
	wrong.Size--
	if _, err := st.readObject(wrong, b, 0); !IsBadObject(err) {
		t.Fatalf("wrong size: %v; want ErrBadObject", err)
	}
	// An object replaced behind segfs's back: the ETag no longer matches.
	if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(srv.Bucket), Key: aws.String(st.Key("t", 0, 0)), Body: bytes.NewReader(data),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.readObject(up, b, 1<<20); !IsBadObject(err) {
		t.Fatalf("replaced object: %v; want ErrBadObject", err)
	}
	// Without segfs's metadata, even with the right size.
	noMeta := up
	noMeta.ETag = ""
	if _, err := st.readObject(noMeta, b, 0); !IsBadObject(err) {
		t.Fatalf("object without segfs metadata: %v; want ErrBadObject", err)
	}
	// A missing key.
	gone := up
	gone.Base = 1 << 40
	if _, err := st.readObject(gone, b, 0); !IsBadObject(err) {
		t.Fatalf("missing key: %v; want ErrBadObject", err)
	}
}

// With the store down, a read of a block that is not cached fails within the timeout; cached blocks
// are still served; after a restart reads work again.
func TestReadStoreDown(t *testing.T) {
	srv, st := startStore(t, func(c *Config) { c.Timeout = time.Second })
	path, data := segmentFile(t, 12<<20, 6)
	up, err := st.uploadObject(context.Background(), Object{Topic: "t", Size: int64(len(data))}, path)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1000)
	if _, err := st.readObject(up, b, 0); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if n, err := st.readObject(up, b, 10); err != nil || !bytes.Equal(b[:n], data[10:1010]) {
		t.Fatalf("cached block with the store down: %d, %v", n, err)
	}
	start := time.Now()
	_, err = st.readObject(up, b, 11<<20+5)
	if err == nil {
		t.Fatal("read of an uncached block with the store down succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("read failed after %v, timeout is 1s", took)
	}
	// A read right behind a failed one fails at once: it does not wait for a second timeout.
	start = time.Now()
	if _, err := st.readObject(up, b, 11<<20+5); err == nil || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("read right after a failure: %v after %v; want a fast failure", err, time.Since(start))
	}
	srv.Restart()
	// A loaded machine may need more than one timeout for the first answer of a restarted store.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(failFast) {
		n, err := st.readObject(up, b, 11<<20+5)
		if err == nil && bytes.Equal(b[:n], data[11<<20+5:11<<20+1005]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %d, %v", n, err)
		}
	}
}

func TestPreflight(t *testing.T) {
	srv := s3test.Start(t)
	setEnv(t, srv.Env())
	open := func(c Config) error {
		c.Timeout = 2 * time.Second
		c.Logger = quietLogger()
		st, err := Open(context.Background(), c)
		if err == nil {
			st.Close()
		}
		return err
	}
	if err := open(Config{Bucket: srv.Bucket, Endpoint: srv.Endpoint}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		env  map[string]string
		want string
	}{
		{"missing bucket", Config{Bucket: "nosuchbucket", Endpoint: srv.Endpoint}, nil, "bucket nosuchbucket does not exist"},
		{"wrong secret", Config{Bucket: srv.Bucket, Endpoint: srv.Endpoint}, map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong"}, "access denied"},
		{"unknown key", Config{Bucket: srv.Bucket, Endpoint: srv.Endpoint}, map[string]string{"AWS_ACCESS_KEY_ID": "nobody"}, "access denied"},
		{"unreachable", Config{Bucket: srv.Bucket, Endpoint: "http://127.0.0.1:1"}, nil, "cannot reach s3://segfs-test at http://127.0.0.1:1"},
		{"no credentials", Config{Bucket: srv.Bucket, Endpoint: srv.Endpoint}, map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "no AWS credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := open(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q; want one line with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), srv.SecretKey) {
				t.Fatalf("error %q shows the secret", err)
			}
		})
	}
}

func TestAbortUploads(t *testing.T) {
	srv, st := startStore(t, nil)
	c := srv.Client()
	for _, key := range []string{st.Key("t", 0, 0), st.Key("t", 0, 100), st.Key("t", 1, 0)} {
		if _, err := c.CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := st.AbortUploads(context.Background(), "t", 0)
	if err != nil || n != 2 {
		t.Fatalf("aborted %d, %v; want the 2 of partition 0", n, err)
	}
	out, err := c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(srv.Bucket)})
	if err != nil || len(out.Uploads) != 1 || aws.ToString(out.Uploads[0].Key) != st.Key("t", 1, 0) {
		t.Fatalf("uploads left: %v, %v; want only partition 1's", out, err)
	}
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string][2]string{
		"s3://bucket":              {"bucket", ""},
		"s3://bucket/":             {"bucket", ""},
		"s3://bucket/a/b/":         {"bucket", "a/b"},
		"s3://my-bucket.x/segfs-1": {"my-bucket.x", "segfs-1"},
	} {
		b, p, err := ParseURL(in)
		if err != nil || b != want[0] || p != want[1] {
			t.Errorf("ParseURL(%q) = %q, %q, %v", in, b, p, err)
		}
	}
	for _, bad := range []string{"bucket/x", "http://bucket/x", "s3://", "s3://ab", "s3://b/x//y", "s3://bkt/a/../b", "s3://u:p@bkt/x"} {
		if _, _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}

var _ = errors.New
