#!/usr/bin/env python3
"""integration.markov: `tally paths` against an independent exact solve and against
ChannelAttribution (docs/attribution.md, "Markov chain (channels)").

On ChannelAttribution's example path file (../shared/data/channelattribution/path_data.csv
beside the source tree; exit 77, a skip, when it is absent):

1. Exact reference. The chain is built here from the paths (start -> collapsed channels ->
   conversion | null, weighted by total_conversions + total_null), the conversion
   probability from numpy.linalg.solve((I - Q), r), and every removal effect by the
   definition: make channel j absorbing (its row of Q and r zeroed), solve again, take the
   relative drop. tally computes them from one LU factorisation and an identity instead;
   removal effects, conversion probability and Markov credits must agree to 1e-9
   (credits relative to the total). First-touch, last-touch and linear credits are
   recomputed here too and must agree to 1e-9 relative.
2. ChannelAttribution 2.2.5 (PyPI), markov_model(order=1), which estimates the same
   quantities by simulating journeys through the same chain. Its Markov conversions for
   channel k are C * T_k / sum(T), with T_k the simulated converting journeys that visit
   k, out of n_conv = p * nsim / nfold of them in the fold it reports; its removal effect is
   T_k / n_conv. So T_k is binomial(n_conv, RE_k) and the sampling standard errors are
       se(RE_k)   = sqrt(RE_k (1 - RE_k) / n_conv)
       se(conv_k) = C * se(RE_k) / sum(RE)
   (the variation of sum(T), a sum over all channels, is of lower order). Each of 3 seeds
   (with disjoint random streams) must be within 5 standard errors of the exact value for
   every channel, and the mean of the 3 within 5 standard errors of a mean (se / sqrt 3):
   a correct simulation is outside by chance with probability 6e-7 per comparison. The
   standard deviation across the seeds is printed beside the predicted error as a check
   of the error model; it comes out smaller (ChannelAttribution reports the fold closest
   to the median of its 10 folds, and its normalisation cancels common fluctuations), so
   the tolerance errs on the side of not failing a correct simulation. nsim_start = 1e6
   (100,000 journeys per fold) keeps the errors near 1% of the larger channels.
   heuristic_models must agree with tally's first/last/linear credits to 1e-9.
   When ChannelAttribution cannot be imported, this part is skipped with a message.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixtures  # noqa: E402

TOL = 1e-9
ORDERS = (1, 2, 3)
SEEDS = (0, 100, 200)  # fold r of seed s runs on seed s + r: disjoint streams
NSIM = 1_000_000
NFOLD = 10
Z_MAX = 5.0

check = fixtures.Checks()   # check(ok, msg): a failure is printed, the test goes on


def read_paths(path):
    rows = []
    with open(path) as f:
        header = [h.strip() for h in f.readline().strip().split(";")]
        ix = {h: i for i, h in enumerate(header)}
        for line in f:
            line = line.strip()
            if not line:
                continue
            fl = line.split(";")
            chans = [c.strip() for c in fl[ix["path"]].split(">")]
            rows.append((chans, float(fl[ix["total_conversions"]]),
                         float(fl[ix["total_conversion_value"]]), float(fl[ix["total_null"]])))
    return rows


def windows(chans, order, collapsed=False):
    """The chain's states of a path: its windows of `order` consecutive touches (the whole
    path when it is shorter), consecutive equal windows as one. Order 1: the touches, with
    repeats collapsed. ChannelAttribution's reading, as main() shows at order 2 by comparing
    it with the other one (collapsed=True: windows of the path with its repeats collapsed
    first) against its simulation."""
    if collapsed:
        chans = [c for i, c in enumerate(chans) if i == 0 or chans[i - 1] != c]
    k = min(order, len(chans))
    out = []
    for i in range(len(chans) - k + 1):
        w = tuple(chans[i:i + k])
        if not out or out[-1] != w:
            out.append(w)
    return out


def exact(rows, np, order=1, collapsed=False):
    """Removal effects by the definition, heuristics by their definitions."""
    names = []
    seen = set()
    states = {}
    for chans, _, _, _ in rows:
        for c in chans:
            if c not in seen:
                seen.add(c)
                names.append(c)
        for w in windows(chans, order, collapsed):
            states.setdefault(w, len(states) + 1)
    n = len(states) + 1  # transient: start (0) + states
    W = np.zeros((n, n))
    conv = np.zeros(n)
    null = np.zeros(n)
    C = V = 0.0
    first = {c: [0.0, 0.0] for c in names}
    last = {c: [0.0, 0.0] for c in names}
    linear = {c: [0.0, 0.0] for c in names}
    for chans, c, v, nl in rows:
        C += c
        V += v
        first[chans[0]][0] += c
        first[chans[0]][1] += v
        last[chans[-1]][0] += c
        last[chans[-1]][1] += v
        for ch in chans:
            linear[ch][0] += c / len(chans)
            linear[ch][1] += v / len(chans)
        prev = 0
        for w in windows(chans, order, collapsed):
            W[prev, states[w]] += c + nl
            prev = states[w]
        conv[prev] += c
        null[prev] += nl
    out = W.sum(axis=1) + conv + null
    Q = np.divide(W, out[:, None], out=np.zeros_like(W), where=out[:, None] > 0)
    r = np.divide(conv, out, out=np.zeros_like(conv), where=out > 0)
    eye = np.eye(n)
    p = np.linalg.solve(eye - Q, r)[0]
    re = {}
    for name in names:
        Qj = Q.copy()
        rj = r.copy()
        for w, j in states.items():
            if name in w:  # every state with the channel absorbing: the journey ends there
                Qj[j, :] = 0.0
                rj[j] = 0.0
        pj = np.linalg.solve(eye - Qj, rj)[0]
        re[name] = (p - pj) / p
    return names, p, re, C, V, first, last, linear


def run_tally(tally, data, tmp, order=1):
    out = os.path.join(tmp, "out.json")
    proc = subprocess.run([tally, "paths", "--input", data, "--format", "channelattribution",
                           "--order", str(order), "--output", out],
                          capture_output=True, text=True, timeout=300)
    print(proc.stdout)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        sys.exit(f"FAIL: tally paths exited {proc.returncode}")
    with open(out) as f:
        return json.load(f)


def check_errors(tally, tmp):
    """A bad line is named; a good run's table is sorted by Markov credit."""
    bad = os.path.join(tmp, "bad.csv")
    with open(bad, "w") as f:
        f.write("path;total_conversions;total_conversion_value;total_null\n"
                "a > b;1;2;3\n"
                "a >  > b;1;2;3\n")
    proc = subprocess.run([tally, "paths", "--input", bad], capture_output=True, text=True)
    check(proc.returncode != 0 and f"{bad}:3:" in proc.stderr,
          f"empty channel on line 3: exit {proc.returncode}, stderr {proc.stderr!r}")
    with open(bad, "w") as f:
        f.write("path;total_conversions;total_conversion_value;total_null\n"
                "a > b;1;x;3\n")
    proc = subprocess.run([tally, "paths", "--input", bad], capture_output=True, text=True)
    check(proc.returncode != 0 and f"{bad}:2:" in proc.stderr
          and "total_conversion_value" in proc.stderr,
          f"bad number on line 2: exit {proc.returncode}, stderr {proc.stderr!r}")


