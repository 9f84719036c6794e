package metrics

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// ProcessDescriptors is the budget every mount has: the daemon's open descriptors against its soft
// RLIMIT_NOFILE, which the daemon raises to the hard limit at start.
func ProcessDescriptors() Descriptors {
	return Descriptors{Budget: "process", Usage: processDescriptors}
}

func processDescriptors() (open, limit int64, err error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, 0, err
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	// ReadDir's own descriptor is closed again by now, but it was listed.
	return int64(len(entries)) - 1, int64(lim.Cur), nil
}

// descriptorCollector exports each budget as segfs_descriptors_open and segfs_descriptors_limit.
type descriptorCollector struct {
	budgets     []Descriptors
	open, limit *prometheus.Desc
}

func newDescriptorCollector(budgets []Descriptors) *descriptorCollector {
	return &descriptorCollector{
		budgets: budgets,
		open: prometheus.NewDesc("segfs_descriptors_open",
			"Descriptors counted against a budget: process is every descriptor the daemon holds.", []string{"budget"}, nil),
		limit: prometheus.NewDesc("segfs_descriptors_limit",
			"The limit of each descriptor budget: process is the soft RLIMIT_NOFILE.", []string{"budget"}, nil),
	}
}

func (c *descriptorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.limit
}

func (c *descriptorCollector) Collect(ch chan<- prometheus.Metric) {
	for _, b := range c.budgets {
		open, limit, err := b.Usage()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.open, fmt.Errorf("descriptor budget %s: %w", b.Budget, err))
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(open), b.Budget)
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(limit), b.Budget)
	}
}
