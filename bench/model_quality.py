#!/usr/bin/env python3
"""Model quality: tally's online conversion model against River's learners fed exactly the
same examples, in the same order, each scored before it is learned (progressive validation).

  python3 bench/model_quality.py [--input F --format taobao|canonical] [--generated N]
                                 [--truth-order FIRST,THEN,EFFECT] [-X KEY=VALUE ...]

(--generated: events of the generated stream, 100,000 by default. --truth-order: also
ground-truth data with an order effect, `tally gen --truth --order FIRST,THEN,EFFECT`
(docs/attribution.md, "Ground truth"), e.g. display,search,0.5. -X: a configuration key
for every replay. River's adaptive random forest learns about 300 examples/s and is left
out above 100,000 examples.)

Default, every input in time order (as a stream delivers it): the Taobao journeys and the
Taobao slice of ../shared/data, a generated stream, and ground-truth data
(`tally gen --truth`). For each: `tally replay --export-examples` writes the examples tally
learned from (purchases and control moments: label, weight, tally's score before learning,
the running rate, the sparse features); River's LogisticRegression with FTRL-Proximal (same alpha, beta, l1, l2), with
plain SGD, and River's adaptive random forest learn from the same rows in the same order.
A second export with `-X model.kind=seq` (after any -X given) gives tally's sequence model
(docs/attribution.md, "The sequence model"): the same rows with its score before learning
and no features; the script stops with an error unless they are the same examples (ts,
label and weight, in the same order). Its row's time is that whole replay's (reading,
learning, crediting); the default model's replay time is on the input's first line.
Prints log-loss and AUC over all examples (progressive: each scored before it is learned),
and examples per second. (In file order the journeys file is grouped by user, which makes
every negative a one-touchpoint journey: its AUC measured the file's order, not the model.)
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

from bench_data import auc  # noqa: E402 (bench/ is on sys.path when run)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TALLY = os.environ.get("TALLY_BIN", os.path.join(ROOT, "build", "tally"))
DATA = os.path.join(ROOT, "..", "shared", "data", "taobao", "user_behavior_journeys.csv")
# tally's defaults (their rows: features/interest.c, model/model.c): model.ftrl.alpha, beta, l1, l2
ALPHA, BETA, L1, L2 = 0.2, 1.0, 0.0, 0.1


def logloss(ps, ys, ws):
    tot = sum(ws)
    s = 0.0
    for p, y, w in zip(ps, ys, ws):
        p = min(max(p, 1e-15), 1 - 1e-15)
        s -= w * (math.log(p) if y else math.log(1 - p))
    return s / tot if tot else float("nan")


def export(inp, fmt, tmp, xs, name="examples.csv"):
    path = os.path.join(tmp, name)
    cmd = [TALLY, "replay", "--input", inp, "--format", fmt, "--output", os.devnull,
           "--export-examples", path, "-X", "log.level=warn"]
    for kv in xs:
        cmd += ["-X", kv]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True)
    return path, time.monotonic() - t0


def read_examples(path):
    """Rows (label, weight, tally's p, running rate, features as a dict) and the number of
    distinct features. tally's features are sparse coordinates ("index:value ..."); its
    logit also has an offset, the log-odds of a purchase among the examples before (one of
    each added), which River's learners get as one more feature, "offset"."""
    feats = set()
    rows = []
    pos = n = 0
    with open(path) as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            x = {"f" + k: float(v) for k, v in (kv.split(":") for kv in row[5].split())}
            x["offset"] = math.log((pos + 1) / (n - pos + 1))
            feats.update(x)
            y = int(row[1])
            rows.append((y, float(row[2]), float(row[3]), float(row[4]), x))
            pos += y
            n += 1
    return feats, rows


def read_keys(path):
    """Each row's (ts, label, weight) as written, and tally's p."""
    keys, ps = [], []
    with open(path) as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            keys.append((row[0], row[1], row[2]))
            ps.append(float(row[3]))
    return keys, ps


def same_examples(ref, other, what):
    """Stops the script unless other holds the examples of ref, in the same order."""
    for i, (a, b) in enumerate(zip(ref, other)):
        if a != b:
            sys.exit(f"error: {what}: example {i + 1} is ts,label,weight {','.join(b)}, "
                     f"not {','.join(a)} as with the default model")
    if len(ref) != len(other):
        sys.exit(f"error: {what}: {len(other):,} examples, not {len(ref):,} as with the "
                 f"default model")


def river_run(make, feats, rows):
    model = make()
    ps = []
    t0 = time.monotonic()
    for y, w, _, _, xd in rows:
        ps.append(model.predict_proba_one(xd).get(True, 0.0))
        model.learn_one(xd, bool(y), w=w) if "w" in model.learn_one.__code__.co_varnames else model.learn_one(xd, bool(y))
    return ps, time.monotonic() - t0


EXTRA = ()
ARF_MAX = 100000


def evaluate(name, inp, fmt, xs=()):
    from river import linear_model, optim
    xs = tuple(xs) + EXTRA
    alpha = ALPHA
    for kv in xs:
        if kv.startswith("model.ftrl.alpha="):
            alpha = float(kv.split("=", 1)[1])
    with tempfile.TemporaryDirectory() as tmp:
        path, secs = export(inp, fmt, tmp, xs)
        feats, rows = read_examples(path)
        keys, _ = read_keys(path)
        seq_path, seq_secs = export(inp, fmt, tmp, xs + ("model.kind=seq",), "seq.csv")
        seq_keys, seq_ps = read_keys(seq_path)
    same_examples(keys, seq_keys, f"{name}, model.kind=seq")
    ys = [r[0] for r in rows]
    ws = [r[1] for r in rows]
    out = []
    out.append(("tally (FTRL-Proximal, C)", [r[2] for r in rows], None))
    out.append(("tally seq (sequence model, C, `model.kind=seq`)", seq_ps, seq_secs, "replay "))
    out.append(("running conversion rate", [r[3] for r in rows], None))
    ftrl = lambda: linear_model.LogisticRegression(
        optimizer=optim.FTRLProximal(alpha=alpha, beta=BETA, l1=L1, l2=L2), l2=0.0,
        intercept_lr=0.0)
    sgd = lambda: linear_model.LogisticRegression(optimizer=optim.SGD(0.01))
    from river import forest
    arf = lambda: forest.ARFClassifier(n_models=10, seed=1)
    learners = [("River LogisticRegression + FTRLProximal", ftrl),
                ("River LogisticRegression + SGD(0.01)", sgd)]
    if len(rows) <= ARF_MAX:   # about 300 examples/s
        learners.append(("River adaptive random forest (10 trees)", arf))
    else:
        print(f"(River's adaptive random forest skipped: {len(rows):,} examples, more than "
              f"{ARF_MAX:,})")
    for label, make in learners:
        ps, t = river_run(make, feats, rows)
        out.append((label, ps, t))
    print(f"\n{name}: {len(rows):,} examples ({sum(ys):,} positive), features {len(feats)}; "
          f"tally replay with export took {secs:.2f} s" + (f"; -X {' -X '.join(xs)}" if xs else ""))
    print("| learner | log-loss | AUC | learner time |")
    print("|---|---|---|---|")
    for label, ps, t, *what in out:
        tt = f"{t:.2f} s {''.join(what)}({len(rows) / t:,.0f} examples/s)" if t else "-"
        print(f"| {label} | {logloss(ps, ys, ws):.4f} | {auc(ps, ys):.4f} | {tt} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input")
    ap.add_argument("--format", default="taobao")
    ap.add_argument("--generated", type=int, default=100000)
    ap.add_argument("--truth-order", metavar="FIRST,THEN,EFFECT",
                    help="also ground-truth data with this order effect (tally gen --truth --order)")
    ap.add_argument("-X", dest="xs", action="append", default=[], metavar="KEY=VALUE",
                    help="a tally configuration key for every replay (e.g. model.ftrl.alpha=0.5)")
    a = ap.parse_args()
    global EXTRA
    EXTRA = tuple(a.xs)
    if a.input:
        evaluate(a.input, a.input, a.format)
        return
    if os.path.exists(DATA):
        # In time order, as a stream would deliver it.
        with tempfile.TemporaryDirectory() as tmp:
            rows = list(csv.reader(open(DATA)))
            rows.sort(key=lambda r: int(r[4]))   # stable: equal times keep file order
            sorted_path = os.path.join(tmp, "sorted.csv")
            with open(sorted_path, "w", newline="") as f:
                csv.writer(f).writerows(rows)
            evaluate("Taobao journeys, time order", sorted_path, "taobao")
        slice_path = os.path.join(os.path.dirname(DATA), "user_behavior_slice.csv")
        if os.path.exists(slice_path):   # 2.2 hours: few users cross a 6-hour grid point
            evaluate("Taobao slice (2.2 h), time order", slice_path, "taobao")
    else:
        print("SKIP: ../shared/data/taobao not found", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        gen = os.path.join(tmp, "gen.csv")
        subprocess.run([TALLY, "gen", "--events", str(a.generated), "--users",
                        str(max(1, a.generated // 10)), "--output", gen], check=True)
        evaluate(f"generated stream ({a.generated:,} events)", gen, "canonical")
        truth = os.path.join(tmp, "truth.csv")
        subprocess.run([TALLY, "gen", "--truth", os.path.join(tmp, "truth.json"), "--output", truth],
                       check=True)
        evaluate("ground-truth data (tally gen --truth, 5,000 users, 28 days)", truth, "canonical")
        if a.truth_order:
            subprocess.run([TALLY, "gen", "--truth", os.path.join(tmp, "truth_order.json"),
                            "--order", a.truth_order, "--output", truth], check=True)
            evaluate(f"ground-truth data with an order effect (tally gen --truth --order "
                     f"{a.truth_order})", truth, "canonical")


if __name__ == "__main__":
    main()
