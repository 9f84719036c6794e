// Package metrics owns a mount's Prometheus registry: the collectors that read a segments.Log at
// scrape time, the histograms segments and FUSE requests feed as they happen, the Go runtime and
// process collectors, the exposition text of MNT/.stats and the HTTP endpoint of -o metrics=ADDR.
//
// The write path pays for no gauge: offsets, sizes, unsynced bytes and health are read from
// segments' atomics when a scrape comes. What must be counted where it happens costs one counter add
// and one histogram observe, both lock-free: segments reports through segments.Observer, and every
// FUSE request passes through a wrapper of go-fuse's RawFileSystem that fusefs installs for daemon.
// fusefs never imports this package; daemon wires the two.
//
// docs/metrics.md lists every metric; docs/architecture.md shows where this package sits.
package metrics
