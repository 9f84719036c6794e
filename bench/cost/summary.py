# Medians, ranges and per-round ratios of each metrics arm against metrics=off:
#   python3 bench/cost/summary.py OUTDIR
import json, sys, glob, math, random, statistics

d = sys.argv[1]


def load(arm):
    out = {}
    for f in glob.glob(f"{d}/{glob.escape(arm)}-*.json"):
        i = int(f.rsplit("-", 1)[1].split(".")[0])
        out[i] = json.load(open(f))["results"][0]
    return out


def rng(xs):
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"


off = load("off")
arms = sorted({f.rsplit("/", 1)[1].rsplit("-", 1)[0] for f in glob.glob(f"{d}/*-*.json")} - {"off"})
for arm in arms:
    other = load(arm)
    rounds = sorted(set(off) & set(other))
    if not rounds:
        continue
    print(f"{d}: {arm} against off, {len(rounds)} rounds")
    print(f"| | off | {arm} | {arm}/off |\n| --- | ---: | ---: | ---: |")
    for key, name in [("p50_ms", "p50"), ("p99_ms", "p99"), ("p99_9_ms", "p99.9")]:
        a = [off[i]["producer_latency"][key] for i in rounds]
        b = [other[i]["producer_latency"][key] for i in rounds]
        ratios = [b[k] / a[k] for k in range(len(rounds))]
        print(f"| producer {name} | {rng(a)} ms | {rng(b)} ms | {rng(ratios)} |")
    # The geometric mean of the per-round ratios, with a bootstrap 95% interval over the rounds.
    for key, name in [("p99_ms", "p99"), ("p99_9_ms", "p99.9")]:
        logs = [math.log(other[i]["producer_latency"][key] / off[i]["producer_latency"][key]) for i in rounds]
        rnd = random.Random(1)
        boot = sorted(statistics.mean(rnd.choices(logs, k=len(logs))) for _ in range(5000))
        print(f"| {name} {arm}/off, geometric mean [95% interval] | | | "
              f"{math.exp(statistics.mean(logs)):.3f} [{math.exp(boot[125]):.3f}–{math.exp(boot[4874]):.3f}] |")
    a = [off[i]["producer"]["mb_per_s"] for i in rounds]
    b = [other[i]["producer"]["mb_per_s"] for i in rounds]
    print(f"| producer MB/s | {rng(a)} | {rng(b)} | |")
    print("per round p99 off/" + arm + ":",
          [(round(off[i]["producer_latency"]["p99_ms"], 2), round(other[i]["producer_latency"]["p99_ms"], 2)) for i in rounds])
