#!/bin/bash
# Usage: bench/limits-evidence.sh OUTDIR
# The measurements behind two bench-limits MISSes in BENCHMARKS.md, run right after bench/final-run.sh:
#   target 1: what O_DSYNC costs this disk (fio with and without it) and dd into io=direct and io=dsync mounts;
#   target 4: warm cat of a sealed segment through the mount and of its backing file in 9 interleaved pairs,
#   with perf stat, strace -c and perf record of each side.
# Root (FUSE, fio, perf); OUTDIR/t1.txt, t4.txt and the profiles.
set -u
O=$1; mkdir -p "$O"; O=$(cd "$O" && pwd)
cd "$(dirname "$0")/.." && make build >/dev/null
B=$PWD/bin/segfs
W=/tmp/segfs-extra; rm -rf $W; mkdir -p $W/fio
echo "== fio 1 GiB bs=8M new file, sync=0 vs sync=1, 2 pairs" | tee $O/t1.txt
for i in 1 2; do for s in 0 1; do
  rm -f $W/fio/f; sync; sleep 2
  fio --name=w --filename=$W/fio/f --rw=write --bs=8M --direct=1 --sync=$s --ioengine=psync --numjobs=1 --size=1G --output-format=json 2>/dev/null \
    | python3 -c "import json,sys;j=json.load(sys.stdin)['jobs'][0]['write'];print('fio sync=$s', round(j['bw_bytes']/1e6),'MB/s')" | tee -a $O/t1.txt
done; done
rm -f $W/fio/f
echo "== dd 1 GiB bs=1M oflag=append into a fresh mount, io=direct vs io=dsync (persist=deferred), 2 pairs" | tee -a $O/t1.txt
for i in 1 2; do for io in direct dsync; do
  D=$W/m-$io-$i; mkdir -p $D/mnt; sync; sleep 2
  $B mount --data $D/data -o io=$io,persist=deferred,partitions=1,segment_size=4GiB $D/mnt
  mkdir $D/mnt/t
  s=$(date +%s.%N); dd if=/dev/zero bs=1M count=1024 oflag=append conv=notrunc of=$D/mnt/t/0/current 2>/dev/null; e=$(date +%s.%N)
  python3 -c "print('dd io=$io', round(1073741824/($e-$s)/1e6), 'MB/s')" | tee -a $O/t1.txt
  $B umount $D/mnt; rm -rf $D
done; done
echo "== warm cat of a sealed 512 MiB segment, mount vs backing file, 9 interleaved pairs" | tee $O/t4.txt
D=$W/cat; mkdir -p $D/mnt
$B mount --data $D/data -o partitions=1,segment_size=512MiB $D/mnt
mkdir $D/mnt/t
dd if=/dev/urandom bs=1M count=600 of=$D/mnt/t/0/current oflag=append conv=notrunc 2>/dev/null
sleep 2
SEG=t/0/00000000000000000000.log
ls -l $D/mnt/$SEG $D/data/$SEG | tee -a $O/t4.txt
cat $D/mnt/$SEG > /dev/null; cat $D/data/$SEG > /dev/null
for i in $(seq 9); do for side in mnt data; do
  s=$(date +%s.%N); cat $D/$side/$SEG > /dev/null; e=$(date +%s.%N)
  python3 -c "print('warm cat $side', round(536870912/($e-$s)/1e6), 'MB/s')" | tee -a $O/t4.txt
done; done
strace -c -o $O/strace-mnt.txt cat $D/mnt/$SEG > /dev/null
strace -c -o $O/strace-data.txt cat $D/data/$SEG > /dev/null
for side in mnt data; do
  perf stat -e task-clock,context-switches -o $O/perfstat-$side.txt -- sh -c "for i in 1 2 3 4 5; do cat $D/$side/$SEG; done > /dev/null"
  perf record -q -g -o $O/perf-$side.data -- sh -c "for i in 1 2 3 4 5; do cat $D/$side/$SEG; done > /dev/null" 2>/dev/null
  perf report -i $O/perf-$side.data --no-children --percent-limit 1.5 --stdio -g none 2>/dev/null | grep -v "^#" | grep -v "^$" | head -25 > $O/perfreport-$side.txt
done
$B umount $D/mnt; rm -rf $W
echo done
