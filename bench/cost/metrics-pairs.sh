#!/bin/bash
# Usage: bench/cost/metrics-pairs.sh PAIRS DURATION -- BENCH_ARGS...
# Interleaves metrics=off and metrics=ADDR (scraped every second) mounts, one bench run each.
set -euo pipefail
B=${SEGFS:-bin/segfs}
PAIRS=$1; DUR=$2; shift 3
OUT=${OUT:-/tmp/segfs-metrics-cost}
mkdir -p $OUT
for i in $(seq 1 $PAIRS); do
  order="off on"; [ $((i % 2)) -eq 0 ] && order="on off"   # ABBA: neither side always runs second
  for mode in $order; do
    D=$(mktemp -d /tmp/segfs-cost-XXXX); mkdir $D/mnt
    if [ $mode = on ]; then opt=metrics=127.0.0.1:0; else opt=metrics=off; fi
    $B mount --data $D/data -o partitions=4,segment_size=1GiB,$opt $D/mnt
    SCR=
    if [ $mode = on ]; then
      URL=http://$($B status --json $D/mnt | python3 -c 'import json,sys;print(json.load(sys.stdin)["metrics_address"])')/metrics
      ( while :; do curl -s -o /dev/null $URL; sleep 1; done ) & SCR=$!
    fi
    $B bench --mount $D/mnt --duration $DUR --warmup 1s --quiet --json $OUT/$mode-$i.json "$@" > $OUT/$mode-$i.txt
    [ -n "$SCR" ] && kill $SCR
    $B umount $D/mnt
    rm -rf $D; sync; sleep 3   # let the freed blocks' journal work finish before the next run
    python3 - $OUT/$mode-$i.json <<'PY'
import json,sys
r=json.load(open(sys.argv[1]))["results"][0]
L=r["producer_latency"]
print(sys.argv[1].split("/")[-1], "p50 %.3f p99 %.3f p999 %.3f ms, %s MB/s" % (L["p50_ms"],L["p99_ms"],L["p99_9_ms"],r["producer"]["mb_per_s"]))
PY
  done
done
