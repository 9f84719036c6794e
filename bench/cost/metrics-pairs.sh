#!/bin/bash
# Usage: [ARMS="off rec on@1"] bench/cost/metrics-pairs.sh ROUNDS DURATION -- BENCH_ARGS...
# Runs one bench per arm per round, one mount at a time, each round in a rotated order so that no arm
# always follows another's file deletion. The arms:
#   off  -o metrics=off: no recorders, no .stats
#   rec  -o metrics=127.0.0.1:0, never scraped: the cost of recording alone
#   on@S -o metrics=127.0.0.1:0, scraped every S seconds over one kept-alive connection (on = on@1)
#   curl@S  the same, with a new curl process for each scrape: what the scraper's own start costs
set -euo pipefail
B=${SEGFS:-bin/segfs}
ROUNDS=$1; DUR=$2; shift 3
OUT=${OUT:-/tmp/segfs-metrics-cost}
read -r -a ARMS <<< "${ARMS:-off on@1}"
mkdir -p "$OUT"
for i in $(seq 1 "$ROUNDS"); do
  n=${#ARMS[@]}; order=()
  for k in $(seq 0 $((n - 1))); do order+=("${ARMS[$(( (k + i - 1) % n ))]}"); done
  [ $((i % 2)) -eq 0 ] && order=($(printf '%s\n' "${order[@]}" | tac))
  for arm in "${order[@]}"; do
    D=$(mktemp -d /tmp/segfs-cost-XXXX); mkdir "$D/mnt"
    if [ "$arm" = off ]; then opt=metrics=off; else opt=metrics=127.0.0.1:0; fi
    $B mount --data "$D/data" -o partitions=4,segment_size=1GiB,$opt "$D/mnt"
    SCR=
    kind=${arm%%@*}; EVERY=1; [ "$arm" != "$kind" ] && EVERY=${arm#*@}
    if [ "$kind" = on ] || [ "$kind" = curl ]; then
      URL=http://$($B status --json "$D/mnt" | python3 -c 'import json,sys;print(json.load(sys.stdin)["metrics_address"])')/metrics
      if [ "$kind" = on ]; then
        python3 "$(dirname "$0")/scrape.py" "$URL" "$EVERY" & SCR=$!
      else
        ( while :; do curl -s -o /dev/null "$URL"; sleep "$EVERY"; done ) & SCR=$!
      fi
    fi
    $B bench --mount "$D/mnt" --duration "$DUR" --warmup 1s --quiet --json "$OUT/$arm-$i.json" "$@" > "$OUT/$arm-$i.txt"
    if [ -n "$SCR" ]; then kill "$SCR"; fi
    $B umount "$D/mnt"
    rm -rf "$D"; sync; sleep 3   # let the freed blocks' journal work finish before the next run
    python3 - "$OUT/$arm-$i.json" <<'PY'
import json,sys
r=json.load(open(sys.argv[1]))["results"][0]
L=r["producer_latency"]
print(sys.argv[1].split("/")[-1], "p50 %.3f p99 %.3f p999 %.3f ms, %s MB/s" % (L["p50_ms"],L["p99_ms"],L["p99_9_ms"],r["producer"]["mb_per_s"]))
PY
  done
done
