// Package integration holds segfs's end-to-end suite: each test builds the real binary, mounts it through the
// real CLI in a temp dir, drives it with the programs users run (sh, cat, dd, tee, tail, cp, rsync, tar, python3,
// ...) and checks the bytes through the mount and in the data dir.
//
// Requirements: Linux, /dev/fuse, root (loop and tmpfs mounts), and the tools from scripts/install-deps.sh.
// Without /dev/fuse the whole package skips with one line saying so (shown by go test -v; package-list mode
// hides a passing package's output), or fails if SEGFS_REQUIRE_FUSE is set.
//
// Knobs:
//
//	SEGFS_CRASH_ITERATIONS=N  kill -9 points per io×persist mode in TestCrashKill9 (default 20, so 120 in all)
//	SEGFS_CRASH_SEED=N        reproduce a crash run (the seed is logged)
//	SEGFS_LOG_LEVEL=debug     daemon log level (daemon logs are printed when a test fails)
//	SEGFS_DAEMON_RACE=1       build the daemon with -race (slower; a race makes the daemon exit 66)
//	SEGFS_REQUIRE_FUSE=1      fail instead of skipping when /dev/fuse is absent
//
// docs/architecture.md shows where this package sits among the others.
package integration