def compare_exact(res, order, names, p, re, C, V, first, last, linear):
    by = {c["channel"]: c for c in res["channels"]}
    check(set(by) == set(names), f"channels differ: {sorted(by)} vs {sorted(names)}")
    check(abs(res["conversion_probability"] - p) <= TOL,
          f"conversion probability {res['conversion_probability']!r} vs {p!r}")
    s = sum(re.values())
    worst = 0.0
    for name in names:
        c = by.get(name)
        if c is None:
            continue
        d = abs(c["removal_effect"] - re[name])
        worst = max(worst, d)
        check(d <= TOL, f"{name}: removal effect {c['removal_effect']!r} vs exact {re[name]!r}")
        for key, want, total in (("markov_conversions", C * re[name] / s, C),
                                 ("markov_value", V * re[name] / s, V),
                                 ("first_touch", first[name][0], C),
                                 ("last_touch", last[name][0], C),
                                 ("linear", linear[name][0], C),
                                 ("first_touch_value", first[name][1], V),
                                 ("last_touch_value", last[name][1], V),
                                 ("linear_value", linear[name][1], V)):
            check(abs(c[key] - want) <= TOL * total, f"{name}: {key} {c[key]!r} vs {want!r}")
    credits = [c["markov_conversions"] for c in res["channels"]]
    check(credits == sorted(credits, reverse=True), "channels not sorted by Markov credit")
    print(f"exact solve, order {order}: {len(names)} channels, p(conversion) {p:.12f}, "
          f"largest removal-effect difference {worst:.3e} (tolerance {TOL:g})")


