package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Throughput is bytes moved during the measured window. MB is 10^6 bytes, as in the seed's table.
type Throughput struct {
	Bytes int64   `json:"bytes"`
	MBps  float64 `json:"mb_per_s"`
}

// Verification is what the consumers proved: every byte they read was the producers' byte at that offset,
// and they read all of them.
type Verification struct {
	Exact    bool  `json:"exact"`
	Bytes    int64 `json:"bytes"`    // read and verified, summed over consumers
	Messages int64 `json:"messages"` // verified, summed over consumers
	// ExpectedBytes is what each consumer's producer wrote over the whole run, summed over consumers:
	// equal to Bytes, or the run would have failed.
	ExpectedBytes int64 `json:"expected_bytes"`
}

// ModeResult is one column. Nil fields are measurements the column does not have (fio has no consumers).
type ModeResult struct {
	Mode          Mode        `json:"mode"`
	MountOptions  string      `json:"mount_options,omitempty"`
	WindowSeconds float64     `json:"window_s"`
	Producer      *Throughput `json:"producer"`
	Consumer      *Throughput `json:"consumer"`
	AggregateMBps *float64    `json:"aggregate_mb_per_s"`
	// ProducerLatency is from the scheduled send when the run has a rate (corrected for coordinated
	// omission), from the actual send otherwise; ProducerLatencyUncorrected is the latter of a rate run.
	ProducerLatency            *Latency `json:"producer_latency"`
	ProducerLatencyUncorrected *Latency `json:"producer_latency_uncorrected,omitempty"`
	// SendLag (open loop) is how late the producers started writes that fell due while they were idle:
	// the load generator's own error, part of the corrected latency.
	SendLag         *Latency      `json:"send_lag,omitempty"`
	ConsumerLatency *Latency      `json:"consumer_latency"`
	EndToEnd        *Latency      `json:"end_to_end_latency"`
	Verification    *Verification `json:"verification,omitempty"`
	EmptyPolls      int64         `json:"empty_polls,omitempty"` // consumer read()s at EOF, not in consumer latency
	Fio             *FioInfo      `json:"fio,omitempty"`
	// Daemon is what the column's segfs daemon did during the workload (CPU, FUSE requests, disk reads
	// and writes): the first evidence when a column is slower than expected.
	Daemon *ProcDelta `json:"daemon,omitempty"`
	// Tier is the tiered column's object-store side: reads of evicted segments during the run, and
	// cold reads through the mount next to plain SDK downloads of the same objects.
	Tier *TierResult `json:"tier,omitempty"`
}

// Skipped is a column that was asked for but could not be measured, with the reason.
type Skipped struct {
	Mode   string `json:"mode"`
	Reason string `json:"reason"`
}

// Report is the whole run, as written by --json.
type Report struct {
	Tool      string       `json:"tool"`
	Version   string       `json:"segfs_version"`
	StartedAt time.Time    `json:"started_at"`
	Command   []string     `json:"command,omitempty"`
	Machine   Machine      `json:"machine"`
	Config    ReportConfig `json:"config"`
	Results   []ModeResult `json:"results"`
	Skipped   []Skipped    `json:"skipped,omitempty"`
}

// ReportConfig is Config with its durations in seconds and --fsync spelled as given.
type ReportConfig struct {
	Config
	DurationS  float64 `json:"duration_s"`
	WarmupS    float64 `json:"warmup_s"`
	Fsync      string  `json:"fsync"`
	BatchBytes int     `json:"batch_bytes"`
}

func reportConfig(c Config) ReportConfig {
	fsync := "never"
	switch {
	case c.FsyncEvery == 1:
		fsync = "every"
	case c.FsyncEvery > 1:
		fsync = fmt.Sprint(c.FsyncEvery)
	}
	return ReportConfig{Config: c, DurationS: c.Duration.Seconds(), WarmupS: c.Warmup.Seconds(), Fsync: fsync,
		BatchBytes: c.BatchBytes()}
}

// WriteJSON writes the report to path, indented for people and diff.
func WriteJSON(path string, r *Report) error { return writeJSONFile(path, r) }

