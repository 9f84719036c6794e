// Package daemon runs a segfs mount's life: preflight checks, the detached daemon and its readiness
// pipe (`segfs mount` returns once the mount is live), the control socket `segfs umount` waits on,
// signals, profiles, the mount table, default paths and logging. It serves a segments.Log through
// fusefs and knows nothing of FUSE requests or segment files.
//
// docs/architecture.md places it among the other packages.
package daemon
