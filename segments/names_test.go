package segments

import (
	"errors"
	"strings"
	"testing"

	"segfs/directio"
)

func TestParsePersist(t *testing.T) {
	for _, p := range []Persist{Inline, Deferred} {
		got, err := ParsePersist(p.String())
		if err != nil || got != p {
			t.Fatalf("ParsePersist(%q) = %v, %v", p.String(), got, err)
		}
	}
	if _, err := ParsePersist("lazy"); err == nil || !strings.Contains(err.Error(), "lazy") {
		t.Fatalf("ParsePersist(lazy) = %v", err)
	}
}

func TestValidTopicName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "orders": true, "Or.d_e-rs9": true, "0": true, strings.Repeat("x", 255): true,
		"": false, ".hidden": false, "-x": false, "_x": false, "a/b": false, "a b": false, "é": false,
		strings.Repeat("x", 256): false, ".lock": false, "..": false,
	} {
		if got := ValidTopicName(name); got != want {
			t.Errorf("ValidTopicName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParsePartitionName(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "7": 7, "2147483647": 2147483647} {
		if got, ok := ParsePartitionName(s); !ok || got != want {
			t.Errorf("ParsePartitionName(%q) = %d, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "01", "-1", "+1", "1a", "2147483648", "99999999999", " 1"} {
		if _, ok := ParsePartitionName(s); ok {
			t.Errorf("ParsePartitionName(%q) accepted", s)
		}
	}
}

func TestSegmentName(t *testing.T) {
	if got := SegmentName(4096); got != "00000000000000004096.log" {
		t.Fatalf("SegmentName(4096) = %q", got)
	}
	if base, ok := ParseSegmentName("00000000000000004096.log"); !ok || base != 4096 {
		t.Fatalf("ParseSegmentName = %d, %v", base, ok)
	}
	for _, s := range []string{"4096.log", "0000000000000000409a.log", "00000000000000004096.txt", ".commit"} {
		if _, ok := ParseSegmentName(s); ok {
			t.Errorf("ParseSegmentName(%q) accepted", s)
		}
	}
}

// TestLocked (issue 3.5): a second Open of the same data dir fails at once with ErrLocked and a
// message naming the directory; after Close it opens again.
func TestLocked(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, cfg)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "another segfs") {
		t.Fatalf("second Open: %v; want ErrLocked naming %s and another segfs", err, dir)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	l2, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = l2.Close()
}

// TestTopicsAndPartitions covers the namespace API and its errors.
func TestTopicsAndPartitions(t *testing.T) {
	cfg := testConfig(mode{directio.DirectSync, Deferred})
	cfg.Partitions = 3
	dir := t.TempDir()
	l := openLog(t, dir, cfg)
	if _, err := l.CreateTopic("bad/name", 1); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("CreateTopic(bad/name) = %v", err)
	}
	tp, err := l.CreateTopic("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := tp.Partitions(); len(got) != 3 || got[2] != 2 {
		t.Fatalf("default partitions = %v", got)
	}
	if _, err := l.CreateTopic("t", 1); !errors.Is(err, ErrExist) {
		t.Fatalf("CreateTopic(existing) = %v", err)
	}
	if _, err := tp.CreatePartition(1); !errors.Is(err, ErrExist) {
		t.Fatalf("CreatePartition(existing) = %v", err)
	}
	if _, err := tp.CreatePartition(-1); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("CreatePartition(-1) = %v", err)
	}
	p7, err := tp.CreatePartition(7)
	if err != nil {
		t.Fatal(err)
	}
	if p7.Topic() != "t" || p7.ID() != 7 || p7.Active().Path != dir+"/t/7/00000000000000000000.log" {
		t.Fatalf("partition 7: %s %d %s", p7.Topic(), p7.ID(), p7.Active().Path)
	}
	if _, err := tp.Partition(5); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Partition(5) = %v", err)
	}
	if _, err := l.Topic("nope"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Topic(nope) = %v", err)
	}
	if _, err := l.CreateTopic("u", 1); err != nil {
		t.Fatal(err)
	}
	if got := l.Topics(); len(got) != 2 || got[0] != "t" || got[1] != "u" {
		t.Fatalf("Topics() = %v", got)
	}
	appendPattern(t, p7, 1, 5000)
	if err := tp.DeletePartition(7); err != nil {
		t.Fatal(err)
	}
	if _, err := p7.Append([]byte("x")); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Append on deleted partition = %v", err)
	}
	if _, err := p7.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrNotExist) {
		t.Fatalf("ReadAt on deleted partition = %v", err)
	}
	if err := tp.DeletePartition(7); !errors.Is(err, ErrNotExist) {
		t.Fatalf("second DeletePartition = %v", err)
	}
	p0, _ := tp.Partition(0)
	appendPattern(t, p0, 1, 5000)
	if err := l.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.CreatePartition(9); !errors.Is(err, ErrNotExist) {
		t.Fatalf("CreatePartition on deleted topic = %v", err)
	}
	if err := p0.Sync(); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Sync on deleted topic's partition = %v", err)
	}
	if got := l.Topics(); len(got) != 1 || got[0] != "u" {
		t.Fatalf("Topics() after delete = %v", got)
	}
	if n := flusherGoroutines(); n != 0 {
		t.Fatalf("%d flushers running after deletes", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateTopic("v", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("CreateTopic after Close = %v", err)
	}
	l2 := openLog(t, dir, cfg)
	if got := l2.Topics(); len(got) != 1 || got[0] != "u" {
		t.Fatalf("Topics() after reopen = %v", got)
	}
}
