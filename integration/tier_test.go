package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"segfs/internal/s3test"
)

// startTier runs versitygw with the AWS credentials in the environment, where the daemon's standard
// credential chain finds them, and returns the -o options of a mount on it.
func startTier(t *testing.T, prefix, extra string) (*s3test.Server, string) {
	t.Helper()
	srv := s3test.Start(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	opts := fmt.Sprintf("tier=s3://%s/%s,tier_endpoint=%s,tier_timeout=2s,segment_size=256KiB", srv.Bucket, prefix, srv.Endpoint)
	if extra != "" {
		opts += "," + extra
	}
	return srv, opts
}

// appendData appends n random bytes to MNT/T/P/current in 64 KiB writes and closes (syncing it).
func appendData(t *testing.T, current string, n int, seed uint64) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	data := make([]byte, n)
	for i := range data {
		data[i] = 'a' + byte(r.IntN(26))
		if i%100 == 99 {
			data[i] = '\n'
		}
	}
	f, err := os.OpenFile(current, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < n; off += 64 << 10 {
		if _, err := f.Write(data[off:min(n, off+64<<10)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}

// localFiles lists the segment files left in a partition's backing directory.
func localFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".log") {
			out[de.Name()] = true
		}
	}
	return out
}

// listing is `ls` of a partition: name to size, current included.
func listing(t *testing.T, dir string) (names []string, sizes map[string]int64) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sizes = map[string]int64{}
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, de.Name())
		sizes[de.Name()] = fi.Size()
	}
	sort.Strings(names)
	return names, sizes
}

