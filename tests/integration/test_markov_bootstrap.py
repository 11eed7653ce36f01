#!/usr/bin/env python3
"""integration.markov_bootstrap: the coverage of `tally paths --bootstrap`'s intervals
against a chain whose removal effects are known (docs/attribution.md, "Markov chain
(channels)", "Intervals").

A true first-order chain over 4 channels (fixed transition probabilities, no self-loops,
so the paths it makes read back as the same chain) gives the true removal effects, solved
here with numpy by the definition (each channel made absorbing, the chain solved again).
Each of REPS replications simulates JOURNEYS journeys from it, aggregates them into a path
file in ChannelAttribution's format, and runs `tally paths --bootstrap 200 --level 0.9
--seed rep`. A 90% interval should contain the true removal effect in about 90% of the
replications, for every channel: with REPS = 200 the count of misses is binomial(200,
0.1), and the test asks each channel's coverage to lie within [0.84, 0.96] (about 3
standard errors of 0.021 around 0.9). The replications and the draws have fixed seeds,
so a run gives the same coverage every time; a correct 90% interval meets the bounds with
probability about 99.5% per channel, so a seed change that fails them is itself news. It also checks that an interval contains its own point estimate,
that a wider level gives a wider interval, that the same seed repeats the interval
exactly, and that bad arguments are refused.
"""
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixtures  # noqa: E402

CHANNELS = ["search", "social", "display", "email"]
# P[state][next]: from start and each channel to the channels, conversion and null.
P = {
    "start":   {"search": 0.30, "social": 0.35, "display": 0.25, "email": 0.10},
    "search":  {"social": 0.10, "display": 0.10, "email": 0.05, "conv": 0.30, "null": 0.45},
    "social":  {"search": 0.25, "display": 0.15, "email": 0.05, "conv": 0.10, "null": 0.45},
    "display": {"search": 0.20, "social": 0.20, "email": 0.10, "conv": 0.05, "null": 0.45},
    "email":   {"search": 0.10, "social": 0.10, "display": 0.10, "conv": 0.15, "null": 0.55},
}
REPS = 200
JOURNEYS = 3000
SAMPLES = 200
LEVEL = 0.9
COVER_MIN, COVER_MAX = 0.84, 0.96

check = fixtures.Checks()   # check(ok, msg): a failure is printed, the test goes on


def true_removal_effects(np):
    states = ["start"] + CHANNELS
    ix = {s: i for i, s in enumerate(states)}
    n = len(states)
    Q = np.zeros((n, n))
    r = np.zeros(n)
    for s, row in P.items():
        for t, p in row.items():
            if t == "conv":
                r[ix[s]] = p
            elif t != "null":
                Q[ix[s], ix[t]] = p
    eye = np.eye(n)
    p = np.linalg.solve(eye - Q, r)[0]
    re = {}
    for c in CHANNELS:
        Qc, rc = Q.copy(), r.copy()
        Qc[ix[c], :] = 0
        rc[ix[c]] = 0
        re[c] = (p - np.linalg.solve(eye - Qc, rc)[0]) / p
    return p, re


def simulate(rnd, path):
    agg = {}
    for _ in range(JOURNEYS):
        s, touches = "start", []
        while True:
            row = P[s]
            s = rnd.choices(list(row), list(row.values()))[0]
            if s in ("conv", "null"):
                break
            touches.append(s)
        if not touches:
            continue
        c = agg.setdefault(" > ".join(touches), [0, 0])
        c[0 if s == "conv" else 1] += 1
    with open(path, "w") as f:
        f.write("path;total_conversions;total_conversion_value;total_null\n")
        for k, (conv, null) in agg.items():
            f.write(f"{k};{conv};{conv * 10.0};{null}\n")


def run(tally, path, out, *args):
    proc = subprocess.run([tally, "paths", "--input", path, "--output", out, "--quiet", *args],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        sys.exit(f"FAIL: tally paths {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    with open(out) as f:
        return {c["channel"]: c for c in json.load(f)["channels"]}


def main():
    tally = os.environ.get("TALLY_BIN")
    if not tally:
        sys.exit("FAIL: TALLY_BIN must be set (ctest sets it)")
    try:
        import numpy as np
    except ImportError:
        sys.exit("FAIL: numpy is missing; install tests/integration/requirements.txt")
    p, re = true_removal_effects(np)
    print(f"true chain: p(conversion) {p:.4f}; removal effects "
          + ", ".join(f"{c} {re[c]:.4f}" for c in CHANNELS))
    covered = {c: 0 for c in CHANNELS}
    width = {c: 0.0 for c in CHANNELS}
    rnd = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="tally-markov-boot-") as tmp:
        path, out = os.path.join(tmp, "paths.csv"), os.path.join(tmp, "out.json")
        for rep in range(REPS):
            simulate(rnd, path)
            res = run(tally, path, out, "--bootstrap", str(SAMPLES), "--level", str(LEVEL),
                      "--seed", str(rep + 1))
            for c in CHANNELS:
                ch = res[c]
                lo, hi = ch["removal_effect_lo"], ch["removal_effect_hi"]
                covered[c] += lo <= re[c] <= hi
                width[c] += hi - lo
                if rep == 0:
                    check(lo <= ch["removal_effect"] <= hi,
                          f"{c}: estimate {ch['removal_effect']} outside its own interval "
                          f"[{lo}, {hi}]")
                    check(ch["markov_conversions_lo"] <= ch["markov_conversions"]
                          <= ch["markov_conversions_hi"], f"{c}: conversions outside interval")
            if rep == 0:
                again = run(tally, path, out, "--bootstrap", str(SAMPLES), "--level",
                            str(LEVEL), "--seed", "1")
                check(all(again[c]["removal_effect_lo"] == res[c]["removal_effect_lo"] and
                          again[c]["removal_effect_hi"] == res[c]["removal_effect_hi"]
                          for c in CHANNELS), "the same seed gave another interval")
                wide = run(tally, path, out, "--bootstrap", str(SAMPLES), "--level", "0.99",
                           "--seed", "1")
                check(all(wide[c]["removal_effect_hi"] - wide[c]["removal_effect_lo"] >
                          res[c]["removal_effect_hi"] - res[c]["removal_effect_lo"]
                          for c in CHANNELS), "a 99% interval is not wider than a 90% one")
        for bad in (["--bootstrap", "1"], ["--bootstrap", "x"], ["--bootstrap", "10",
                                                                  "--level", "1"]):
            proc = subprocess.run([tally, "paths", "--input", path, *bad], capture_output=True,
                                  text=True)
            check(proc.returncode == 2 and bad[-1] in proc.stderr,
                  f"{bad}: exit {proc.returncode}, stderr {proc.stderr!r}")
    print(f"{REPS} replications of {JOURNEYS} journeys, {SAMPLES} bootstrap chains each, "
          f"level {LEVEL}:")
    for c in CHANNELS:
        cov = covered[c] / REPS
        print(f"  {c:8} true RE {re[c]:.4f}  coverage {cov:.3f}  mean width "
              f"{width[c] / REPS:.4f}")
        check(COVER_MIN <= cov <= COVER_MAX,
              f"{c}: coverage {cov:.3f} outside [{COVER_MIN}, {COVER_MAX}]")
    check.finish()
    print("integration.markov_bootstrap: all checks passed")


if __name__ == "__main__":
    main()
