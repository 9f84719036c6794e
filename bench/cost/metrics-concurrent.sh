#!/bin/bash
# Usage: bench/cost/metrics-concurrent.sh RUNS DURATION -- BENCH_ARGS...
# Each run mounts metrics=off and metrics=ADDR (scraped every second) side by side and benchmarks
# both at the same time, so both see the same noise from the shared machine.
set -euo pipefail
B=${SEGFS:-bin/segfs}
RUNS=$1; DUR=$2; shift 3
OUT=${OUT:-/tmp/segfs-metrics-cost}
mkdir -p $OUT
for i in $(seq 1 $RUNS); do
  D=$(mktemp -d /tmp/segfs-cost-XXXX); mkdir $D/off $D/on
  $B mount --data $D/data-off -o partitions=4,segment_size=1GiB,metrics=off $D/off
  $B mount --data $D/data-on -o partitions=4,segment_size=1GiB,metrics=127.0.0.1:0 $D/on
  URL=http://$($B status --json $D/on | python3 -c 'import json,sys;print(json.load(sys.stdin)["metrics_address"])')/metrics
  ( while :; do curl -s -o /dev/null $URL; sleep 1; done ) & SCR=$!
  $B bench --mount $D/off --duration $DUR --warmup 1s --quiet --json $OUT/off-$i.json "$@" > $OUT/off-$i.txt &
  P1=$!
  $B bench --mount $D/on --duration $DUR --warmup 1s --quiet --json $OUT/on-$i.json "$@" > $OUT/on-$i.txt &
  P2=$!
  wait $P1 $P2
  kill $SCR
  $B umount $D/off; $B umount $D/on
  rm -rf $D; sync; sleep 3
  for m in off on; do python3 - $OUT/$m-$i.json <<'PY'
import json,sys
r=json.load(open(sys.argv[1]))["results"][0]
L=r["producer_latency"]
print(sys.argv[1].split("/")[-1], "p50 %.3f p99 %.3f p999 %.3f ms, %s MB/s" % (L["p50_ms"],L["p99_ms"],L["p99_9_ms"],r["producer"]["mb_per_s"]))
PY
  done
done
