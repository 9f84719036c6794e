#!/bin/bash
# Usage: bench/trace/seed-tail.sh OUTDIR [DURATION]
# One dsync-deferred run at the seed's 250 MB/s, with three views of where a slow write waits:
#   - the bench's own numbers: corrected and uncorrected latency, send lag (OUTDIR/bench.json);
#   - the daemon's: how long segfs took to answer each FUSE WRITE, from its metrics (OUTDIR/metrics.txt),
#     and an execution trace of the daemon (OUTDIR/daemon.trace, for go tool trace);
#   - the kernel's: every context switch and wakeup on the machine during the window (perf sched,
#     OUTDIR/perf.sched), where perf works and PERF is not 0.
set -euo pipefail
B=${SEGFS:-bin/segfs}
OUT=$1; DUR=${2:-30s}
mkdir -p "$OUT/mnt"
OUT=$(cd "$OUT" && pwd)
SEGFS_TRACE=$OUT/daemon.trace $B mount --data "$OUT/data" \
  -o io=dsync,persist=deferred,segment_size=1GiB,partitions=4,metrics=127.0.0.1:0 "$OUT/mnt"
trap '$B umount "$OUT/mnt" 2>/dev/null || true' EXIT
URL=http://$($B status --json "$OUT/mnt" | python3 -c 'import json,sys;print(json.load(sys.stdin)["metrics_address"])')/metrics
PERF_PID=
if [ "${PERF:-1}" != 0 ] && perf sched record -a -o "$OUT/perf.sched" -- sleep 0.1 >/dev/null 2>&1; then
  # The bench warms up for 1 s first; perf starts with it and stops a little after the window.
  secs=$(( ${DUR%s} + 3 ))
  perf sched record -a -o "$OUT/perf.sched" -- sleep "$secs" > "$OUT/perf.log" 2>&1 & PERF_PID=$!
fi
$B bench --mount "$OUT/mnt" --rate 250000000 --duration "$DUR" --warmup 1s --quiet --json "$OUT/bench.json" > "$OUT/bench.txt"
curl -s "$URL" > "$OUT/metrics.txt"
if [ -n "$PERF_PID" ]; then wait "$PERF_PID" || true; fi
$B umount "$OUT/mnt"
trap - EXIT
rm -rf "$OUT/data"
cat "$OUT/bench.txt"