// uploaded reports whether the bucket holds every sealed segment ls shows in part, with its size,
// under key prefix pre; exact also wants nothing else there.
func uploaded(t *testing.T, srv *s3test.Server, part, pre string, exact bool) bool {
	names, sizes := listing(t, part)
	keys := bucketKeys(t, srv)
	if exact && len(keys) != len(names)-1 {
		return false
	}
	for _, n := range names {
		if n != "current" && keys[pre+n] != sizes[n] {
			return false
		}
	}
	return true
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func bucketKeys(t *testing.T, srv *s3test.Server) map[string]int64 {
	t.Helper()
	keys, err := srv.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestTierEvictAndRead: segments upload and leave the local disk, and every program that reads a
// partition reads them back byte for byte: ls -l, cat, grep, tail -c, rsync, .stream and segfs tail.
// With the store stopped, appends go on and a read of an evicted segment fails with EIO within the
// timeout; once the store is back, uploads resume without a remount.
func TestTierEvictAndRead(t *testing.T) {
	srv, opts := startTier(t, "it", "local_retention_bytes=512KiB")
	data, mnt := newDirs(t)
	m := mountFS(t, data, mnt, opts)
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	backing := filepath.Join(data, "T", "0")
	want := appendData(t, filepath.Join(part, "current"), 3<<20+777, 1)

	// Wait for the uploads and evictions: the local disk keeps about 512 KiB of sealed segments.
	waitUntil(t, "uploads and evictions", 30*time.Second, func() bool {
		names, _ := listing(t, part)
		return uploaded(t, srv, part, "it/T/0/", false) && len(names)-len(localFiles(t, backing)) >= 8
	})
	names, sizes := listing(t, part)
	keys := bucketKeys(t, srv)
	var total int64
	var all []byte
	for _, n := range names {
		if n == "current" {
			continue
		}
		if keys["it/T/0/"+n] != sizes[n] {
			t.Errorf("%s: %d bytes in ls -l, %d in the bucket", n, sizes[n], keys["it/T/0/"+n])
		}
		b, err := os.ReadFile(filepath.Join(part, n))
		if err != nil {
			t.Fatalf("read %s: %v\n%s", n, err, m.Log())
		}
		all = append(all, b...)
		total += sizes[n]
	}
	cur, err := os.ReadFile(filepath.Join(part, "current"))
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, cur...)
	if !bytes.Equal(all, want) || total+sizes["current"] != int64(len(want)) {
		t.Fatalf("ls -l sums to %d, the segments read %d bytes, want %d equal bytes (first difference at %d)",
			total+sizes["current"], len(all), len(want), firstDiff(all, want))
	}
	first := names[0] // evicted: the oldest segment

	// Real programs on an evicted segment and on the whole partition.
	if res := runCmd(t, 30*time.Second, nil, "cat", filepath.Join(part, first)); res.code != 0 || res.stdout != string(want[:sizes[first]]) {
		t.Fatalf("cat %s: %v", first, res)
	}
	line := string(want[200:299])
	if res := runCmd(t, 30*time.Second, nil, "grep", "-c", "-F", line, filepath.Join(part, first)); res.code != 0 || strings.TrimSpace(res.stdout) != "1" {
		t.Fatalf("grep in an evicted segment: %v", res)
	}
	if res := runCmd(t, 30*time.Second, nil, "tail", "-c", "1000", filepath.Join(part, names[1])); res.code != 0 ||
		res.stdout != string(want[sizes[first]+sizes[names[1]]-1000:sizes[first]+sizes[names[1]]]) {
		t.Fatalf("tail -c 1000 of an evicted segment: %v", res)
	}
	copyDir := t.TempDir()
	if res := runCmd(t, 60*time.Second, nil, "rsync", "-a", part+"/", copyDir+"/"); res.code != 0 {
		t.Fatalf("rsync: %v", res)
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(copyDir, n))
		if err != nil || int64(len(b)) != sizes[n] {
			t.Fatalf("rsync copy of %s: %d bytes, %v", n, len(b), err)
		}
	}
	stream, err := os.ReadFile(filepath.Join(part, ".stream"))
	if err != nil || !bytes.Equal(stream, want) {
		t.Fatalf(".stream: %d bytes (%v), want %d equal bytes", len(stream), err, len(want))
	}
	fl := startFollower(t, binaries.segfs, "tail", "--from-start", part)
	if got := fl.waitFor(t, len(want)); !bytes.Equal(got[:min(len(got), len(want))], want) {
		t.Fatalf("segfs tail --from-start: %d bytes, first difference at %d", len(got), firstDiff(got, want))
	}
	_ = fl.cmd.Process.Kill()
	_ = fl.cmd.Wait()

	// A remount starts with cold caches: the page cache is the kernel's per mount, the disk cache goes.
	m.Unmount()
	if err := os.RemoveAll(filepath.Join(data, ".tier-cache")); err != nil {
		t.Fatal(err)
	}
	m = mountFS(t, data, mnt, opts)

	// The store goes away: appends go on, a never-read evicted segment fails with EIO in bounded time.
	srv.Stop()
	more := appendData(t, filepath.Join(part, "current"), 1<<20, 2)
	var cold string
	for _, n := range names {
		if n != "current" && n != first && n != names[1] && !localFiles(t, backing)[n] {
			cold = n
		}
	}
	start := time.Now()
	res := runCmd(t, 60*time.Second, nil, "dd", "if="+filepath.Join(part, cold), "of=/dev/null", "bs=4k", "skip=10", "count=1")
	took := time.Since(start)
	if res.code == 0 || !strings.Contains(res.stderr, "Input/output error") {
		t.Fatalf("read of evicted %s with the store down: %v; want EIO", cold, res)
	}
	if took > 4*time.Second {
		t.Fatalf("read of %s with the store down failed after %v; tier_timeout is 2s", cold, took)
	}
	t.Logf("read with the store down failed after %v", took.Round(time.Millisecond))
	if !strings.Contains(m.Log(), "failed") {
		t.Errorf("the EIO was not logged")
	}
	srv.Restart()
	waitUntil(t, "reads after the store came back", 10*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(part, cold))
		return err == nil && bytes.Equal(b, want[firstOffset(names, sizes, cold):][:sizes[cold]])
	})
	// Segments sealed while the store was down upload now, without a remount.
	waitUntil(t, "uploads after the store came back", 30*time.Second, func() bool {
		return uploaded(t, srv, part, "it/T/0/", false)
	})
	if stream, err := os.ReadFile(filepath.Join(part, ".stream")); err != nil || !bytes.Equal(stream, append(want, more...)) {
		t.Fatalf(".stream after the outage: %d bytes, %v", len(stream), err)
	}
	m.Unmount()
}

