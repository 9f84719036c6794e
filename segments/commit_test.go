package segments

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"segfs/directio"
)

func TestCommitRecordRoundTrip(t *testing.T) {
	r := commitRecord{Block: 4096, Seq: 42, Base: 1 << 40, Length: 12345, BlockCRC: 0xdeadbeef}
	b := make([]byte, commitSlotSize)
	r.encode(b)
	got, ok := decodeCommit(b)
	if !ok || got != r {
		t.Fatalf("decode = %+v, %v; want %+v", got, ok, r)
	}
	for i := 0; i < commitRecordLen; i++ {
		c := append([]byte(nil), b...)
		c[i] ^= 0x10
		if _, ok := decodeCommit(c); ok {
			t.Fatalf("record with byte %d flipped still decodes", i)
		}
	}
	if _, ok := decodeCommit(make([]byte, commitSlotSize)); ok {
		t.Fatal("zero slot decodes")
	}
}

// TestCommitTornSlot: a torn write of the newer slot leaves the older record current.
func TestCommitTornSlot(t *testing.T) {
	dir := t.TempDir()
	fs := newFS(directio.OS{}, 16)
	c, created, err := openCommit(fs, dir)
	if err != nil || !created {
		t.Fatalf("openCommit = %v, created %v", err, created)
	}
	for i := int64(1); i <= 3; i++ {
		if err := c.write(0, i*100, 512, uint32(i)); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.close()
	path := filepath.Join(dir, commitName)
	raw, _ := os.ReadFile(path)
	raw[commitSlotSize+20] ^= 0xff // seq 3 lives in slot 1
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	c, _, err = openCommit(fs, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if r, ok := c.latest(0); !ok || r.Seq != 2 || r.Length != 200 {
		t.Fatalf("latest after torn slot = %+v, %v; want seq 2", r, ok)
	}
	// The next record overwrites the torn slot, keeping seq 2 intact.
	if err := c.write(0, 400, 512, 4); err != nil || c.cur.Seq != 3 {
		t.Fatalf("write after torn slot: %v, seq %d", err, c.cur.Seq)
	}
}

// TestTrapSize is the recovery rule, case by case.
func TestTrapSize(t *testing.T) {
	rec := commitRecord{Block: 512, Length: 1000, BlockCRC: 77}
	crc := func(c uint32) func(off, n int64) (uint32, error) {
		return func(off, n int64) (uint32, error) {
			return map[int64]uint32{512: c, 1024: 99}[off], nil // the block [1024, 1536) checksums to 99
		}
	}
	for _, tc := range []struct {
		name string
		size int64
		recs []commitRecord
		crc  uint32
		want int64
	}{
		{"no record", 1024, nil, 77, 1024},
		{"padding never truncated", 1024, []commitRecord{rec}, 77, 1000},
		{"block overwritten by data", 1024, []commitRecord{rec}, 78, 1024},
		{"truncated", 1000, []commitRecord{rec}, 77, 1000},
		{"padded write never happened", 512, []commitRecord{rec}, 77, 512},
		{"more data after", 1536, []commitRecord{rec}, 77, 1536},
		// persist=sync leaves the file padded between appends: the next record may be current while
		// the file still ends in the previous record's padded block.
		{"next padded write never happened", 1024, []commitRecord{{Block: 512, Length: 1100, BlockCRC: 5}, rec}, 77, 1000},
		{"next padded write in the same block never happened", 1024, []commitRecord{{Block: 512, Length: 1010, BlockCRC: 5}, rec}, 77, 1000},
		{"next padded write happened", 1536, []commitRecord{{Block: 512, Length: 1100, BlockCRC: 99}, rec}, 77, 1100},
		{"exact per the current record", 1024, []commitRecord{{Block: 512, Length: 1024}, rec}, 77, 1024},
	} {
		got, err := recoveredSize(tc.size, tc.recs, crc(tc.crc))
		if err != nil || got != tc.want {
			t.Errorf("%s: recoveredSize = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

// TestCommitKeepsThePreviousRecord: recovery reads both slots, and the previous record survives a
// reopen and a failed write of the next one only where its slot was not touched.
func TestCommitKeepsThePreviousRecord(t *testing.T) {
	dir := t.TempDir()
	fs := newFS(directio.OS{}, 16)
	c, _, err := openCommit(fs, dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 3; i++ {
		if err := c.write(7, i*100, 512, uint32(i)); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.close()
	if c, _, err = openCommit(fs, dir); err != nil {
		t.Fatal(err)
	}
	defer c.close()
	recs := c.records(7)
	if len(recs) != 2 || recs[0].Length != 300 || recs[1].Length != 200 || len(c.records(8)) != 0 {
		t.Fatalf("records after reopen = %+v; want lengths 300 then 200, none for another base", recs)
	}
	if !c.stale(7, 512) || c.stale(7, 300) || c.stale(7, 1024) {
		t.Error("stale: a length where either record's padded block ends is at risk unless the current record is exact")
	}
}

// TestSettleStaleRecord: when appended zeros make the segment end exactly like the padded block of
// the current record, Sync writes a record of the exact length, so recovery cannot cut synced bytes;
// with the old record back (a crash before that write), recovery cuts back less than one block.
func TestSettleStaleRecord(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(mode{directio.Direct, Inline})
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := mustPartition(t, l, "z", 0)
	appendPattern(t, p, 4, 1000)
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	commitPath := filepath.Join(dir, "z", "0", commitName)
	oldRecord, _ := os.ReadFile(commitPath)
	padded := (1000 + testBlock(t) - 1) / testBlock(t) * testBlock(t)
	if _, err := p.Append(make([]byte, padded-1000)); err != nil { // [1000,padded): the padding, as data
		t.Fatal(err)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	if r, ok := p.w.commit.latest(0); !ok || r.Length != padded {
		t.Fatalf("record after syncing to the padded block's end: %+v", r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustPartition(t, l2, "z", 0).Size(); got != padded {
		t.Fatalf("recovered %d bytes, want the %d synced", got, padded)
	}
	_ = l2.Close()
	if err := os.WriteFile(commitPath, oldRecord, 0o644); err != nil {
		t.Fatal(err)
	}
	l3 := openLog(t, dir, cfg)
	if got := mustPartition(t, l3, "z", 0).Size(); got != 1000 {
		t.Fatalf("with the stale record recovered %d bytes, want 1000", got)
	}
}

// TestRecoverySweepsAndRejects: tombstones of interrupted deletes are removed, unknown entries are
// ignored, and overlapping segments (which no crash can produce) fail Open instead of being guessed at.
func TestRecoverySweepsAndRejects(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := mustPartition(t, l, "t", 0)
	appendPattern(t, p, 1, 100)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{".deleted-old-1/0", "t/.deleted-3-2"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, d, SegmentName(0)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.WriteFile(filepath.Join(dir, "README"), []byte("hi"), 0o644)
	_ = os.Mkdir(filepath.Join(dir, "t", "01"), 0o755)
	l, err = Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{".deleted-old-1", "t/.deleted-3-2"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Fatalf("tombstone %s survived Open: %v", d, err)
		}
	}
	if got := l.Topics(); len(got) != 1 {
		t.Fatalf("Topics() = %v", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A sealed segment reaching past the next one's base.
	if err := os.WriteFile(filepath.Join(dir, "t", "0", SegmentName(50)), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, cfg); err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("Open with overlapping segments = %v, want a corruption error", err)
	}
}
