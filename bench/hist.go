package bench

import (
	"math"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in nanoseconds from 1 ns to an hour with 3 significant digits: 0.1% resolution at
// every magnitude, which is what makes p99.99 of a 1 ms operation and of a 2 s stall equally trustworthy.
const (
	histMin    = 1
	histMax    = int64(3600e9)
	histDigits = 3
)

// newHist returns a latency histogram. Each goroutine records into its own and they are merged at the end,
// so recording takes no lock.
func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// record adds one latency, clamped into the trackable range so a pathological stall is counted, not dropped.
func record(h *hdrhistogram.Histogram, ns int64) {
	_ = h.RecordValue(min(max(ns, histMin), histMax)) // cannot fail once clamped
}

// Latency is a latency distribution as reported: milliseconds, HdrHistogram percentiles.
type Latency struct {
	Count  int64   `json:"count"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p99_9_ms"`
	P9999  float64 `json:"p99_99_ms"`
	Max    float64 `json:"max_ms"`
	Mean   float64 `json:"mean_ms"`
	StdDev float64 `json:"stddev_ms"`
	// Curve is the percentile curve the plot draws, in "nines" (x = -log10(1 - percentile/100)).
	Curve []CurvePoint `json:"curve,omitempty"`
}

// CurvePoint is one point of a percentile curve.
type CurvePoint struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

func nsToMs(ns float64) float64 { return ns / 1e6 }

// summarize reports h, or nil when nothing was recorded (a column without that measurement).
func summarize(h *hdrhistogram.Histogram) *Latency {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	q := func(p float64) float64 { return nsToMs(float64(h.ValueAtQuantile(p))) }
	return &Latency{
		Count: h.TotalCount(),
		P50:   q(50), P90: q(90), P99: q(99), P999: q(99.9), P9999: q(99.99),
		Max:    nsToMs(float64(h.Max())),
		Mean:   nsToMs(h.Mean()),
		StdDev: nsToMs(h.StdDev()),
		Curve:  curve(h),
	}
}

// curve samples h every 0.05 nines up to the resolution the sample count supports (log10(count) nines:
// beyond that every percentile is the max), plus the max itself as the last point.
func curve(h *hdrhistogram.Histogram) []CurvePoint {
	top := math.Log10(float64(h.TotalCount()))
	var pts []CurvePoint
	for x := 0.0; x < top; x += 0.05 {
		p := 100 * (1 - math.Pow(10, -x))
		pts = append(pts, CurvePoint{Percentile: p, Ms: nsToMs(float64(h.ValueAtQuantile(p)))})
	}
	return append(pts, CurvePoint{Percentile: 100 * (1 - math.Pow(10, -top)), Ms: nsToMs(float64(h.Max()))})
}

// nines maps a percentile to the plot's x axis: 90% → 1, 99% → 2, 99.9% → 3.
func nines(percentile float64) float64 {
	if percentile >= 100 {
		return math.Inf(1)
	}
	return -math.Log10(1 - percentile/100)
}