// TestTierReadOnlyElsewhere: `segfs mount --data EMPTY_DIR -o tier=...,ro` lists and reads the whole
// sealed log, as another machine would, while the writer's mount is still up.
func TestTierReadOnlyElsewhere(t *testing.T) {
	srv, opts := startTier(t, "ro", "")
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, opts)
	mkdir(t, filepath.Join(mnt, "T"))
	want := appendData(t, filepath.Join(mnt, "T", "0", "current"), 2<<20, 3)
	part := filepath.Join(mnt, "T", "0")
	waitUntil(t, "uploads", 30*time.Second, func() bool {
		names, _ := listing(t, part)
		return uploaded(t, srv, part, "ro/T/0/", false) && len(names) > 5
	})
	names, sizes := listing(t, part)
	data2, mnt2 := newDirs(t)
	m2 := mountFS(t, data2, mnt2, opts+",ro")
	part2 := filepath.Join(mnt2, "T", "0")
	names2, sizes2 := listing(t, part2)
	var sealed int64
	for _, n := range names[:len(names)-1] {
		if sizes2[n] != sizes[n] {
			t.Errorf("%s: %d bytes on the second machine, %d on the first", n, sizes2[n], sizes[n])
		}
		sealed += sizes[n]
	}
	if len(names2) != len(names) {
		t.Errorf("second machine lists %v, first %v", names2, names)
	}
	stream, err := os.ReadFile(filepath.Join(part2, ".stream"))
	if err != nil || !bytes.Equal(stream, want[:sealed]) {
		t.Fatalf("second machine's .stream: %d bytes (%v), want the %d sealed ones", len(stream), err, sealed)
	}
	if err := os.WriteFile(filepath.Join(part2, "current"), []byte("x"), 0); err == nil {
		t.Fatal("a write through the ro mount succeeded")
	}
	m2.Unmount()
}

// TestTierRetention: retention of the whole log deletes objects in the store, not just local files.
func TestTierRetention(t *testing.T) {
	srv, opts := startTier(t, "ret", "local_retention_bytes=256KiB,retention_bytes=1MiB")
	data, mnt := newDirs(t)
	mountFS(t, data, mnt, opts)
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	appendData(t, filepath.Join(part, "current"), 4<<20, 4)
	waitUntil(t, "retention in the store", 30*time.Second, func() bool {
		names, _ := listing(t, part)
		return names[0] != "00000000000000000000.log" && uploaded(t, srv, part, "ret/T/0/", true)
	})
	if _, ok := bucketKeys(t, srv)["ret/T/0/00000000000000000000.log"]; ok {
		t.Fatal("the first segment is still in the store after retention")
	}
}

// TestTierKill9: kill -9 of the daemon while segments are uploading and being evicted loses nothing:
// the next mount reads every byte synced before the kill, and once it settles, the bucket holds
// exactly the sealed segments and no unfinished multipart upload.
func TestTierKill9(t *testing.T) {
	srv, opts := startTier(t, "k9", "local_retention_bytes=256KiB")
	data, mnt := newDirs(t)
	var want []byte
	for round := 0; round < 3; round++ {
		m := mountFS(t, data, mnt, opts)
		if round == 0 {
			mkdir(t, filepath.Join(mnt, "T"))
		}
		part := filepath.Join(mnt, "T", "0")
		want = append(want, appendData(t, filepath.Join(part, "current"), 2<<20+round*1000, uint64(10+round))...)
		// Uploads and evictions start the moment segments seal; kill at a different point of them
		// each round.
		time.Sleep(time.Duration(30+round*60) * time.Millisecond)
		man, _ := os.ReadFile(filepath.Join(data, "T", "0", ".tier"))
		t.Logf("round %d: killed with the manifest at %s", round, states(man))
		m.Kill9()
	}
	m := mountFS(t, data, mnt, opts)
	part := filepath.Join(mnt, "T", "0")
	stream, err := os.ReadFile(filepath.Join(part, ".stream"))
	if err != nil || !bytes.Equal(stream, want) {
		t.Fatalf("after kill -9: .stream %d bytes (%v), want %d equal bytes (first difference at %d)\n%s",
			len(stream), err, len(want), firstDiff(stream, want), m.Log())
	}
	waitUntil(t, "the bucket to match the sealed segments", 30*time.Second, func() bool {
		return uploaded(t, srv, part, "k9/T/0/", true)
	})
	ups, err := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(srv.Bucket)})
	if err != nil || len(ups.Uploads) != 0 {
		t.Fatalf("multipart uploads left: %v, %v", ups, err)
	}
	sum := sha256.Sum256(stream)
	t.Logf("%d bytes intact after 3 kills, sha256 %x", len(stream), sum[:6])
	m.Unmount()
}

