#!/usr/bin/env python3
"""Times `tally paths` against ChannelAttribution's markov_model on the same path file and
prints one markdown row per file for docs/benchmarks.md.

    python3 bench/markov_peer.py [--tally build/tally] [--input PATHS.csv]
                                 [--synthetic N_CHANNELS ...] [--order K ...] [--header]

tally: the wall time of the whole `tally paths --input F --output F.json` process (start,
reading and parsing the file, the exact solve, writing), median of 5 runs. Its own
"seconds" (reading + solve, without process start) is printed beside it.
ChannelAttribution 2.2.5: the wall time of the markov_model() call alone (the same order, its
defaults: nsim_start 1e5, 10 folds, one core; conversion value and nulls given), with the
file already in a DataFrame, median of 3 runs. The ratio is ChannelAttribution / tally.
Both on one core of this machine (OPENBLAS_NUM_THREADS=1 for tally).

--synthetic N also times a generated file (20,000 paths over N channels, lengths 1..12,
Zipf-like channel popularity, seed 1) to show how the exact solve scales with the number
of states (O(N^3)); ChannelAttribution is timed on them up to --peer-max-channels (1000).
The last column is the largest difference between ChannelAttribution's and tally's Markov
conversions of a channel, as a share of all conversions: its simulation error.
"""
import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def time_tally(tally, path, order=1, runs=5):
    times, inner = [], []
    with tempfile.TemporaryDirectory(prefix="tally-markov-bench-") as tmp:
        out = os.path.join(tmp, "out.json")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([tally, "paths", "--input", path, "--order", str(order),
                            "--output", out], check=True, stdout=subprocess.DEVNULL, env=env)
            times.append(time.perf_counter() - t0)
            with open(out) as f:
                res = json.load(f)
            inner.append(res["seconds"])
    return statistics.median(times), statistics.median(inner), res


def time_ca(path, order=1, runs=3):
    try:
        import pandas as pd
        with contextlib.redirect_stdout(sys.stderr):   # its import prints a banner
            from ChannelAttribution import markov_model
    except Exception as e:
        print(f"ChannelAttribution unavailable ({type(e).__name__}: {e})", file=sys.stderr)
        return None, None
    df = pd.read_csv(path, sep=";")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = markov_model(df, "path", "total_conversions", var_value="total_conversion_value",
                         var_null="total_null", order=order, verbose=False, flg_pro=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), r


def synthetic(n_channels, path, n_paths=20000, seed=1):
    rnd = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(n_channels)]
    names = [f"ch{i}" for i in range(n_channels)]
    with open(path, "w") as f:
        f.write("path;total_conversions;total_conversion_value;total_null\n")
        for _ in range(n_paths):
            k = rnd.randint(1, 12)
            chans = rnd.choices(names, weights, k=k)
            conv = rnd.randint(0, 3)
            f.write(f"{' > '.join(chans)};{conv};{conv * rnd.uniform(1, 20):.3f};"
                    f"{rnd.randint(0, 8)}\n")


def row(label, tally, path, order, peer=True):
    try:
        t_tally, t_inner, res = time_tally(tally, path, order)
    except subprocess.CalledProcessError:   # tally names the reason (the state bound) on stderr
        print(f"| {label} | {order} (over the bound) | | | refused | | | |", flush=True)
        return
    t_ca, ca = time_ca(path, order) if peer else (None, None)
    n = len(res["channels"])
    dev = ""
    if ca is not None:
        exact = {c["channel"]: c["markov_conversions"] for c in res["channels"]}
        got = dict(zip(ca["channel_name"], ca["total_conversions"]))
        total = sum(exact.values())
        worst = max(abs(got[k] - exact[k]) for k in exact) / total if total else 0.0
        dev = f"{100 * worst:.2f}%"
    ca_ms = f"{1000 * t_ca:.1f}" if t_ca is not None else "n/a"
    ratio = f"{t_ca / t_tally:.1f}x" if t_ca is not None else "n/a"
    print(f"| {label} | {order} ({res['states']}) | {res['paths']} | {n} "
          f"| {1000 * t_tally:.1f} ({1000 * t_inner:.1f}) "
          f"| {ca_ms} | {ratio} | {dev} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tally", default=os.path.join(ROOT, "build", "tally"))
    ap.add_argument("--input", default=os.path.join(
        ROOT, "..", "shared", "data", "channelattribution", "path_data.csv"))
    ap.add_argument("--synthetic", type=int, nargs="*", default=[])
    ap.add_argument("--peer-max-channels", type=int, default=1000,
                    help="time ChannelAttribution on synthetic files up to this many channels "
                         "(its time grows with them: about a minute per run at 1000)")
    ap.add_argument("--order", type=int, nargs="*", default=[1],
                    help="orders of the chain, a row each (ChannelAttribution's order)")
    ap.add_argument("--header", action="store_true", help="print the table header first")
    a = ap.parse_args()
    if a.header:
        print("| paths file | order (states) | paths | channels | tally paths, ms (solve + read) "
              "| ChannelAttribution markov_model, ms | ratio | largest difference "
              "(share of conversions) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for order in a.order:
        if os.path.exists(a.input):
            row(os.path.basename(a.input), a.tally, a.input, order)
        else:
            print(f"{a.input} is absent: skipped", file=sys.stderr)
        for n in a.synthetic:
            with tempfile.TemporaryDirectory(prefix="tally-markov-bench-") as tmp:
                p = os.path.join(tmp, f"synthetic-{n}.csv")
                synthetic(n, p)
                row(f"synthetic, {n} channels", a.tally, p, order,
                    peer=n <= a.peer_max_channels)


if __name__ == "__main__":
    main()