def compare_channelattribution(data, res, order, names, p, re, C):
    try:
        import pandas as pd
        from ChannelAttribution import heuristic_models, markov_model
    except Exception as e:  # not installed, or its import fails: the peer is required
        check(False, f"cannot import ChannelAttribution ({type(e).__name__}: {e}); "
                     f"scripts/deps.sh installs tests/integration/requirements.txt")
        return
    df = pd.read_csv(data, sep=";")
    by = {c["channel"]: c for c in res["channels"]}

    h = heuristic_models(df, "path", "total_conversions", var_value="total_conversion_value",
                         flg_pro=False)
    for _, row in h.iterrows():
        c = by[row["channel_name"]]
        for key, col, total in (("first_touch", "first_touch_conversions", C),
                                ("last_touch", "last_touch_conversions", C),
                                ("linear", "linear_touch_conversions", C),
                                ("first_touch_value", "first_touch_value", res["value"]),
                                ("last_touch_value", "last_touch_value", res["value"]),
                                ("linear_value", "linear_touch_value", res["value"])):
            check(abs(c[key] - row[col]) <= TOL * total,
                  f"{c['channel']}: {key} {c[key]!r} vs ChannelAttribution {row[col]!r}")
    print("heuristic_models: first/last/linear agree to 1e-9")

    s = sum(re.values())
    n_conv = p * NSIM / NFOLD
    se_re = {k: math.sqrt(re[k] * (1 - re[k]) / n_conv) for k in names}
    se_cv = {k: C * se_re[k] / s for k in names}
    conv = {k: [] for k in names}
    rem = {k: [] for k in names}
    zmax = 0.0
    for seed in SEEDS:
        m = markov_model(df, "path", "total_conversions", var_value="total_conversion_value",
                         var_null="total_null", order=order, nsim_start=NSIM, nfold=NFOLD, seed=seed,
                         out_more=True, verbose=False, flg_pro=False)
        for _, row in m["result"].iterrows():
            conv[row["channel_name"]].append(row["total_conversions"])
        for _, row in m["removal_effects"].iterrows():
            rem[row["channel_name"]].append(row["removal_effects_conversion"])
    print(f"ChannelAttribution markov_model, order {order}, nsim_start {NSIM}, seeds {SEEDS}; "
          f"tolerance {Z_MAX:g} standard errors (n_conv = {n_conv:.0f} per fold)")
    print(f"{'channel':8} {'exact conv':>11} {'CA conv (per seed)':>30} {'se':>7} {'seed sd':>8}"
          f" {'exact RE':>9} {'CA RE (mean)':>13} {'max |z|':>8}")
    for k in sorted(names, key=lambda k: -re[k]):
        want = C * re[k] / s
        zs = []
        for got in conv[k]:
            z = abs(got - want) / se_cv[k] if se_cv[k] > 0 else (0.0 if got == want else math.inf)
            zs.append(z)
            check(z <= Z_MAX, f"{k}: ChannelAttribution conversions {got:.3f} vs exact "
                  f"{want:.3f}: {z:.2f} standard errors ({se_cv[k]:.3f})")
        for got in rem[k]:
            z = abs(got - re[k]) / se_re[k] if se_re[k] > 0 else (0.0 if got == re[k] else math.inf)
            zs.append(z)
            check(z <= Z_MAX, f"{k}: ChannelAttribution removal effect {got:.5f} vs exact "
                  f"{re[k]:.5f}: {z:.2f} standard errors ({se_re[k]:.5f})")
        mean = sum(conv[k]) / len(conv[k])
        se_mean = se_cv[k] / math.sqrt(len(conv[k]))
        z = abs(mean - want) / se_mean if se_mean > 0 else (0.0 if mean == want else math.inf)
        zs.append(z)
        check(z <= Z_MAX, f"{k}: mean ChannelAttribution conversions {mean:.3f} vs exact "
              f"{want:.3f}: {z:.2f} standard errors of the mean ({se_mean:.3f})")
        zmax = max(zmax, max(zs))
        sd = math.sqrt(sum((x - mean) ** 2 for x in conv[k]) / (len(conv[k]) - 1))
        per_seed = " ".join(f"{x:9.2f}" for x in conv[k])
        print(f"{k:8} {want:11.2f} {per_seed:>30} {se_cv[k]:7.2f} {sd:8.2f}"
              f" {re[k]:9.5f} {sum(rem[k]) / len(rem[k]):13.5f} {max(zs):8.2f}")
    print(f"ChannelAttribution: largest deviation {zmax:.2f} standard errors (limit {Z_MAX:g})")
    return rem, n_conv


