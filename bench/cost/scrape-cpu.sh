#!/bin/bash
# Usage: bench/cost/scrape-cpu.sh [PARTITIONS] [SCRAPES]
# What one scrape costs the daemon (CPU from /proc/PID/stat, bytes allocated from its own go_memstats)
# with PARTITIONS partitions, each with data, over SCRAPES scrapes on one kept-alive connection; and what
# a new curl process per scrape costs the machine besides.
set -euo pipefail
B=${SEGFS:-bin/segfs}
PARTS=${1:-4}; N=${2:-1000}
D=$(mktemp -d /tmp/segfs-scrape-XXXX); mkdir "$D/mnt"
$B mount --data "$D/data" -o partitions=$PARTS,metrics=127.0.0.1:0 "$D/mnt"
trap '$B umount "$D/mnt"; rm -rf "$D"' EXIT
URL=http://$($B status --json "$D/mnt" | python3 -c 'import json,sys;print(json.load(sys.stdin)["metrics_address"])')/metrics
PID=$($B status --json "$D/mnt" | python3 -c 'import json,sys;print(json.load(sys.stdin)["pid"])')
mkdir "$D/mnt/t"
for p in $(seq 0 $((PARTS - 1))); do printf 'x%.0s' {1..100} >> "$D/mnt/t/$p/current"; done
ticks() { awk '{print $14 + $15}' /proc/$PID/stat; }
alloc() { curl -s "$URL" | awk '/^go_memstats_alloc_bytes_total /{print $2}'; }
HZ=$(getconf CLK_TCK)
a0=$(alloc); t0=$(ticks)
urls=(); for _ in $(seq 1 "$N"); do urls+=(-o /dev/null "$URL"); done
size=$(curl -s "$URL" | wc -c)
curl -s "${urls[@]}"
t1=$(ticks); a1=$(alloc)
python3 -c "print('partitions $PARTS: exposition %d bytes; per kept-alive scrape: daemon CPU %.2f ms, %.0f KiB allocated' % ($size, ($t1 - $t0) * 1000 / $HZ / $N, ($a1 - $a0) / 1024 / ($N + 2)))"
T=$( { /usr/bin/time -f '%U %S' bash -c "for i in \$(seq 1 100); do curl -s -o /dev/null $URL; done" ; } 2>&1 )
python3 -c "u, s = map(float, '$T'.split()); print('a new curl process per scrape: %.1f ms of CPU in curl' % ((u + s) * 1000 / 100))"
