package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// WriteLimitsJSON writes the report to path, indented for people and diff.
func WriteLimitsJSON(path string, r *LimitsReport) error { return writeJSONFile(path, r) }

// WriteLimitsTable writes one markdown row per check, then a note per target with the load average
// around it (a shared machine is the first suspect of a surprising ratio) and any skip or error.
func WriteLimitsTable(w io.Writer, r *LimitsReport) error {
	var b strings.Builder
	b.WriteString("| # | Check | Measured | Baseline | Ratio | Target | Result |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | --- |\n")
	for _, t := range r.Targets {
		for _, c := range t.Checks {
			measured, baseline, ratio, target := "–", "–", "–", "–"
			if (c.Status == StatusPass || c.Status == StatusMiss) && c.Baseline > 0 { // a count segfs failed at has none
				measured, baseline = formatValue(c.Measured, c.Unit), formatValue(c.Baseline, c.Unit)
				ratio = formatRatio(c.Ratio)
				target = map[string]string{">=": "≥", "<=": "≤"}[c.Op] + " " + formatRatio(c.Target)
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s |\n", t.ID, c.Name, measured, baseline, ratio, target, c.Status)
		}
	}
	b.WriteString("\n")
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "- %d. %s: %.1f s, load average %.2f → %.2f", t.ID, t.Title, t.Seconds, t.LoadAvgStart[0], t.LoadAvgEnd[0])
		for _, c := range t.Checks {
			for _, s := range []string{c.Reason, c.Note, spread(c)} {
				if s != "" {
					fmt.Fprintf(&b, "; %s: %s", c.Name, s)
				}
			}
		}
		b.WriteString("\n")
		for _, c := range t.Checks {
			for _, cmd := range c.Commands {
				fmt.Fprintf(&b, "  - `%s`\n", cmd)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// spread says how far apart the repetitions were: a median of samples that disagree by 2× is read
// differently from one of samples within 5%.
func spread(c LimitCheck) string {
	if len(c.MeasuredSamples) < 2 || (c.Status != StatusPass && c.Status != StatusMiss) {
		return ""
	}
	r := func(xs []float64) string {
		lo, hi := slices.Min(xs), slices.Max(xs)
		return formatValue(lo, c.Unit) + " – " + formatValue(hi, c.Unit)
	}
	s := fmt.Sprintf("%d samples, measured %s", len(c.MeasuredSamples), r(c.MeasuredSamples))
	if len(c.BaselineSamples) > 1 {
		s += ", baseline " + r(c.BaselineSamples)
	}
	return s
}

// formatValue prints a measurement in its unit the way the seed's table prints them.
func formatValue(v float64, unit string) string {
	switch unit {
	case "MB/s":
		return formatMBps(v)
	case "ms":
		return formatMs(v)
	case "IOPS":
		return thousands(fmt.Sprintf("%.0f", v)) + " IOPS"
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "s":
		return fmt.Sprintf("%.3f s", v)
	case "bytes":
		return formatBytes(v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

func formatBytes(v float64) string {
	for _, u := range []struct {
		name string
		size float64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.size {
			return fmt.Sprintf("%.1f %s", v/u.size, u.name)
		}
	}
	return fmt.Sprintf("%.0f B", v)
}

// formatRatio keeps two significant digits for small ratios (bytes read vs data) and two decimals
// otherwise.
func formatRatio(v float64) string {
	if v != 0 && math.Abs(v) < 0.01 {
		return fmt.Sprintf("%.2g", v)
	}
	return fmt.Sprintf("%.2f", v)
}
