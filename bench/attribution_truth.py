#!/usr/bin/env python3
"""Every attribution method against a known truth (docs/benchmarks.md, "Attribution against
the truth").

For each seed: `tally gen --truth` writes events with planted channel effects (and the
same with every effect 0, the null run), `tally replay` runs them with the model and the
Markov chain on, and tests/integration/truth.py computes the true credits and scores every
method. Prints, per method, the TV distance of its channel shares to the truth (all
channels, and the unconfounded ones), the mean per-purchase error, and the share it gives
the confounded channel (true share 0); for the null run, how the model's credited
probability (p_conversion - p_baseline) depends on the journey's length (the Pearson
correlation, and the mean at 1-2, 3-5 and 6+ touchpoints).

With --order FIRST,THEN,EFFECT the data has an order effect as well (`tally gen --truth
--order`: an impression of THEN after one of FIRST adds EFFECT to the purchase log-odds),
which a model of pooled touchpoints cannot represent.

Usage: bench/attribution_truth.py [--tally build/tally] [--users 5000] [--seeds 1,2,3]
       [--order FIRST,THEN,EFFECT] [-X key=value ...] [--json F]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import truth as tr  # noqa: E402


def run(tally, d, name, users, seed, extra, gen_args):
    events, tjson, out = (os.path.join(d, name + s) for s in (".csv", ".json", ".jsonl"))
    subprocess.run([tally, "gen", "--truth", tjson, "--users", str(users), "--seed", str(seed),
                    "--output", events] + gen_args, check=True)
    subprocess.run([tally, "replay", "--input", events, "--format", "canonical", "--output", out,
                    "-X", "log.level=warn"] + extra, check=True, stderr=subprocess.DEVNULL)
    with open(tjson) as fh:
        return json.load(fh), events, out


def length_dependence(out):
    xs, ys = [], []
    with open(out) as fh:
        for line in fh:
            r = json.loads(line)
            if r["type"] == "attribution" and r.get("p_conversion") is not None:
                xs.append(len(r["touchpoints"]))
                ys.append(r["p_conversion"] - r["p_baseline"])
    if len(xs) < 3 or statistics.pstdev(xs) == 0 or statistics.pstdev(ys) == 0:
        return {"n": len(xs), "corr": 0.0, "by_length": {}}
    corr = statistics.correlation(xs, ys)
    groups = {"1-2": (1, 2), "3-5": (3, 5), "6+": (6, 10 ** 9)}
    by = {k: statistics.fmean([y for x, y in zip(xs, ys) if lo <= x <= hi] or [0.0])
          for k, (lo, hi) in groups.items()}
    return {"n": len(xs), "corr": corr, "by_length": by}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tally", default=os.path.join(HERE, "..", "build", "tally"))
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--order", help="FIRST,THEN,EFFECT: an order effect in the data")
    ap.add_argument("-X", action="append", default=[])
    ap.add_argument("--json")
    a = ap.parse_args()
    extra = ["-X", "model.enabled=true", "-X", "markov.enabled=true"]
    for x in a.X:
        extra += ["-X", x]
    results = {"runs": [], "null": []}
    with tempfile.TemporaryDirectory(prefix="tally-truth-") as d:
        for seed in (int(s) for s in a.seeds.split(",")):
            truth, events, out = run(a.tally, d, "s%d" % seed, a.users, seed, extra,
                                     ["--order", a.order] if a.order else [])
            res = tr.evaluate(truth, events, out)
            results["runs"].append(res)
            print("seed %d: %d purchases, %d attributions; model status %s" % (
                seed, res["purchases"], res["attributions"], res["model_status"]))
            print(tr.table(res) + "\n")
            truth, events, out = run(a.tally, d, "n%d" % seed, a.users, seed, extra, ["--null"])
            dep = length_dependence(out)
            results["null"].append(dep)
            print("null run, seed %d: %d model attributions; correlation of p_conversion - "
                  "p_baseline with the number of touchpoints %.3f; mean by length %s\n" % (
                      seed, dep["n"], dep["corr"],
                      ", ".join("%s: %.4f" % kv for kv in dep["by_length"].items())))
    methods = [r["method"] for r in results["runs"][0]["methods"]]
    print("median over %d seeds:" % len(results["runs"]))
    print("| method | TV to the truth | TV, unconfounded channels | per-purchase error | "
          "confounded channels' share (truth %.3f) |" % results["runs"][0]["confounded_true_share"])
    print("|---|---|---|---|---|")
    for m in methods:
        rows = [next(x for x in r["methods"] if x["method"] == m) for r in results["runs"]]
        ppe = [x["per_purchase_error"] for x in rows if x["per_purchase_error"] is not None]
        print("| %s | %.3f | %.3f | %s | %.3f |" % (
            m, statistics.median(x["tv"] for x in rows),
            statistics.median(x["tv_unconfounded"] for x in rows),
            "%.3f" % statistics.median(ppe) if ppe else "-",
            statistics.median(x["confounded_share"] for x in rows)))
    tr.save_json(a.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
