# Medians, ranges and per-pair ratios of metrics=on against metrics=off: python3 bench/cost/summary.py OUTDIR
import json,sys,glob,statistics,os
d=sys.argv[1]
def load(mode):
    out={}
    for f in glob.glob(f"{d}/{mode}-*.json"):
        i=int(f.rsplit("-",1)[1].split(".")[0])
        r=json.load(open(f))["results"][0]
        out[i]=r
    return out
off,on=load("off"),load("on")
pairs=sorted(set(off)&set(on))
print(f"{d}: {len(pairs)} pairs")
for key,name in [("p50_ms","p50"),("p99_ms","p99"),("p99_9_ms","p99.9")]:
    a=[off[i]["producer_latency"][key] for i in pairs]; b=[on[i]["producer_latency"][key] for i in pairs]
    ratios=[b[k]/a[k] for k in range(len(pairs))]
    print(f"| producer {name} | {statistics.median(a):.2f} ms ({min(a):.2f}–{max(a):.2f}) | {statistics.median(b):.2f} ms ({min(b):.2f}–{max(b):.2f}) | {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |")
a=[off[i]["producer"]["mb_per_s"] for i in pairs]; b=[on[i]["producer"]["mb_per_s"] for i in pairs]
print(f"| producer MB/s | {statistics.median(a):.1f} ({min(a):.1f}–{max(a):.1f}) | {statistics.median(b):.1f} ({min(b):.1f}–{max(b):.1f}) | |")
print("per pair p99 off/on:", [(round(off[i]["producer_latency"]["p99_ms"],1), round(on[i]["producer_latency"]["p99_ms"],1)) for i in pairs])
