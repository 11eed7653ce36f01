#!/usr/bin/env python3
"""Purchase intent against what happened (docs/benchmarks.md, "Purchase intent").

  python3 bench/intent_calibration.py [-X key=value ...]

Replays inputs with `tally replay` (the model on, intent published) and checks every
intent_delta record against the input itself: did the user buy within the record's window
after its ts? Records whose window runs past the input's last event are left out (their
outcome is not known). Prints, per input, the records scored, their mean p against the rate
of purchases that followed, the Brier score against that of the rate itself, the AUC of p,
and the same by tenth of p (calibration: mean p against the observed rate).

Inputs: the Taobao journeys of ../shared/data sorted by time (with a one-day window: the
slice spans nine days), generated events (`tally gen`) and the ground truth's (`tally gen
--truth`). The score assumes nothing more is seen of the user; users who come back and
touch more buy more often than that, so the observed rate can run above the mean p.
"""
import bisect
import csv
import json
import os
import subprocess
import tempfile
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TALLY = os.environ.get("TALLY_BIN", os.path.join(ROOT, "build", "tally"))

from bench_data import setting_args, auc, journeys_by_time  # noqa: E402
DAY = 86400000


def purchases_of(path, fmt):
    """user -> sorted purchase times (ms), and the last event time, read from the input."""
    buys, last = defaultdict(list), 0
    with open(path, newline="") as fh:
        rows = csv.reader(fh)
        if fmt == "canonical":
            head = next(rows)
            iu, it, its = head.index("user_id"), head.index("type"), head.index("ts")
            for r in rows:
                ts = int(r[its])
                last = max(last, ts)
                if r[it] == "PURCHASE":
                    buys[r[iu]].append(ts)
        else:   # taobao: user, item, category, behaviour, seconds
            for r in rows:
                ts = int(r[4]) * 1000
                last = max(last, ts)
                if r[3] == "buy":
                    buys[r[0]].append(ts)
    for v in buys.values():
        v.sort()
    return buys, last


def score(path, fmt, out, extra):
    subprocess.run([TALLY, "replay", "--input", path, "--format", fmt, "--output", out,
                    "--quiet", "-X", "intent.enabled=true"] + extra, check=True,
                   stderr=subprocess.DEVNULL)
    buys, last = purchases_of(path, fmt)
    ps, ys = [], []
    with open(out) as fh:
        for line in fh:
            r = json.loads(line)
            if r["type"] != "intent_delta" or r["ts"] + r["window_ms"] > last:
                continue
            b = buys.get(r["user_id"], [])
            k = bisect.bisect_right(b, r["ts"])   # the first purchase after ts
            ps.append(r["p"])
            ys.append(1 if k < len(b) and b[k] <= r["ts"] + r["window_ms"] else 0)
    return ps, ys


def report(name, ps, ys):
    n = len(ps)
    if not n:
        print("| %s | 0 | - | - | - | - | - |" % name)
        return []
    rate = sum(ys) / n
    brier = sum((p - y) ** 2 for p, y in zip(ps, ys)) / n
    base = sum((rate - y) ** 2 for y in ys) / n
    print("| %s | %d | %.3f | %.3f | %.4f | %.4f | %.3f |" % (
        name, n, sum(ps) / n, rate, brier, base, auc(ps, ys)))
    order = sorted(range(n), key=lambda i: ps[i])
    tenths = []
    for t in range(10):
        idx = order[t * n // 10:(t + 1) * n // 10]
        if idx:
            tenths.append((sum(ps[i] for i in idx) / len(idx), sum(ys[i] for i in idx) / len(idx)))
    return tenths


def main():
    extra = setting_args(__doc__)
    with tempfile.TemporaryDirectory(prefix="tally-intent-") as d:
        inputs = []
        sorted_path = journeys_by_time(d)
        if sorted_path:
            inputs.append(("Taobao journeys, time order, 1-day window", sorted_path, "taobao",
                           ["-X", "intent.window.ms=%d" % DAY]))
        gen = os.path.join(d, "gen.csv")
        subprocess.run([TALLY, "gen", "--events", "200000", "--users", "5000", "--output", gen],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        inputs.append(("generated (tally gen), 1-day window", gen, "canonical",
                       ["-X", "intent.window.ms=%d" % DAY]))
        truth = os.path.join(d, "truth.csv")
        subprocess.run([TALLY, "gen", "--truth", os.path.join(d, "truth.json"), "--users", "5000",
                        "--output", truth], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        inputs.append(("ground truth (tally gen --truth), 7-day window", truth, "canonical", []))
        print("| input | records scored | mean p | purchased within the window | Brier | "
              "Brier of the rate | AUC |")
        print("|---|---|---|---|---|---|---|")
        tables = []
        for name, path, fmt, args in inputs:
            ps, ys = score(path, fmt, os.path.join(d, "out.jsonl"), args + extra)
            tables.append((name, report(name, ps, ys)))
        for name, tenths in tables:
            print("\n%s, by tenth of p: mean p / observed rate" % name)
            print(" ".join("%.3f/%.3f" % t for t in tenths))


if __name__ == "__main__":
    main()
