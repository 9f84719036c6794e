package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// smallConfig is a quick raw workload: more consumers than producers, so a partition has two readers.
func smallConfig(t *testing.T) Config {
	cfg := Defaults()
	cfg.Producers, cfg.Consumers = 2, 3
	cfg.MessageSize, cfg.Batch = 200, 50
	cfg.Duration, cfg.Warmup = time.Second, 100*time.Millisecond
	cfg.Modes = []Mode{{Name: "raw", Kind: KindRaw}}
	cfg.DataDir = t.TempDir()
	return cfg
}

func TestRawRunReadsExactlyWhatWasWritten(t *testing.T) {
	cfg := smallConfig(t)
	var progress bytes.Buffer
	cfg.Progress = &progress
	rep, err := Run(context.Background(), cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results", len(rep.Results))
	}
	r := rep.Results[0]
	v := r.Verification
	if v == nil || !v.Exact || v.Bytes == 0 || v.Bytes != v.ExpectedBytes || v.Bytes != v.Messages*200 {
		t.Fatalf("verification %+v", v)
	}
	if r.Producer.Bytes == 0 || r.ProducerLatency == nil || r.ConsumerLatency == nil || r.EndToEnd == nil {
		t.Fatalf("missing measurements: %+v", r)
	}
	if r.ProducerLatency.Count != r.Producer.Bytes/int64(cfg.BatchBytes()) {
		t.Errorf("%d producer latencies for %d batches in the window", r.ProducerLatency.Count, r.Producer.Bytes/int64(cfg.BatchBytes()))
	}
	// A bytes.Buffer is no terminal: progress comes as complete lines, none rewritten with \r.
	if out := progress.String(); strings.Contains(out, "\r") || !strings.HasSuffix(out, "\n") ||
		!strings.HasPrefix(out, "raw ") || !strings.Contains(out, "\nraw             done") {
		t.Errorf("progress lines: %q", out)
	}
	entries, _ := os.ReadDir(cfg.DataDir)
	if len(entries) != 0 {
		t.Errorf("temp data left behind: %v", entries)
	}

	dir := t.TempDir()
	if err := WriteJSON(filepath.Join(dir, "r.json"), rep); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "r.json"))
	var doc struct {
		Config struct {
			Producers int     `json:"producers"`
			DurationS float64 `json:"duration_s"`
		} `json:"config"`
		Machine struct {
			Cores  int    `json:"cores"`
			FSType string `json:"data_fs_type"`
		} `json:"machine"`
		Results []ModeResult `json:"results"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Config.Producers != 2 || doc.Config.DurationS != 1 || doc.Machine.Cores < 1 || doc.Machine.FSType == "" {
		t.Errorf("config/machine in JSON: %+v %+v", doc.Config, doc.Machine)
	}
	if len(doc.Results) != 1 || doc.Results[0].Verification.Bytes != v.Bytes || doc.Results[0].ProducerLatency.P50 <= 0 {
		t.Errorf("results in JSON: %+v", doc.Results)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, rep); err != nil || !strings.HasPrefix(table.String(), "| Metric | raw |\n") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
	if err := WritePlot(filepath.Join(dir, "p.svg"), rep); err != nil {
		t.Error(err)
	}
}

// faultFile is a fault-injection wrapper around a consumer's open segment: fault edits what one read()
// returns, given the file offset of its first byte.
type faultFile struct {
	readFile
	pos   int64
	fault func(p []byte, n int, pos int64) int
}

func (f *faultFile) Read(p []byte) (int, error) {
	n, err := f.readFile.Read(p)
	n = f.fault(p, n, f.pos)
	f.pos += int64(n)
	if n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// runFaulty runs the raw workload with every consumer's reads passed through fault.
func runFaulty(t *testing.T, fault func(p []byte, n int, pos int64) int) error {
	cfg := smallConfig(t)
	cfg.Duration, cfg.Warmup = 300*time.Millisecond, 0
	topic := filepath.Join(cfg.DataDir, "bench")
	if err := prepareTopic(topic, cfg.Producers, true); err != nil {
		t.Fatal(err)
	}
	w := newWorkload(&cfg, topic, nil)
	w.stall = 300 * time.Millisecond
	w.openRead = func(path string) (readFile, error) {
		f, err := openOS(path)
		if err != nil {
			return nil, err
		}
		return &faultFile{readFile: f, fault: fault}, nil
	}
	_, err := w.run(context.Background())
	return err
}

func TestRawRunFailsOnBadBytes(t *testing.T) {
	const at = 30_000 // inside the third batch, at the start of message 150
	hit := func(n int, pos int64) bool { return pos <= at && at < pos+int64(n) }
	hitPayload := func(n int, pos int64) bool { return pos <= at+50 && at+50 < pos+int64(n) }
	cases := []struct {
		name  string
		fault func(p []byte, n int, pos int64) int
		want  string
	}{
		{"dropped bytes", func(p []byte, n int, pos int64) int {
			if !hitPayload(n, pos) {
				return n
			}
			i := int(at + 50 - pos)
			k := min(10, n-i)
			copy(p[i:], p[i+k:n])
			return n - k
		}, "corrupted"},
		{"dropped message", func(p []byte, n int, pos int64) int {
			if !hit(n, pos) || n-int(at-pos) < 400 {
				return n
			}
			i := int(at - pos)
			copy(p[i:], p[i+200:n]) // at is message-aligned: exactly one message goes missing
			return n - 200
		}, "1 messages lost"},
		{"flipped bit", func(p []byte, n int, pos int64) int {
			if hitPayload(n, pos) {
				p[at+50-pos] ^= 0x10
			}
			return n
		}, "message 150 corrupted"},
		{"shifted stream", func(p []byte, n int, pos int64) int {
			if !hit(n, pos) {
				return n
			}
			i := int(at - pos)
			k := min(3, n-i)
			copy(p[i:], p[i+k:n])
			return n - k
		}, "no message header"},
		{"bytes never visible", func(p []byte, n int, pos int64) int {
			return int(max(min(int64(n), at-pos), 0))
		}, "bytes lost"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := runFaulty(t, tc.fault)
			var ve *VerifyError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a VerifyError saying %q", err, tc.want)
			}
		})
	}
}
