#!/usr/bin/env python3
"""Model quality: tally's online conversion model against River's learners fed exactly the
same examples, in the same order, each scored before it is learned (progressive validation).

  python3 bench/model_quality.py [--input F --format taobao|canonical] [--generated N]

Default: ../shared/data/taobao/user_behavior_journeys.csv and a generated stream of 1M
events. For each: `tally replay --export-examples` writes the examples tally learned from
(label, weight, tally's score before learning, the running rate, the 44 features); River's
LogisticRegression with FTRL-Proximal (same alpha, beta, l1, l2) and with plain SGD learns
from the same rows. Prints log-loss and AUC over all examples, and examples per second.
Needs `pip install river==0.26.1` (tests/integration/requirements.txt).
"""
import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TALLY = os.environ.get("TALLY_BIN", os.path.join(ROOT, "build", "tally"))
DATA = os.path.join(ROOT, "..", "shared", "data", "taobao", "user_behavior_journeys.csv")
# tally's defaults (core/config_tables.c): model.ftrl.alpha, beta, l1, l2
ALPHA, BETA, L1, L2 = 0.05, 1.0, 0.0, 0.1


def logloss(ps, ys, ws):
    tot = sum(ws)
    s = 0.0
    for p, y, w in zip(ps, ys, ws):
        p = min(max(p, 1e-15), 1 - 1e-15)
        s -= w * (math.log(p) if y else math.log(1 - p))
    return s / tot if tot else float("nan")


def auc(ps, ys):
    pairs = sorted(zip(ps, ys))
    pos = sum(ys)
    neg = len(ys) - pos
    if not pos or not neg:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(pairs):   # average ranks over ties
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg = (i + 1 + j) / 2.0
        rank_sum += avg * sum(y for _, y in pairs[i:j])
        i = j
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def export(inp, fmt, tmp):
    path = os.path.join(tmp, "examples.csv")
    t0 = time.monotonic()
    subprocess.run([TALLY, "replay", "--input", inp, "--format", fmt, "--output", os.devnull,
                    "--export-examples", path, "-X", "log.level=warn"], check=True)
    return path, time.monotonic() - t0


def read_examples(path):
    with open(path) as f:
        r = csv.reader(f)
        header = next(r)
        feats = header[5:]
        rows = []
        for row in r:
            rows.append((int(row[1]), float(row[2]), float(row[3]), float(row[4]),
                         [float(v) for v in row[5:]]))
    return feats, rows


def river_run(make, feats, rows):
    model = make()
    ps = []
    t0 = time.monotonic()
    for y, w, _, _, x in rows:
        xd = dict(zip(feats, x))
        ps.append(model.predict_proba_one(xd).get(True, 0.0))
        model.learn_one(xd, bool(y), w=w) if "w" in model.learn_one.__code__.co_varnames else model.learn_one(xd, bool(y))
    return ps, time.monotonic() - t0


def evaluate(name, inp, fmt):
    from river import linear_model, optim
    with tempfile.TemporaryDirectory() as tmp:
        path, secs = export(inp, fmt, tmp)
        feats, rows = read_examples(path)
    ys = [r[0] for r in rows]
    ws = [r[1] for r in rows]
    out = []
    out.append(("tally (FTRL-Proximal, C)", [r[2] for r in rows], None))
    out.append(("running conversion rate", [r[3] for r in rows], None))
    ftrl = lambda: linear_model.LogisticRegression(
        optimizer=optim.FTRLProximal(alpha=ALPHA, beta=BETA, l1=L1, l2=L2), l2=0.0,
        intercept_lr=0.0)
    sgd = lambda: linear_model.LogisticRegression(optimizer=optim.SGD(0.01))
    for label, make in (("River LogisticRegression + FTRLProximal", ftrl),
                        ("River LogisticRegression + SGD(0.01)", sgd)):
        ps, t = river_run(make, feats, rows)
        out.append((label, ps, t))
    print(f"\n{name}: {len(rows):,} examples ({sum(ys):,} positive), features {len(feats)}; "
          f"tally replay with export took {secs:.2f} s")
    print("| learner | log-loss | AUC | learner time |")
    print("|---|---|---|---|")
    for label, ps, t in out:
        tt = f"{t:.2f} s ({len(rows) / t:,.0f} examples/s)" if t else "-"
        print(f"| {label} | {logloss(ps, ys, ws):.4f} | {auc(ps, ys):.4f} | {tt} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input")
    ap.add_argument("--format", default="taobao")
    ap.add_argument("--generated", type=int, default=1000000)
    a = ap.parse_args()
    if a.input:
        evaluate(a.input, a.input, a.format)
        return
    if os.path.exists(DATA):
        evaluate("Taobao journeys (../shared/data)", DATA, "taobao")
    else:
        print("SKIP: ../shared/data/taobao not found", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        gen = os.path.join(tmp, "gen.csv")
        subprocess.run([TALLY, "gen", "--events", str(a.generated), "--users",
                        str(max(1, a.generated // 10)), "--output", gen], check=True)
        evaluate(f"generated stream ({a.generated:,} events)", gen, "canonical")


if __name__ == "__main__":
    main()