def re_deviation(re, rem, n_conv):
    """The largest distance of ChannelAttribution's removal effects (per seed) from re, in
    standard errors."""
    return max(abs(got - re[k]) / math.sqrt(re[k] * (1 - re[k]) / n_conv)
               for k in re for got in rem.get(k, []) if 0 < re[k] < 1)


def main():
    tally = os.environ.get("TALLY_BIN")
    src = os.environ.get("TALLY_SOURCE_DIR")
    if not tally or not src:
        sys.exit("FAIL: TALLY_BIN and TALLY_SOURCE_DIR must be set (ctest sets them)")
    data = os.path.join(src, "..", "shared", "data", "channelattribution", "path_data.csv")
    if not os.path.exists(data):
        print(f"SKIP: {data} is absent (ChannelAttribution's example paths)")
        sys.exit(77)
    try:
        import numpy as np
    except ImportError:
        sys.exit("FAIL: numpy is missing; install tests/integration/requirements.txt")

    rows = read_paths(data)
    with tempfile.TemporaryDirectory(prefix="tally-markov-") as tmp:
        check_errors(tally, tmp)
        for order in ORDERS:
            res = run_tally(tally, data, tmp, order)
            check(res["order"] == order, f"order {res.get('order')!r} in the JSON, asked {order}")
            check(res["paths"] == len(rows), f"paths {res['paths']} vs {len(rows)}")
            names, p, re, C, V, first, last, linear = exact(rows, np, order)
            compare_exact(res, order, names, p, re, C, V, first, last, linear)
            sim = compare_channelattribution(data, res, order, names, p, re, C)
            if order == 2 and sim:   # the reading of repeats, against the other one
                rem, n_conv = sim
                other = exact(rows, np, order, collapsed=True)[2]
                z, z_other = re_deviation(re, rem, n_conv), re_deviation(other, rem, n_conv)
                print(f"order 2, ChannelAttribution's removal effects: {z:.2f} standard errors "
                      f"from windows of the path as given, {z_other:.2f} from windows of the "
                      f"collapsed path")
                check(z_other > Z_MAX / 2 and z < z_other,
                      f"the collapsed reading is as close to ChannelAttribution ({z_other:.2f} "
                      f"standard errors) as the one used ({z:.2f})")
    check.finish()
    print("integration.markov: all checks passed")


if __name__ == "__main__":
    main()