// writeJSONFile writes v to path as indented JSON, the form every bench report is saved in.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// WriteTable writes the seed's table: metrics as rows in groups, modes as columns, throughput relative to
// the first column.
func WriteTable(w io.Writer, r *Report) error {
	var b strings.Builder
	row := func(cells ...string) { b.WriteString("| " + strings.Join(cells, " | ") + " |\n") }
	head := []string{"Metric"}
	sep := []string{"---"}
	for _, res := range r.Results {
		head = append(head, res.Mode.Name)
		sep = append(sep, "---:")
	}
	row(head...)
	row(sep...)
	group := func(name string) {
		cells := []string{"**" + name + "**"}
		for range r.Results {
			cells = append(cells, "")
		}
		row(cells...)
	}
	metric := func(name string, cell func(int, ModeResult) string) {
		cells := []string{name}
		for i, res := range r.Results {
			cells = append(cells, cell(i, res))
		}
		row(cells...)
	}
	throughput := func(name string, get func(ModeResult) *float64) {
		var first *float64
		if len(r.Results) > 0 {
			first = get(r.Results[0])
		}
		metric(name, func(i int, res ModeResult) string {
			v := get(res)
			if v == nil {
				return "–"
			}
			s := formatMBps(*v)
			if i > 0 && first != nil && *first > 0 {
				s += fmt.Sprintf(" (%+.0f%%)", 100*(*v / *first - 1))
			}
			return s
		})
	}
	group("Throughput")
	throughput("Producer", func(m ModeResult) *float64 { return mbpsOf(m.Producer) })
	throughput("Consumer", func(m ModeResult) *float64 { return mbpsOf(m.Consumer) })
	throughput("Aggregate", func(m ModeResult) *float64 { return m.AggregateMBps })
	latency := func(title string, get func(ModeResult) *Latency, rows []string) {
		group(title)
		for _, name := range rows {
			metric(name, func(_ int, res ModeResult) string {
				l := get(res)
				if l == nil {
					return "–"
				}
				return formatMs(l.pick(name))
			})
		}
	}
	all := []string{"p50", "p90", "p99", "p999", "p9999", "max", "std dev"}
	if r.Config.Rate > 0 {
		latency("Producer latency, from the scheduled send (corrected)", func(m ModeResult) *Latency { return m.ProducerLatency }, all)
		latency("Producer latency, from the actual send (uncorrected)", func(m ModeResult) *Latency { return m.ProducerLatencyUncorrected }, all)
		latency("Send lag (the load generator's own lateness)", func(m ModeResult) *Latency { return m.SendLag }, []string{"p50", "p99", "max"})
	} else {
		latency("Producer latency", func(m ModeResult) *Latency { return m.ProducerLatency }, all)
	}
	latency("Consumer latency", func(m ModeResult) *Latency { return m.ConsumerLatency }, all)
	latency("End-to-end latency", func(m ModeResult) *Latency { return m.EndToEnd }, []string{"p50", "p99", "p9999"})
	writeTier(&b, r)
	_, err := io.WriteString(w, b.String())
	return err
}

// pick returns the row named as in the seed's table.
func (l *Latency) pick(row string) float64 {
	return map[string]float64{"p50": l.P50, "p90": l.P90, "p99": l.P99, "p999": l.P999, "p9999": l.P9999,
		"max": l.Max, "std dev": l.StdDev}[row]
}

func mbpsOf(t *Throughput) *float64 {
	if t == nil {
		return nil
	}
	return &t.MBps
}

func formatMBps(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f MB/s", v)
	}
	return thousands(fmt.Sprintf("%.0f", v)) + " MB/s"
}

// formatMs prints milliseconds as the seed does ("1,668.90 ms"), with a third decimal below 1 ms so
// sub-millisecond columns (raw, fio) do not all read 0.00.
func formatMs(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%.3f ms", v)
	}
	return thousands(fmt.Sprintf("%.2f", v)) + " ms"
}

// thousands inserts commas into the integer part of a formatted non-negative number.
func thousands(s string) string {
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return b.String()
}