// states summarizes a manifest's segment states for the log.
func states(man []byte) string {
	out := map[string]int{}
	for _, s := range []string{"uploading", "verified", "evicted", "deleting"} {
		out[s] = bytes.Count(man, []byte(`"state":"`+s+`"`))
	}
	return strconv.Quote(fmt.Sprint(out))
}

// TestTierBadConfigFailsMount: an unreachable endpoint, a missing bucket and denied credentials each
// fail `segfs mount` in one line, before anything is mounted, and the secret shows nowhere.
func TestTierBadConfigFailsMount(t *testing.T) {
	srv, _ := startTier(t, "bad", "")
	for _, tc := range []struct{ name, opts, env, want string }{
		{"unreachable", "tier=s3://segfs-test/x,tier_endpoint=http://127.0.0.1:1,tier_timeout=2s", "", "cannot reach"},
		{"missing bucket", "tier=s3://nosuchbucket/x,tier_endpoint=" + srv.Endpoint, "", "bucket nosuchbucket does not exist"},
		{"denied", "tier=s3://segfs-test/x,tier_endpoint=" + srv.Endpoint, "AWS_SECRET_ACCESS_KEY=wrong-secret", "access denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, mnt := newDirs(t)
			var env []string
			if tc.env != "" {
				env = append(env, tc.env)
			}
			res := runCmd(t, 60*time.Second, env, binaries.segfs, "mount", "--data", data, "-o", tc.opts, mnt)
			if res.code == 0 {
				unmountLeftovers(t, mnt)
				t.Fatalf("mount succeeded")
			}
			msg := strings.TrimSpace(res.stderr)
			if !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") > 0 {
				t.Fatalf("stderr %q; want one line containing %q", msg, tc.want)
			}
			if strings.Contains(msg, srv.SecretKey) || strings.Contains(msg, "wrong-secret") {
				t.Fatalf("stderr shows the secret: %q", msg)
			}
			if hasFuseEntry(mnt) {
				t.Fatal("something is mounted after the failure")
			}
		})
	}
}

// firstOffset is the partition offset of segment name in an ls of the partition.
func firstOffset(names []string, sizes map[string]int64, name string) int64 {
	var off int64
	for _, n := range names {
		if n == name {
			return off
		}
		off += sizes[n]
	}
	return -1
}

// TestTierENOSPC: the ENOSPC policy. With the store down nothing is evicted: a small disk fills and
// the append that does not fit fails with ENOSPC, every acknowledged byte kept. Once the store is
// back, uploads resume and free space falls below two segments, verified segments leave the disk
// early (no local retention is set), and appends succeed again without a remount.
func TestTierENOSPC(t *testing.T) {
	requireRoot(t)
	srv, opts := startTier(t, "full", "tier_cache=256KiB")
	data, mnt := smallExt4(t, "8M"), t.TempDir()
	m := mountFS(t, data, mnt, opts)
	mkdir(t, filepath.Join(mnt, "T"))
	part := filepath.Join(mnt, "T", "0")
	cur := filepath.Join(part, "current")
	srv.Stop()
	in := make([]byte, 16<<20)
	for i := range in {
		in[i] = 'a' + byte(i%23)
	}
	input := writeTemp(t, "input", in)
	copied := fillWithDD(t, input, cur)
	want := in[:copied]
	if got, err := os.ReadFile(filepath.Join(part, ".stream")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("full disk, store down: .stream %d bytes (%v), want the %d acknowledged", len(got), err, len(want))
	}
	srv.Restart()
	// A producer that meets ENOSPC waits and retries, as it would for any full disk.
	more := in[copied : copied+4<<20]
	f, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for off := 0; off < len(more); {
		n, err := f.Write(more[off:min(len(more), off+64<<10)])
		off += n
		if err != nil {
			if !strings.Contains(err.Error(), "no space left") || time.Now().After(deadline) {
				t.Fatalf("append after the store came back: %v\n%s", err, m.grepLog("tier"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want = append(want, more...)
	if got, err := os.ReadFile(filepath.Join(part, ".stream")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after the store came back: .stream %d bytes (%v), want %d (first difference at %d)", len(got), err, len(want), firstDiff(got, want))
	}
	if !strings.Contains(m.Log(), "evicted local copy") {
		t.Fatal("nothing was evicted under disk pressure")
	}
	m.Unmount()
}

// grepLog is the daemon's log lines that contain s.
func (m *fsMount) grepLog(s string) string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
