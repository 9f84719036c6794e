package bench

import (
	"fmt"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// WritePlot draws the HdrHistogram-style percentile chart: x in "nines" (0 = p0, 1 = p90, 2 = p99, ...) so
// the tail gets as much room as the median, y latency in ms on a log scale because the modes differ by
// orders of magnitude. One line per mode and side; a colour per mode, a dash pattern per side.
func WritePlot(path string, r *Report) error {
	p := plot.New()
	p.Title.Text = "segfs bench: latency by percentile"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Title.Padding = vg.Points(8)
	// The legend gets its own column right of the plot: with up to 18 lines it would hide some inside.
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	sides := []struct {
		name string
		get  func(ModeResult) *Latency
	}{
		{"producer", func(m ModeResult) *Latency { return m.ProducerLatency }},
		{"consumer", func(m ModeResult) *Latency { return m.ConsumerLatency }},
		{"end-to-end", func(m ModeResult) *Latency { return m.EndToEnd }},
	}
	maxX, lines := 1.0, 0
	for i, res := range r.Results {
		for j, side := range sides {
			l := side.get(res)
			if l == nil || len(l.Curve) == 0 {
				continue
			}
			var xys plotter.XYs
			for _, pt := range l.Curve {
				x := nines(pt.Percentile)
				if math.IsInf(x, 0) {
					continue
				}
				// A log axis cannot show 0; a latency below a nanosecond is a nanosecond.
				xys = append(xys, plotter.XY{X: x, Y: max(pt.Ms, 1e-6)})
				maxX = max(maxX, x)
			}
			line, err := plotter.NewLine(xys)
			if err != nil {
				return fmt.Errorf("plot %s %s: %w", res.Mode.Name, side.name, err)
			}
			line.Color = plotutil.Color(i)
			line.Dashes = plotutil.Dashes(j)
			line.Width = vg.Points(1.2)
			p.Add(line)
			legend.Add(res.Mode.Name+" "+side.name, line)
			lines++
		}
	}
	if lines == 0 {
		return fmt.Errorf("plot: no latency was measured")
	}
	// Half a nine of room so the last tick's label is not cut at the edge.
	p.X.Min, p.X.Max = 0, math.Ceil(maxX)+0.5
	p.X.Tick.Marker = ninesTicks{}
	p.Add(plotter.NewGrid())
	const width, legendWidth = 12.5 * vg.Inch, 3.1 * vg.Inch
	c := vgsvg.New(width, 6*vg.Inch)
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	legend.Draw(draw.Crop(dc, width-legendWidth+vg.Points(12), 0, 0, -vg.Points(30)))
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write plot %s: %w", path, err)
	}
	return nil
}

// ninesTicks labels the nines axis with the percentiles it stands for.
type ninesTicks struct{}

func (ninesTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for x := math.Ceil(lo); x <= hi; x++ {
		ts = append(ts, plot.Tick{Value: x, Label: ninesLabel(x)})
	}
	return ts
}

// ninesLabel: 0 → "0%", 1 → "90%", 2 → "99%", 3 → "99.9%".
func ninesLabel(x float64) string {
	if x == 0 {
		return "0%"
	}
	return strconv.FormatFloat(100*(1-math.Pow(10, -x)), 'f', max(int(x)-2, 0), 64) + "%"
}
