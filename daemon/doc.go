// Package daemon runs a segfs mount's life: the preflight checks of the mount point and data dir, the
// detached daemon and the readiness pipe that makes `segfs mount` return once the mount is live, the
// control socket that `segfs umount` waits on, signals, profiles, the mount table, default paths and
// logging setup. It opens the segments.Log and serves it through fusefs; it knows nothing of FUSE
// requests or segment files.
//
// docs/architecture.md shows where this package sits among the others.
package daemon
